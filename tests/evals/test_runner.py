"""The runner against an in-process fake target: trials, pass rate, threshold, flakiness, errors, concurrency."""

from __future__ import annotations

import asyncio

import pytest

from bot.core.errors import CallFailed
from bot.core.usage import Usage
from bot.evals.runner import Runner, TrialOutcome, summarize
from tests.helpers.evals import FakeJudge, FakeTarget, make_case


def run(runner: Runner, cases):
    return asyncio.run(runner.run(cases))


def test_replays_the_turns_before_the_last_assistant_turn():
    case = make_case(turns=[
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "return window?"},
        {"role": "assistant", "content": "90 days"},
        {"role": "user", "content": "after the flagged turn"},
    ])
    target = FakeTarget("30 days")
    run(Runner(target, judge=None), [case])
    assert target.calls == [("case0001", [
        {"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}, {"role": "user", "content": "return window?"},
    ])]


def test_each_trial_is_one_call_and_the_pass_rate_counts_them():
    target = FakeTarget("30 days", "90 days", "30 days")
    [outcome] = run(Runner(target, judge=None, trials=3, pass_threshold=0.6), [make_case()])
    assert len(target.calls) == 3
    assert [t.status for t in outcome.trials] == ["pass", "fail", "pass"]
    assert outcome.pass_rate == pytest.approx(2 / 3)
    assert outcome.status == "pass" and outcome.flaky


@pytest.mark.parametrize(
    ("replies", "threshold", "status", "flaky"),
    [
        (["30 days"] * 3, 1.0, "pass", False),
        (["30 days", "30 days", "no"], 1.0, "fail", True),
        (["30 days", "30 days", "no"], 0.66, "pass", True),
        (["30 days", "no", "no"], 0.5, "fail", True),
        (["no"] * 3, 0.0, "pass", False),  # a threshold of 0 passes anything graded
        (["no"] * 3, 0.5, "fail", False),
    ],
)
def test_threshold_and_flakiness(replies, threshold, status, flaky):
    [outcome] = run(Runner(FakeTarget(*replies), judge=None, trials=3, pass_threshold=threshold), [make_case()])
    assert (outcome.status, outcome.flaky) == (status, flaky)


def test_a_case_whose_calls_keep_failing_is_error_never_fail():
    target = FakeTarget(CallFailed("HTTP 529 OverloadedError: gave up after 5 attempt(s)"))
    [outcome] = run(Runner(target, judge=None), [make_case()])
    assert outcome.status == "error" and outcome.pass_rate == 0.0
    assert outcome.trials[0].output is None
    assert "no reply from the target: HTTP 529" in outcome.failure


def test_one_errored_trial_makes_the_case_error():
    target = FakeTarget("30 days", CallFailed("timeout"), "30 days")
    [outcome] = run(Runner(target, judge=None, trials=3, pass_threshold=0.5), [make_case()])
    assert outcome.status == "error"
    assert outcome.pass_rate == 1.0  # over the graded trials
    assert outcome.failure == "trial 2: no reply from the target: timeout"


def test_a_judge_that_cannot_decide_makes_the_trial_error():
    case = make_case(expect=[{"rubric": "30 days"}, {"contains": "30"}])
    [outcome] = run(Runner(FakeTarget("30 days"), judge=FakeJudge(error=True)), [case])
    assert outcome.status == "error"
    assert outcome.trials[0].verdicts[1].passed  # the deterministic verdict is still recorded


def test_every_expectation_is_graded_and_judge_tokens_are_counted():
    case = make_case(expect=[{"rubric": "30 days"}, {"not_contains": "90 days"}, {"max_chars": 5}])
    judge = FakeJudge()
    runner = Runner(FakeTarget("30 days!"), judge=judge)
    [outcome] = run(runner, [case])
    trial = outcome.trials[0]
    assert [(v.kind, v.passed) for v in trial.verdicts] == [("rubric", True), ("not_contains", True), ("max_chars", False)]
    assert trial.status == "fail" and "max_chars: expected at most 5 chars; got 8" in outcome.failure
    assert trial.usage == Usage(110, 25)
    assert runner.meter.by_model == {"claude-haiku-4-5": Usage(10, 5), "claude-sonnet-4-5": Usage(100, 20)}
    assert judge.calls == [("30 days", "30 days!")]


def test_rubric_without_a_judge_is_an_error():
    [outcome] = run(Runner(FakeTarget("30 days"), judge=None), [make_case(expect=[{"rubric": "x"}])])
    assert outcome.status == "error" and "no judge is configured" in outcome.failure


def test_concurrency_limit_is_never_exceeded_and_is_used():
    cases = [make_case(f"case{i:04d}") for i in range(20)]
    target = FakeTarget(default="30 days", delay=0.02)
    outcomes = run(Runner(target, judge=None, trials=3, concurrency=7), cases)
    assert len(target.calls) == 60
    assert target.max_in_flight == 7
    assert [o.case.id for o in outcomes] == [c.id for c in cases]
    assert all(o.status == "pass" and len(o.trials) == 3 for o in outcomes)


def test_concurrency_makes_calls_overlap():
    cases = [make_case(f"case{i:04d}") for i in range(10)]
    target = FakeTarget(default="30 days", delay=0.1)
    run(Runner(target, judge=None, concurrency=10), cases)
    assert target.max_in_flight == 10  # all ten calls side by side, not one after another


def test_progress_is_reported_after_each_trial():
    seen: list[tuple[int, int]] = []
    run(Runner(FakeTarget(default="30 days"), judge=None, trials=2, progress=lambda d, t: seen.append((d, t))),
        [make_case("casea001"), make_case("caseb001")])
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_an_unexpected_error_stops_the_run():
    target = FakeTarget(RuntimeError("bug in a target"))
    with pytest.raises(RuntimeError, match="bug in a target"):
        run(Runner(target, judge=None), [make_case()])


def test_summarize_without_graded_trials():
    case = make_case()
    outcome = summarize(case, [TrialOutcome(case.id, 0, "error", error="x")], pass_threshold=0.0)
    assert (outcome.status, outcome.pass_rate, outcome.flaky) == ("error", 0.0, False)

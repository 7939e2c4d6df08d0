"""The runner against an in-process fake target: trials, pass rate, threshold, flakiness, errors, concurrency."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from datetime import datetime, timezone

import pytest

from bot.cases import Case
from bot.evals.graders import Verdict
from bot.evals.judge import Judgement
from bot.evals.runner import Runner, TrialOutcome, summarize
from bot.evals.targets import Reply
from bot.llm import CallFailed, Usage


class FakeTarget:
    """A target with a queue of canned replies (str, an Exception to raise, or a callable of the case) and a call log.

    Like simonw/llm's MockModel: tests queue what the system under test answers and read back what it was asked.
    `delay` makes each call take that long, so concurrency can be observed through `max_in_flight`.
    """

    label = "fake:target"

    def __init__(self, *replies: str | Exception | Callable[[Case], str], default: str | None = None, delay: float = 0.0,
                 usage: Usage = Usage(10, 5), model: str | None = "claude-haiku-4-5"):
        self.replies: deque = deque(replies)
        self.default = default
        self.delay = delay
        self.usage = usage
        self.model = model
        self.calls: list[tuple[str, list[dict[str, str]]]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.closed = False

    def queue(self, *replies: str | Exception | Callable[[Case], str]) -> None:
        self.replies.extend(replies)

    async def generate(self, case: Case) -> Reply:
        self.calls.append((case.id, [{"role": t.role, "content": t.content} for t in case.replay_turns]))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            reply = self.replies.popleft() if self.replies else self.default
            if reply is None:
                raise AssertionError(f"FakeTarget ran out of replies (case {case.id})")
            if isinstance(reply, Exception):
                raise reply
            text = reply(case) if callable(reply) else reply
            return Reply(text, latency_ms=self.delay * 1000, usage=self.usage, model=self.model)
        finally:
            self.in_flight -= 1

    async def aclose(self) -> None:
        self.closed = True


class FakeJudge:
    """A judge that passes when the rubric's text is in the reply (no model involved)."""

    model = "claude-sonnet-4-5"

    def __init__(self, *, error: bool = False):
        self.error = error
        self.calls: list[tuple[str, str]] = []

    async def grade(self, rubric, turns, reply):
        self.calls.append((rubric, reply))
        if self.error:
            return Judgement(Verdict("rubric", False, "the judge could not be asked: boom", error=True))
        ok = rubric in reply
        return Judgement(Verdict("rubric", ok, "meets" if ok else f"expected {rubric!r}"), Usage(100, 20))

    async def aclose(self) -> None:
        return None


def make_case(case_id: str = "case0001", *, expect=None, turns=None, tags=()) -> Case:
    return Case.model_validate({
        "id": case_id,
        "title": f"Case {case_id}",
        "status": "promoted",
        "tags": list(tags),
        "source": {"kind": "file", "flagged_at": datetime(2026, 11, 20, tzinfo=timezone.utc)},
        "conversation": turns or [
            {"role": "user", "content": "How long do I have to return this?"},
            {"role": "assistant", "content": "You have 90 days."},
        ],
        "expect": expect or [{"contains": "30 days"}],
    })


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

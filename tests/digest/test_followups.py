"""What to tell flaggers, and when (bot/digest/followups.py): pure decisions over a case's results."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.digest.followups import CaseOutcome, FollowUp, expectation_line, run_followups, thread_of, to_mention
from bot.triage.decisions import parse_expectations

THREAD = ("C1", "1763700000.000100")


def outcome(status: str, previous: tuple[int, str] | None, *, thread=THREAD, flaggers=("U0A", "U0B"), case_id="k3m9x2qa",
            failure: str | None = "rubric: invents a window\nnot_contains: found '90 days'") -> CaseOutcome:
    return CaseOutcome(case_id, "Refund window", status, failure, previous, thread, flaggers, ("prompts/system.md at abc1234",))


@pytest.mark.parametrize(("status", "previous", "kind", "reproduces"), [
    ("fail", None, "first_result", True),
    ("pass", None, "first_result", False),
    ("pass", (3, "fail"), "fixed", None),
    ("fail", (3, "pass"), "regressed", None),
    ("fail", (3, "fail"), None, None),
    ("pass", (3, "pass"), None, None),
    ("error", None, None, None),
    ("error", (3, "pass"), None, None),
])
def test_run_events(status, previous, kind, reproduces):
    found = run_followups(4, [outcome(status, previous)])
    assert [f.kind for f in found] == ([kind] if kind else [])
    if kind:
        [followup] = found
        assert followup.reproduces == reproduces and followup.run_id == 4 and followup.key == "run:4:k3m9x2qa"
        assert followup.previous_run == (3 if previous else None)


def test_a_regression_carries_the_first_problem_and_what_changed():
    [followup] = run_followups(4, [outcome("fail", (3, "pass"))])
    assert followup.detail == "rubric: invents a window" and followup.changes == ("prompts/system.md at abc1234",)


def test_nobody_to_tell_or_no_thread_means_no_follow_up():
    assert run_followups(4, [outcome("fail", None, thread=None), outcome("fail", None, flaggers=(), case_id="b")]) == []


def test_one_follow_up_per_case_per_run():
    assert len(run_followups(4, [outcome("fail", None), outcome("pass", None)])) == 1


def test_the_flag_thread_is_the_parent_of_a_flagged_reply():
    link = "https://t.slack.com/archives/C1/p1763700000000300?thread_ts=1763700000.000100&cid=C1"
    assert thread_of("C1", "1763700000.000300", link) == THREAD
    assert thread_of("C1", "1763700000.000100", "https://t.slack.com/archives/C1/p1763700000000100") == THREAD
    assert thread_of(None, "1.2") is None and thread_of("C1", None) is None


def test_mentions_skip_the_muted_and_repeat_no_one():
    followup = FollowUp("promoted", "k3m9x2qa", "t", *THREAD, flaggers=("U0A", "U0B", "U0A"))
    assert to_mention(followup, muted={"U0B"}) == ("U0A",)


def test_a_follow_up_survives_the_outbox_json():
    followup = FollowUp("fixed", "k3m9x2qa", "t", *THREAD, flaggers=("U0A",), run_id=4, previous_run=3, changes=("x",))
    assert FollowUp.from_json(followup.to_json()) == followup
    with pytest.raises(ValueError):
        FollowUp.from_json({**followup.to_json(), "kind": "nonsense"})


def test_expectations_are_one_line_each():
    rubric, absent = parse_expectations([{"rubric": "States the 30-day\nwindow."}, {"not_contains": "90 days"}])
    assert expectation_line(rubric) == "rubric: States the 30-day window."
    assert expectation_line(absent) == "not contains: 90 days"


def test_a_flaky_flip_is_not_news_but_a_flaky_first_result_is():
    flaky = {"flaky": True}
    assert run_followups(4, [replace(outcome("pass", (3, "fail")), **flaky)]) == []
    assert run_followups(4, [replace(outcome("fail", (3, "pass")), **flaky)]) == []
    assert [f.kind for f in run_followups(4, [replace(outcome("fail", None), **flaky)])] == ["first_result"]

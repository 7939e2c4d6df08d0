"""Confirming flips by re-running them (bot/evals/confirm.py, bot/evals/rerun.py) over simulated nightly runs."""

from __future__ import annotations

import pytest

from bot.evals.confirm import ConfirmPolicy, decide, plan_next
from bot.evals.evaluate import run_eval
from bot.evals.stats import Tally
from bot.runtime import open_runtime
from tests.helpers.evals import RateTarget

pytestmark = pytest.mark.migrated_db  # the database starts migrated: each test's first use of it migrates in-process

POLICY = ConfirmPolicy()
CASE, GOOD_REPLY, BAD_REPLY = "2tj51dm1", "YES", "NO"  # `equals: YES`, no rubric: no judge


def rerun(direction, reference, initial, outcomes):
    """Drive plan_next with a scripted sequence of re-run results; the tally it ends with and the trials taken."""
    current, taken = initial, 0
    for passed in outcomes:
        if not plan_next(direction, reference, current, initial=initial, policy=POLICY):
            break
        current, taken = current + Tally(int(passed), 1), taken + 1
    return current, taken


def test_a_flaky_case_stops_re_running_once_its_passes_rule_out_a_significant_drop():
    # 8/10 before: after two passes, even three more fails (2/6) would leave p ~0.11 > 0.05
    current, taken = rerun("regression", Tally(8, 10), Tally(0, 1), [True, True, False, False, False])
    assert taken == 2 and current == Tally(2, 3)


def test_a_case_that_always_passed_is_re_run_five_times_when_it_keeps_failing():
    current, taken = rerun("regression", Tally(1, 1), Tally(0, 1), [False] * 20)
    assert taken == 5
    verdict = decide("regression", Tally(1, 1), current, status_now="fail", initial=Tally(0, 1), policy=POLICY)
    assert verdict.decision == "confirmed" and verdict.rerun_tally == Tally(0, 5) and verdict.p_value > POLICY.alpha


def test_an_ambiguous_round_earns_another_round():
    # 10/10 before, 2 of 6 now: p ~0.008, between alpha and 0.05: five more trials
    current, taken = rerun("regression", Tally(10, 10), Tally(0, 1), [True, False, True, False, False] + [False] * 10)
    assert taken == 10
    verdict = decide("regression", Tally(10, 10), current, status_now="fail", initial=Tally(0, 1), policy=POLICY)
    assert verdict.decision == "confirmed" and verdict.p_value <= POLICY.alpha


def test_a_significant_drop_is_not_confirmed_when_the_status_did_not_follow():
    verdict = decide("regression", Tally(10, 10), Tally(0, 6), status_now="pass", initial=Tally(0, 1), policy=POLICY)
    assert verdict.decision == "unconfirmed"


def test_without_re_runs_trials_are_tested_as_they_are():
    policy = ConfirmPolicy(trials=0)
    assert not plan_next("regression", Tally(10, 10), Tally(0, 5), initial=Tally(0, 5), policy=policy)
    verdict = decide("regression", Tally(20, 20), Tally(0, 5), status_now="fail", initial=Tally(0, 5), policy=policy)
    assert verdict.decision == "confirmed" and verdict.rerun == 0
    verdict = decide("regression", Tally(5, 5), Tally(2, 5), status_now="fail", initial=Tally(2, 5), policy=policy)
    assert verdict.decision == "unconfirmed"


@pytest.fixture
def rt(corpus_dir):
    return open_runtime()


def _nights(rt, target, nights):
    """One default run a night of CASE; each night's comparison."""
    out = []
    for night in range(nights):
        target.night = night
        out.append(run_eval(rt, case_ids=[CASE], target=target, trigger="nightly").comparison)
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_90_percent_case_never_gives_a_confirmed_regression_over_30_nights(rt, seed):
    target = RateTarget(good=GOOD_REPLY, bad=BAD_REPLY, rate=lambda night: 0.9, seed=seed)
    comparisons = _nights(rt, target, 30)
    flips = sum(bool(c.unconfirmed) for c in comparisons)
    assert flips >= 1  # it did flip: the re-runs were what kept it out of the regressions
    assert [c.run.id for c in comparisons if c.regressions] == []
    calls = len(target.calls)
    assert 30 < calls < 30 * 2  # re-runs stop early on a flaky case: fewer than 5 calls a flip


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_a_drop_from_100_to_20_percent_is_confirmed_the_night_it_first_fails(rt, seed):
    drop = 10
    target = RateTarget(good=GOOD_REPLY, bad=BAD_REPLY, rate=lambda night: 1.0 if night < drop else 0.2, seed=seed)
    comparisons = _nights(rt, target, drop + 8)
    assert [c for c in comparisons[:drop] if c.regressions or c.unconfirmed] == []
    failing = [c for c in comparisons[drop:] if c.cases[0].status == "fail"]
    first = failing[0]
    assert [c.case_id for c in first.regressions] == [CASE] and first.unconfirmed == []
    assert first.regressions[0].confirmation.decision == "confirmed"


def test_re_run_calls_are_counted_in_the_run_cost(rt):
    target = RateTarget(good=GOOD_REPLY, bad=BAD_REPLY, rate=lambda night: 1.0 if night == 0 else 0.0, seed=0)
    first, second = _nights(rt, target, 2)
    assert second.regressions[0].trials == 6 and len(target.calls) == 1 + 6
    assert second.run.input_tokens == 6 * 10 and second.run.output_tokens == 6 * 5  # FakeTarget: 10 in, 5 out a call
    assert second.run.cost_usd == pytest.approx(6 * first.run.cost_usd)


@pytest.fixture
def rt_db(db_url, corpus_dir):
    return open_runtime()


def test_the_reference_goes_back_no_further_than_the_last_re_run(rt_db):
    from bot.evals.rerun import reference_tallies
    from bot.store.tables import session_scope

    target = RateTarget(good=GOOD_REPLY, bad=BAD_REPLY, rate=lambda night: [1.0, 1.0, 0.0, 0.0][night], seed=0)
    comparisons = _nights(rt_db, target, 3)
    assert comparisons[2].regressions[0].trials == 6  # night 3: re-run, confirmed 0/6
    with session_scope(rt_db.engine) as session:
        at_night_2 = reference_tallies(session, baseline_id=comparisons[1].run.id, case_ids=[CASE], runs=10)
        at_night_3 = reference_tallies(session, baseline_id=comparisons[2].run.id, case_ids=[CASE], runs=10)
        only_one = reference_tallies(session, baseline_id=comparisons[1].run.id, case_ids=[CASE], runs=1)
    assert at_night_2 == {CASE: Tally(2, 2)} and only_one == {CASE: Tally(1, 1)}
    assert at_night_3 == {CASE: Tally(0, 6)}  # the re-run night starts a new regime: the passes before it are left out


def test_a_drop_left_unconfirmed_is_confirmed_the_next_night_it_fails(rt):
    from tests.helpers.evals import FakeTarget

    # three passing nights; then a fail whose re-run passes once and fails 14 times (1/16 against 3/3: p 0.004, not
    # confirmed after three rounds); the next night it fails again and every re-run fails
    target = FakeTarget(GOOD_REPLY, GOOD_REPLY, GOOD_REPLY, BAD_REPLY, GOOD_REPLY, default=BAD_REPLY)
    *_, ambiguous, later = _nights(rt, target, 5)
    assert ambiguous.regressions == [] and [c.case_id for c in ambiguous.unconfirmed] == [CASE]
    assert ambiguous.cases[0].trials == 16 and ambiguous.cases[0].confirmation.p_value > POLICY.alpha
    assert [c.case_id for c in later.regressions] == [CASE] and later.still_failing == []
    confirmation = later.regressions[0].confirmation
    assert (confirmation.decision, confirmation.reference, confirmation.current) == ("confirmed", Tally(3, 3), Tally(1, 22))
    assert confirmation.rerun_tally == Tally(0, 5)

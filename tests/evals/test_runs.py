"""One run at a time, across processes (bot/evals/runs.py): claims, the run lock, stale runs, background runs."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta

import pytest
from sqlmodel import select

from bot.core.clock import utcnow
from bot.core.errors import ConfigError, RunInProgressError
from bot.evals import runs
from bot.runtime import open_runtime
from bot.store import claims
from bot.store.tables import EvalRun, JobClaim, get_engine, session_scope
from tests.helpers.evalruns import record_run, wait_until
from tests.helpers.evals import GOOD, PassingJudge, replies

pytestmark = [pytest.mark.dates, pytest.mark.migrated_db]  # also checked a year ahead; the database starts migrated


@pytest.fixture
def rt(db_url, corpus_dir):
    return open_runtime()


def lock_row(rt) -> JobClaim | None:
    with session_scope(rt.engine) as session:
        return session.get(JobClaim, (runs.LOCK_JOB, runs.LOCK_SLOT))


def add_running_run(rt, *, age: timedelta = timedelta(0), trigger: str = "nightly", batch: bool = False) -> int:
    with session_scope(rt.engine) as session:
        run = EvalRun(status="running", trigger=trigger, started_at=utcnow() - age, cases_total=6,
                      mode="batch" if batch else "sync", batch_ids=["target:msgbatch_01"] if batch else [])
        session.add(run)
        session.flush()
        return run.id


def status_of(rt, run_id: int) -> tuple[str, str | None]:
    with session_scope(rt.engine) as session:
        run = session.get(EvalRun, run_id)
        return run.status, run.error


class GatedTarget:
    """The fake target, holding every reply until `gate` is set (a run that is visibly in progress)."""

    def __init__(self, gate: threading.Event):
        self.gate = gate
        self.inner = replies(GOOD)
        self.label = self.inner.label

    async def generate(self, case):
        while not self.gate.is_set():
            await asyncio.sleep(0.01)
        return await self.inner.generate(case)

    async def aclose(self):
        return None


# ---------------------------------------------------------------- claims


def test_a_claim_is_won_once_and_a_stale_one_can_be_taken_over(rt):
    with session_scope(rt.engine) as session:
        assert claims.claim(session, job="nightly", slot="2026-11-21T02:00:00+00:00", holder="a")
        assert not claims.claim(session, job="nightly", slot="2026-11-21T02:00:00+00:00", holder="b")
        assert claims.claim(session, job="nightly", slot="2026-11-22T02:00:00+00:00", holder="b")
        fresh = utcnow() - timedelta(minutes=1)
        assert not claims.claim(session, job="nightly", slot="2026-11-21T02:00:00+00:00", holder="b", take_over_before=fresh)
        assert claims.refresh(session, job="nightly", slot="2026-11-21T02:00:00+00:00", holder="a", at=claims.EPOCH)
        assert claims.claim(session, job="nightly", slot="2026-11-21T02:00:00+00:00", holder="b", take_over_before=fresh)
        assert not claims.refresh(session, job="nightly", slot="2026-11-21T02:00:00+00:00", holder="a")


def test_concurrent_claims_have_exactly_one_winner(rt, db_url):
    engines = [get_engine(db_url)] * 8
    barrier = threading.Barrier(len(engines))
    won: list[bool] = []

    def contend(engine):
        barrier.wait()
        with session_scope(engine) as session:
            won.append(claims.claim(session, job="nightly", slot="race", holder=threading.current_thread().name))

    threads = [threading.Thread(target=contend, args=(e,)) for e in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(won) == [False] * 7 + [True]


# ---------------------------------------------------------------- the run lock


def test_a_second_start_is_refused_while_the_lock_is_held(rt):
    lock = runs.acquire_run_lock(rt.engine, trigger="slack", user="U0LEAD001")
    with pytest.raises(RunInProgressError, match=r"already starting by /eval run \(@U0LEAD001\)"):
        runs.acquire_run_lock(rt.engine, trigger="nightly")
    run_id = add_running_run(rt, trigger="slack")
    with pytest.raises(RunInProgressError, match=rf"in progress: run {run_id}, started by /eval run \(@U0LEAD001\)"):
        runs.acquire_run_lock(rt.engine, trigger="nightly")
    assert status_of(rt, run_id) == ("running", None)  # a live lock's run is left alone
    lock.interrupt("interrupted: test")
    assert status_of(rt, run_id) == ("failed", "interrupted: test")
    assert lock_row(rt) is None
    runs.acquire_run_lock(rt.engine, trigger="nightly").release()


def test_the_lock_of_a_dead_process_is_taken_over_and_its_run_marked_failed(rt):
    with session_scope(rt.engine) as session:
        claims.claim(session, job=runs.LOCK_JOB, slot=runs.LOCK_SLOT, holder="nightly|-|gone:1|x")
        claims.refresh(session, job=runs.LOCK_JOB, slot=runs.LOCK_SLOT, holder="nightly|-|gone:1|x",
                     at=utcnow() - runs.LOCK_TIMEOUT - timedelta(seconds=5))
    orphan = add_running_run(rt, age=timedelta(minutes=10))
    lock = runs.acquire_run_lock(rt.engine, trigger="cli")
    try:
        assert lock_row(rt).claimed_by == lock.holder
        status, error = status_of(rt, orphan)
        assert status == "failed" and error.startswith("interrupted: the process running it stopped")
    finally:
        lock.release()


def test_the_heartbeat_keeps_a_long_run_locked(rt):
    lock = runs.acquire_run_lock(rt.engine, trigger="cli", heartbeat=timedelta(seconds=0.05))
    try:
        first = lock_row(rt).claimed_at
        wait_until(lambda: lock_row(rt).claimed_at > first, timeout=5, what="a heartbeat")
    finally:
        lock.release()
    assert lock_row(rt) is None


def test_runs_left_running_past_the_limit_are_marked_failed(rt):
    stale = add_running_run(rt, age=runs.STALE_AFTER + timedelta(minutes=1))
    runs.acquire_run_lock(rt.engine, trigger="cli").release()
    status, error = status_of(rt, stale)
    assert status == "failed" and error.startswith("abandoned: still running after 6:00:00")


def test_a_resumable_batch_run_is_never_failed_here_and_keeps_other_runs_out(rt):
    with session_scope(rt.engine) as session:  # its process died: a stale lock
        claims.claim(session, job=runs.LOCK_JOB, slot=runs.LOCK_SLOT, holder="nightly|-|gone:1|x")
        claims.refresh(session, job=runs.LOCK_JOB, slot=runs.LOCK_SLOT, holder="nightly|-|gone:1|x", at=claims.EPOCH)
    batch = add_running_run(rt, age=runs.STALE_AFTER + timedelta(hours=1), batch=True)
    dead = add_running_run(rt, age=timedelta(minutes=3))
    with pytest.raises(RunInProgressError, match=f"in progress: run {batch}, started by the nightly job 7 h ago"):
        runs.acquire_run_lock(rt.engine, trigger="slack")
    assert status_of(rt, batch) == ("running", None)  # to be resumed, not failed: neither stale nor orphaned
    assert status_of(rt, dead)[0] == "failed" and lock_row(rt) is None
    with pytest.raises(RunInProgressError, match=f"in progress: run {batch}"):
        runs.acquire_run_lock(rt.engine, trigger="slack")


def test_stopping_leaves_a_batch_run_to_be_resumed(rt):
    runs.acquire_run_lock(rt.engine, trigger="nightly")
    batch = add_running_run(rt, batch=True)
    assert runs.interrupt_in_flight() == 1
    assert status_of(rt, batch) == ("running", None) and lock_row(rt) is None


def test_a_recent_run_started_without_the_lock_is_left_alone_and_refuses(rt):
    young = add_running_run(rt, age=timedelta(minutes=5), trigger="cli")
    with pytest.raises(RunInProgressError, match=f"run {young}"):
        runs.acquire_run_lock(rt.engine, trigger="nightly")
    assert status_of(rt, young) == ("running", None) and lock_row(rt) is None


# ---------------------------------------------------------------- running


def test_run_exclusive_releases_the_lock_after_a_run_and_after_an_error(rt):
    report = runs.run_exclusive(rt, trigger="cli", target=replies(GOOD), judge=PassingJudge())
    assert report.comparison.run.passed == 6 and lock_row(rt) is None
    with pytest.raises(ConfigError, match="--case zzzz"):
        runs.run_exclusive(rt, trigger="cli", case_ids=["zzzz"], target=replies(GOOD), judge=PassingJudge())
    assert lock_row(rt) is None


def test_start_run_answers_at_once_refuses_a_second_run_and_reports_the_outcome(rt):
    gate = threading.Event()
    outcomes: list[runs.RunOutcome] = []
    started = runs.start_run(rt, trigger="slack", user="U0LEAD001", on_done=outcomes.append,
                             target=GatedTarget(gate), judge=PassingJudge())
    assert (started.cases, started.trials) == (6, 1)
    wait_until(lambda: _running(rt), what="the run row")
    with pytest.raises(RunInProgressError, match=r"in progress: run \d+, started by /eval run \(@U0LEAD001\)"):
        runs.start_run(rt, trigger="nightly", on_done=outcomes.append, target=replies(GOOD), judge=PassingJudge())
    gate.set()
    started.thread.join(timeout=20)
    [outcome] = outcomes
    assert outcome.error is None and outcome.report.comparison.run.passed == 6 and outcome.user == "U0LEAD001"
    assert lock_row(rt) is None


def _running(rt) -> bool:
    with session_scope(rt.engine) as session:
        return bool(runs.running_runs(session))


def test_a_run_that_raises_is_an_outcome_with_its_recorded_failure(rt):
    outcomes: list[runs.RunOutcome] = []

    class Broken(GatedTarget):
        async def generate(self, case):
            raise RuntimeError("target exploded")  # not a CallFailed (a per-case error): the run itself breaks

    started = runs.start_run(rt, trigger="nightly", on_done=outcomes.append, target=Broken(threading.Event()),
                             judge=PassingJudge())
    started.thread.join(timeout=20)
    [outcome] = outcomes
    assert outcome.report is None and outcome.error == "RuntimeError: target exploded"
    assert status_of(rt, outcome.run_id) == ("failed", "RuntimeError: target exploded") and lock_row(rt) is None


def test_start_run_checks_the_corpus_before_taking_the_lock(rt, corpus_dir):
    for path in (corpus_dir / "cases").glob("*.yaml"):
        path.unlink()
    with pytest.raises(ConfigError, match="no promoted case"):
        runs.start_run(rt, trigger="slack", on_done=lambda outcome: None)
    assert lock_row(rt) is None


def test_run_state_reports_the_last_run_and_who_is_running(rt):
    done = record_run(rt, trigger="nightly")
    lock = runs.acquire_run_lock(rt.engine, trigger="slack", user="U0LEAD001")
    try:
        with session_scope(rt.engine) as session:
            state = runs.run_state(session)
        assert state.last.id == done.run_id and state.running is None
        assert runs.holder_label(state.lock_holder) == "/eval run (@U0LEAD001)"
    finally:
        lock.release()
    with session_scope(rt.engine) as session:
        assert session.exec(select(EvalRun)).all()[0].status == "finished"

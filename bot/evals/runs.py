"""Starting eval runs one at a time, across processes, and the claims (JobClaim rows) that make that work.

Every run — the nightly job, `/eval run`, `evalbot eval run` — goes through `run_exclusive` or `start_run`.
Both take the run lock first: the JobClaim row (`eval-run`, `lock`), inserted with an INSERT that does nothing on
conflict (so exactly one process gets it, on SQLite and PostgreSQL), refreshed every HEARTBEAT while the run
lasts and deleted when it ends. A second start meanwhile raises RunInProgressError naming the run in progress.
A lock not refreshed for LOCK_TIMEOUT belongs to a process that died: the next start takes it over and marks that
process's `running` runs failed. `running` runs older than STALE_AFTER are marked failed whatever holds the lock.
Batch runs with batch ids are the exception: they are resumed after a restart (bot/evals/batch/resume.py), never failed
here, and while one is `running` no other run starts.

The lock is a claim (bot.store.claims), the same insert as a scheduler slot or a digest post.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.core.clock import utcnow
from bot.core.errors import EvalbotError, RunInProgressError
from bot.core.kinds import RunTrigger
from bot.core.people import person
from bot.evals.config import load_eval_config
from bot.evals.evaluate import RunReport, resume_eval, run_eval, select_cases, why_not_resumable
from bot.runtime import Runtime
from bot.store.claims import PROCESS, claim, died_here, refresh, release
from bot.store.tables import EvalRun, JobClaim, session_scope

log = logging.getLogger(__name__)

LOCK_JOB, LOCK_SLOT = "eval-run", "lock"
HEARTBEAT = timedelta(seconds=20)
LOCK_TIMEOUT = timedelta(minutes=2)  # a lock not refreshed for this long is a dead process's
STALE_AFTER = timedelta(hours=6)  # a run still `running` after this long is marked failed
INTERRUPTED = "interrupted"  # how the error of a run stopped from outside begins (it can be resumed)
TRIGGER_NAMES = {"nightly": "the nightly job", "slack": "/eval run", "cli": "evalbot eval run"}


# ---------------------------------------------------------------- the run lock


def running_runs(session: Session) -> list[EvalRun]:
    """Runs still marked `running`, newest first."""
    return list(session.exec(select(EvalRun).where(EvalRun.status == "running").order_by(col(EvalRun.id).desc())))


def resumable(run: EvalRun) -> bool:
    """A batch run with batch ids: `bot.evals.batch.resume.resume_batch_runs` finishes it after a restart, so it is never
    failed here (its own claim, `eval-batch`/<run id>, tells whether a process is driving it)."""
    return run.mode == "batch" and bool(run.batch_ids)


def fail_stale_runs(session: Session, *, started_before: datetime, reason: str) -> list[int]:
    """Mark `running` runs started before `started_before` as failed with `reason` (resumable ones excepted)."""
    stale = [r for r in running_runs(session) if r.started_at < started_before and not resumable(r)]
    for run in stale:
        run.status, run.error, run.finished_at = "failed", reason, utcnow()
        session.add(run)
    return [r.id for r in stale if r.id is not None]


def _ago(moment: datetime | None) -> str:
    if moment is None:
        return "just now"
    minutes = int((utcnow() - moment).total_seconds() // 60)
    if minutes < 1:
        return "less than a minute ago"
    return f"{minutes} min ago" if minutes < 120 else f"{minutes // 60} h ago"


def holder_process(holder: str) -> str:
    """The process (host:pid) in a run lock holder (trigger|user|host:pid|token)."""
    parts = holder.split("|")
    return parts[2] if len(parts) > 3 else ""


def holder_label(holder: str) -> str:
    """Who holds a run lock, for people: 'the nightly job', '/eval run (@U123)' (`bot.core.people`)."""
    trigger, _, rest = holder.partition("|")
    user = rest.partition("|")[0]
    return TRIGGER_NAMES.get(trigger, trigger) + (f" ({person(user)})" if user and user != "-" else "")


def in_progress_message(session: Session, *, lock_holder: str | None) -> str:
    """What is running now, for a person who tried to start another run."""
    running = running_runs(session)
    if running:
        run = running[0]
        same = lock_holder is not None and lock_holder.startswith(f"{run.trigger}|")
        who = holder_label(lock_holder) if same and lock_holder else TRIGGER_NAMES.get(run.trigger, run.trigger)
        return (f"an eval run is already in progress: run {run.id}, started by {who} {_ago(run.started_at)} "
                f"({run.cases_total} cases). Its digest follows when it ends; try again then.")
    who = f" by {holder_label(lock_holder)}" if lock_holder else ""
    return f"an eval run is already starting{who}; try again when its digest is posted."


class RunLock:
    """The held run lock: refreshed by a heartbeat thread until `release()`."""

    def __init__(self, engine: Engine, holder: str, *, last_run_id: int, heartbeat: timedelta):
        self.engine = engine
        self.holder = holder
        self.last_run_id = last_run_id  # runs with a higher id were started under this lock
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._heartbeat, args=(heartbeat.total_seconds(),), daemon=True,
                                      name="evalbot-run-lock")
        self._beat.start()

    def _heartbeat(self, seconds: float) -> None:
        while not self._stop.wait(seconds):
            try:
                with session_scope(self.engine) as session:
                    if not refresh(session, job=LOCK_JOB, slot=LOCK_SLOT, holder=self.holder):
                        log.error("the run lock was taken over by another process; this run continues unlocked")
                        return
            except Exception:  # noqa: BLE001 - a missed heartbeat is retried; LOCK_TIMEOUT tolerates several
                log.warning("could not refresh the run lock", exc_info=True)

    def started_run_id(self) -> int | None:
        """The run started under this lock, if one was recorded."""
        with session_scope(self.engine) as session:
            return session.exec(select(func.max(EvalRun.id)).where(col(EvalRun.id) > self.last_run_id)).first()

    def interrupt(self, reason: str) -> None:
        """Mark the run started under this lock failed with `reason` (unless it is resumable) and release the lock."""
        with session_scope(self.engine) as session:
            for run in session.exec(select(EvalRun).where(EvalRun.status == "running",
                                                          col(EvalRun.id) > self.last_run_id)):
                if not resumable(run):
                    run.status, run.error, run.finished_at = "failed", reason, utcnow()
                    session.add(run)
        self.release()

    def release(self) -> None:
        """Stop the heartbeat and delete the lock row (idempotent)."""
        if self._stop.is_set():
            return
        self._stop.set()
        with _IN_FLIGHT_GUARD:
            _IN_FLIGHT.discard(self)
        with session_scope(self.engine) as session:
            release(session, job=LOCK_JOB, slot=LOCK_SLOT, holder=self.holder)


_IN_FLIGHT: set[RunLock] = set()
_STARTED = utcnow()  # when this process started: its own runs are newer
_IN_FLIGHT_GUARD = threading.Lock()


def acquire_run_lock(engine: Engine, *, trigger: RunTrigger, user: str | None = None, stale_after: timedelta = STALE_AFTER,
                     lock_timeout: timedelta = LOCK_TIMEOUT, heartbeat: timedelta = HEARTBEAT) -> RunLock:
    """Take the run lock or raise RunInProgressError; fails runs left behind by dead processes on the way."""
    holder = f"{trigger}|{user or '-'}|{PROCESS}|{uuid.uuid4().hex[:8]}"
    now = utcnow()
    busy: str | None = None
    with session_scope(engine) as session:
        took_over = False
        if not claim(session, job=LOCK_JOB, slot=LOCK_SLOT, holder=holder):
            held = session.get(JobClaim, (LOCK_JOB, LOCK_SLOT))
            dead = held is not None and died_here(holder_process(held.claimed_by))  # killed here: no need to wait
            took_over = claim(session, job=LOCK_JOB, slot=LOCK_SLOT, holder=holder,
                              take_over_before=now + timedelta(seconds=1) if dead else now - lock_timeout)
            if not took_over:
                held = session.get(JobClaim, (LOCK_JOB, LOCK_SLOT))
                raise RunInProgressError(in_progress_message(session, lock_holder=held.claimed_by if held else None))
        for run_id in fail_stale_runs(session, started_before=now - stale_after,
                                      reason=f"abandoned: still running after {stale_after} (the process running it stopped)"):
            log.warning("run %d was still 'running' after %s: marked failed", run_id, stale_after)
        if took_over:
            for run_id in fail_stale_runs(session, started_before=now + timedelta(seconds=1),
                                          reason="interrupted: the process running it stopped"):
                log.warning("run %d belonged to a process that stopped: marked failed", run_id)
        if running_runs(session):  # a batch run being resumed, or a run started without the lock (an older evalbot)
            busy = in_progress_message(session, lock_holder=None)
            release(session, job=LOCK_JOB, slot=LOCK_SLOT, holder=holder)
        last = session.exec(select(func.max(EvalRun.id))).first() or 0
    if busy is not None:  # raised after the commit: the failures marked above are kept
        raise RunInProgressError(busy)
    lock = RunLock(engine, holder, last_run_id=last, heartbeat=heartbeat)
    with _IN_FLIGHT_GUARD:
        _IN_FLIGHT.add(lock)
    return lock


def interrupt_in_flight(reason: str = "interrupted: evalbot stopped during the run") -> int:
    """Fail this process's runs in progress and release their locks (at shutdown); how many there were."""
    with _IN_FLIGHT_GUARD:
        locks = list(_IN_FLIGHT)
    for lock in locks:
        try:
            lock.interrupt(reason)
        except Exception:  # noqa: BLE001 - shutting down: the lock expires on its own
            log.warning("could not mark an interrupted run failed", exc_info=True)
    return len(locks)


# ---------------------------------------------------------------- running


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended: its report, or the reason it failed (run_id set when the failure was recorded)."""

    trigger: RunTrigger
    run_id: int | None
    report: RunReport | None = None
    error: str | None = None
    user: str | None = None


def run_exclusive(rt: Runtime, *, trigger: RunTrigger = "cli", user: str | None = None, **run_kwargs: Any) -> RunReport:
    """`run_eval` under the run lock (RunInProgressError while another run is in progress)."""
    lock = acquire_run_lock(rt.engine, trigger=trigger, user=user)
    try:
        return run_eval(rt, trigger=trigger, **run_kwargs)
    finally:
        lock.release()


def _run_locked(rt: Runtime, lock: RunLock, *, trigger: RunTrigger, user: str | None, **run_kwargs: Any) -> RunOutcome:
    try:
        report = run_eval(rt, trigger=trigger, **run_kwargs)
        return RunOutcome(trigger, report.run_id, report=report, user=user)
    except EvalbotError as exc:
        error = str(exc)
    except Exception as exc:  # noqa: BLE001 - the outcome carries it to the channel; the traceback goes to the log
        log.exception("eval run (%s) failed", trigger)
        error = f"{type(exc).__name__}: {exc}"
    finally:
        run_id = lock.started_run_id()
        lock.release()
    return RunOutcome(trigger, run_id, error=error, user=user)


def run_once(rt: Runtime, *, trigger: RunTrigger, user: str | None = None, **run_kwargs: Any) -> RunOutcome:
    """Run under the lock and return the outcome instead of raising (RunInProgressError is still raised)."""
    lock = acquire_run_lock(rt.engine, trigger=trigger, user=user)
    return _run_locked(rt, lock, trigger=trigger, user=user, **run_kwargs)


def resume_exclusive(rt: Runtime, run_id: int, *, trigger: RunTrigger = "cli", user: str | None = None,
                     **resume_kwargs: Any) -> RunReport:
    """`resume_eval` under the run lock (RunInProgressError while a run, this one included, is in progress)."""
    lock = acquire_run_lock(rt.engine, trigger=trigger, user=user)
    try:
        return resume_eval(rt, run_id, **resume_kwargs)
    finally:
        lock.release()


def stopped_hint(rt: Runtime) -> str:
    """What to do about the run this process just stopped (Ctrl-C): resume it, with its id."""
    with session_scope(rt.engine) as session:
        run = session.exec(select(EvalRun).where(col(EvalRun.started_at) >= _STARTED)
                           .order_by(col(EvalRun.id).desc()).limit(1)).first()
    if run is None or run.id is None:
        return "no run was recorded"
    if run.status == "failed" and why_not_resumable(run) is None:
        return f"run {run.id} is kept; resume it with `evalbot eval run --resume {run.id}`"
    return f"run {run.id} is {run.status}"


def interrupted_runs(session: Session, *, trigger: RunTrigger, since: datetime) -> list[EvalRun]:
    """Synchronous runs of `trigger` started since `since` that an interruption stopped (a stop, a crash: not an
    error of their own) and that can be resumed, newest first."""
    query = select(EvalRun).where(EvalRun.trigger == trigger, EvalRun.mode == "sync", EvalRun.status == "failed",
                                  col(EvalRun.started_at) >= since)
    return [run for run in session.exec(query.order_by(col(EvalRun.id).desc()))
            if (run.error or "").startswith(INTERRUPTED) and why_not_resumable(run) is None]


def resume_interrupted(rt: Runtime, *, trigger: RunTrigger = "nightly", within: timedelta = STALE_AFTER,
                       **resume_kwargs: Any) -> RunOutcome | None:
    """At start: resume the newest `trigger` run that a stop or a crash interrupted within `within` (None if there
    is none). Runs under the run lock, taken over from a process of this host that died, which marks that
    process's runs interrupted first; RunInProgressError if another live process is running one."""
    lock = acquire_run_lock(rt.engine, trigger=trigger)
    with session_scope(rt.engine) as session:
        found = interrupted_runs(session, trigger=trigger, since=utcnow() - within)
        run_id = found[0].id if found else None
    if run_id is None:
        lock.release()
        return None
    log.info("resuming run %d (%s), interrupted before it finished", run_id, trigger, extra={"run_id": run_id})
    try:
        report = resume_eval(rt, run_id, **resume_kwargs)
        return RunOutcome(trigger, run_id, report=report)
    except EvalbotError as exc:
        return RunOutcome(trigger, run_id, error=str(exc))
    except Exception as exc:  # noqa: BLE001 - the outcome carries it to the channel; the traceback goes to the log
        log.exception("resuming run %d failed", run_id)
        return RunOutcome(trigger, run_id, error=f"{type(exc).__name__}: {exc}")
    finally:
        lock.release()


@dataclass(frozen=True)
class StartedRun:
    """A run started in the background."""

    cases: int
    trials: int
    thread: threading.Thread


def start_run(rt: Runtime, *, trigger: RunTrigger, on_done: Callable[[RunOutcome], object], user: str | None = None,
              **run_kwargs: Any) -> StartedRun:
    """Take the run lock now (RunInProgressError otherwise) and run in a daemon thread; `on_done(outcome)` at the end.

    What a person can get wrong (no promoted case, a bad evalbot.toml) raises here, before anything starts.
    """
    plan = select_cases(rt, case_ids=run_kwargs.get("case_ids", ()), tags=run_kwargs.get("tags", ()))
    trials = run_kwargs.get("trials") or load_eval_config(rt.corpus.root).run.trials
    lock = acquire_run_lock(rt.engine, trigger=trigger, user=user)

    def work() -> None:
        outcome = _run_locked(rt, lock, trigger=trigger, user=user, plan=plan, **run_kwargs)  # one index refresh
        try:
            on_done(outcome)
        except Exception:  # noqa: BLE001 - nothing above this thread to tell
            log.exception("reporting the outcome of run %s failed", outcome.run_id)

    thread = threading.Thread(target=work, name=f"evalbot-run-{trigger}", daemon=True)
    thread.start()
    return StartedRun(cases=len(plan.case_ids), trials=trials, thread=thread)


@dataclass(frozen=True)
class RunState:
    """For `/eval status`: the newest ended run and the run in progress, if any."""

    last: EvalRun | None
    running: EvalRun | None
    lock_holder: str | None  # trigger|user|process|token of the run lock


def run_state(session: Session) -> RunState:
    """The newest ended run, the newest running one and who holds the run lock."""
    last = session.exec(select(EvalRun).where(col(EvalRun.status).in_(("finished", "failed")))
                        .order_by(col(EvalRun.id).desc()).limit(1)).first()
    running = running_runs(session)
    lock = session.get(JobClaim, (LOCK_JOB, LOCK_SLOT))
    return RunState(last=last, running=running[0] if running else None, lock_holder=lock.claimed_by if lock else None)

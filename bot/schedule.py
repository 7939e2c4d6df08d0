"""The nightly run: an APScheduler 3.x BackgroundScheduler firing EVALBOT_NIGHTLY in EVALBOT_TIMEZONE.

Exactly one run per slot across replicas: before running, the job claims the slot with a JobClaim row
(`nightly`, <slot in UTC, ISO 8601>); the insert does nothing on conflict, so only one process gets it.
A run is never started while one is running: the job runs under the run lock (bot/evals/runs.py), and APScheduler
keeps one instance of it (`max_instances=1`, `coalesce=True`).

Restarts: APScheduler's memory job store forgets a slot that passed while the process was down, so each
scheduler also records the slot it is waiting for (`nightly:expected`). A scheduler started within
MISFIRE_GRACE after a slot that was expected fires the job for it at once; the slot's claim makes that run
happen once, however many restarts or replicas fire it. A slot nobody waited for (a first deployment) is not run.

The job itself (`Nightly.fire`) reports through `publish(outcome)`, given by the edge that posts digests.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.executors.base import BaseExecutor, run_job
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from sqlmodel import col, select

from bot.core.errors import RunInProgressError
from bot.core.settings import Settings
from bot.digest.data import DIGEST_JOB
from bot.evals.runs import RunOutcome, run_once
from bot.runtime import Runtime
from bot.store.claims import PROCESS, claim, forget_claims
from bot.store.dedupe import forget_old as forget_old_events
from bot.store.tables import JobClaim, session_scope

log = logging.getLogger(__name__)

JOB = "nightly"
EXPECTED = "nightly:expected"
JOB_ID, CATCH_UP_ID = "nightly", "nightly-catch-up"
MISFIRE_GRACE = timedelta(hours=6)
KEEP_CLAIMS = timedelta(days=30)  # housekeeping of old slot, expectation and digest claims
HOUSEKEEPING_HOURS = 6

Clock = Callable[[], datetime]
Publish = Callable[[RunOutcome], object]  # what it returns is ignored


def wall_clock() -> datetime:
    """The machine's UTC time. APScheduler fires on it, so the nightly job reads it too (never a shifted clock)."""
    return datetime.now(timezone.utc)


def nightly_trigger(settings: Settings) -> CronTrigger:
    """EVALBOT_NIGHTLY as a CronTrigger, in EVALBOT_TIMEZONE (passed explicitly: never the host's zone)."""
    return CronTrigger.from_crontab(settings.nightly, timezone=ZoneInfo(settings.timezone))


def next_nightly(settings: Settings, now: datetime | None = None) -> datetime | None:
    """When the next nightly run is due, in EVALBOT_TIMEZONE."""
    return nightly_trigger(settings).get_next_fire_time(None, now or wall_clock())


def slots_between(trigger: CronTrigger, start: datetime, end: datetime) -> list[datetime]:
    """The trigger's fire times in [start, end], oldest first."""
    found: list[datetime] = []
    moment = trigger.get_next_fire_time(None, start)
    while moment is not None and moment <= end:
        found.append(moment)
        moment = trigger.get_next_fire_time(moment, moment + timedelta(microseconds=1))
    return found


def slot_key(slot: datetime) -> str:
    """The slot as stored in JobClaim: UTC, ISO 8601."""
    return slot.astimezone(timezone.utc).isoformat()


class _DaemonThreadExecutor(BaseExecutor):
    """Runs each job in its own daemon thread, so a run in progress never holds up the process's exit."""

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        def work() -> None:
            try:
                events = run_job(job, job._jobstore_alias, run_times, self._logger.name)
            except BaseException as exc:  # noqa: BLE001 - handed to APScheduler's error bookkeeping
                self._run_job_error(job.id, exc, exc.__traceback__)
            else:
                self._run_job_success(job.id, events)

        threading.Thread(target=work, name=f"evalbot-job-{job.id}", daemon=True).start()


class Nightly:
    """The nightly job and its scheduler."""

    def __init__(self, rt: Runtime, *, publish: Publish, grace: timedelta = MISFIRE_GRACE, clock: Clock | None = None):
        self.rt = rt
        self.publish = publish
        self.grace = grace
        self.clock = clock or wall_clock
        self.trigger = nightly_trigger(rt.settings)
        self.timezone = ZoneInfo(rt.settings.timezone)
        self.scheduler: BackgroundScheduler | None = None

    # -- the job

    def current_slot(self, now: datetime) -> datetime | None:
        """The newest slot at or before `now`, within the grace period."""
        slots = slots_between(self.trigger, now - self.grace, now)
        return slots[-1] if slots else None

    def expect_next(self, after: datetime) -> datetime | None:
        """Record the next slot after `after` as awaited by a running scheduler; returns it."""
        upcoming = self.trigger.get_next_fire_time(after, after + timedelta(microseconds=1))
        if upcoming is not None:
            with session_scope(self.rt.engine) as session:
                claim(session, job=EXPECTED, slot=slot_key(upcoming), holder=PROCESS)
        return upcoming

    def fire(self, slot: datetime | None = None) -> RunOutcome | None:
        """Run the slot's nightly evaluation unless another process claimed the slot; publish the outcome."""
        now = self.clock()
        slot = slot or self.current_slot(now)
        if slot is None:
            log.warning("nightly job fired with no slot within %s of %s; skipped", self.grace, now)
            return None
        key = slot_key(slot)
        self.expect_next(max(slot, now))
        with session_scope(self.rt.engine) as session:
            won = claim(session, job=JOB, slot=key, holder=PROCESS)
        if not won:
            log.info("nightly run %s: another process claimed this slot", key)
            return None
        log.info("nightly run %s: claimed by %s, starting", key, PROCESS)
        try:
            outcome = run_once(self.rt, trigger="nightly")
        except RunInProgressError as exc:
            log.warning("nightly run %s skipped: %s", key, exc)
            return None
        try:
            self.publish(outcome)
        except Exception:  # noqa: BLE001 - the digest stays pending in the database and is posted at next start
            log.exception("posting the nightly digest of run %s failed", outcome.run_id)
        return outcome

    # -- restarts

    def missed_slot(self, now: datetime) -> datetime | None:
        """The newest slot within the grace period that a scheduler awaited (coalesced), unless a later one ran.

        Whether that slot itself ran already is left to its claim in `fire`, so replicas starting together
        all try it and exactly one runs it.
        """
        slots = slots_between(self.trigger, now - self.grace, now)
        if not slots:
            return None
        keys = {slot_key(s): s for s in slots}
        with session_scope(self.rt.engine) as session:
            rows = session.exec(select(JobClaim.job, JobClaim.slot).where(
                col(JobClaim.job).in_((JOB, EXPECTED)), col(JobClaim.slot).in_(list(keys)))).all()
        claimed = {slot for job, slot in rows if job == JOB}
        expected = {slot for job, slot in rows if job == EXPECTED}
        for key in sorted(keys, key=lambda k: keys[k], reverse=True):
            if key in expected:
                return keys[key]
            if key in claimed:
                return None  # a later slot ran: older ones are not run
        return None

    # -- the scheduler

    def housekeeping(self) -> None:
        """Drop claims and processed Slack event ids that can no longer matter (at start, then every few hours)."""
        with session_scope(self.rt.engine) as session:
            forget_claims(session, jobs=(JOB, EXPECTED, DIGEST_JOB), older_than=self.clock() - KEEP_CLAIMS)
        forget_old_events(self.rt.engine)

    def start(self) -> BackgroundScheduler:
        """Start the scheduler: the cron job, plus a catch-up run of a missed slot still within the grace period."""
        now = self.clock()
        grace = int(self.grace.total_seconds())
        self.housekeeping()
        missed = self.missed_slot(now)
        scheduler = BackgroundScheduler(timezone=self.timezone, executors={"default": _DaemonThreadExecutor()},
                                        job_defaults={"misfire_grace_time": grace, "coalesce": True, "max_instances": 1})
        scheduler.add_job(self.fire, self.trigger, id=JOB_ID, name="nightly eval run", misfire_grace_time=grace,
                          coalesce=True, max_instances=1)
        scheduler.add_job(self.housekeeping, "interval", hours=HOUSEKEEPING_HOURS, id="housekeeping",
                          name="drop old claims and event ids")
        if missed is not None:
            log.info("nightly slot %s passed while this process was down: running it now unless it ran already",
                     slot_key(missed))
            scheduler.add_job(self.fire, DateTrigger(run_date=missed, timezone=self.timezone), args=[missed],
                              id=CATCH_UP_ID, name="missed nightly eval run", misfire_grace_time=grace,
                              coalesce=True, max_instances=1)
        upcoming = self.expect_next(now)
        scheduler.start()
        self.scheduler = scheduler
        log.info("nightly eval run scheduled: %s (%s), next at %s", self.rt.settings.nightly, self.rt.settings.timezone,
                 upcoming.isoformat() if upcoming else "never")
        return scheduler

    def next_run_time(self) -> datetime | None:
        """When the cron job fires next (None before start or after shutdown)."""
        job = self.scheduler.get_job(JOB_ID) if self.scheduler else None
        return job.next_run_time if job else None

    def shutdown(self) -> None:
        """Stop the scheduler without waiting for a run in progress (bot/evals/runs.py `interrupt_in_flight` fails it)."""
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        self.scheduler = None


def start_nightly(rt: Runtime, *, publish: Publish, grace: timedelta = MISFIRE_GRACE, clock: Clock | None = None) -> Nightly:
    """Build and start the nightly scheduler for `rt`; call `.shutdown()` to stop it."""
    nightly = Nightly(rt, publish=publish, grace=grace, clock=clock)
    nightly.start()
    return nightly


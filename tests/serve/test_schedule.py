"""The nightly scheduler (bot/schedule.py): its trigger, the job firing, restarts within the grace period, claims.

The clock is never waited for: the job is fired through APScheduler with `modify_job(next_run_time=now)`, or by
a slot that passed minutes ago (a restart), with `Nightly(clock=...)` fixing the time the job reasons about.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger
from sqlmodel import select

from bot.core.settings import get_settings
from bot.evals import runs
from bot.runtime import open_runtime
from bot.schedule import CATCH_UP_ID, EXPECTED, JOB, JOB_ID, MISFIRE_GRACE, Nightly, next_nightly, slot_key
from bot.store import claims as job_claims
from bot.store.tables import EvalRun, JobClaim, session_scope
from tests.helpers.evalruns import anthropic_corpus, wait_until

pytestmark = [pytest.mark.dates, pytest.mark.migrated_db]  # also checked a year ahead; the database starts migrated

UTC = timezone.utc
SLOT = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)


def configure(monkeypatch, nightly: str, tz: str = "UTC") -> None:
    monkeypatch.setenv("EVALBOT_NIGHTLY", nightly)
    monkeypatch.setenv("EVALBOT_TIMEZONE", tz)
    get_settings.cache_clear()


@pytest.fixture
def fake(corpus_dir, monkeypatch):
    with anthropic_corpus(corpus_dir, monkeypatch) as server:
        yield server


class Published:
    """The `publish` callback: records outcomes and lets a test wait for them."""

    def __init__(self):
        self.outcomes = []
        self.changed = threading.Condition()

    def __call__(self, outcome):
        with self.changed:
            self.outcomes.append(outcome)
            self.changed.notify_all()

    def wait(self, count: int = 1, timeout: float = 20):
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.outcomes) >= count, timeout), f"{len(self.outcomes)} published"
        return self.outcomes[count - 1]


def claims(rt, job: str) -> list[str]:
    with session_scope(rt.engine) as session:
        return sorted(session.exec(select(JobClaim.slot).where(JobClaim.job == job)).all())


def run_rows(rt) -> list[EvalRun]:
    with session_scope(rt.engine) as session:
        return list(session.exec(select(EvalRun)))


def expect(rt, slot: datetime) -> None:
    """What a scheduler running before `slot` left behind: the slot recorded as awaited."""
    with session_scope(rt.engine) as session:
        job_claims.claim(session, job=EXPECTED, slot=slot_key(slot), holder="earlier-process")


def test_the_trigger_is_the_cron_expression_in_the_configured_time_zone(monkeypatch):
    configure(monkeypatch, "0 2 * * *", "Europe/Berlin")
    settings = get_settings()
    # 02:00 in Berlin is 01:00 UTC in winter and 00:00 UTC in summer, whatever the host's zone
    assert next_nightly(settings, datetime(2026, 11, 21, 0, 30, tzinfo=UTC)) == datetime(2026, 11, 21, 1, 0, tzinfo=UTC)
    assert next_nightly(settings, datetime(2026, 7, 1, 0, 30, tzinfo=UTC)) == datetime(2026, 7, 2, 0, 0, tzinfo=UTC)
    assert next_nightly(settings, datetime(2026, 7, 1, 0, 30, tzinfo=UTC)).tzinfo == ZoneInfo("Europe/Berlin")


def test_the_scheduled_job_has_hours_of_grace_coalesces_and_runs_one_instance(db_url, corpus_dir, monkeypatch):
    configure(monkeypatch, "30 3 * * 1-5", "America/New_York")
    nightly = Nightly(open_runtime(), publish=Published())
    nightly.start()
    try:
        job = nightly.scheduler.get_job(JOB_ID)
        assert isinstance(job.trigger, CronTrigger) and job.trigger.timezone == ZoneInfo("America/New_York")
        assert (job.misfire_grace_time, job.coalesce, job.max_instances) == (MISFIRE_GRACE.total_seconds(), True, 1)
        assert job.next_run_time == next_nightly(get_settings())
        assert nightly.next_run_time() == job.next_run_time
        assert nightly.scheduler.get_job(CATCH_UP_ID) is None  # nothing was awaited before this first start
        assert claims(nightly.rt, EXPECTED) == [slot_key(job.next_run_time)]
    finally:
        nightly.shutdown()
    assert nightly.next_run_time() is None


def test_the_job_fired_by_the_scheduler_claims_its_slot_runs_the_corpus_and_publishes(fake, db_url, monkeypatch):
    configure(monkeypatch, "0 2 * * *")
    published = Published()
    nightly = Nightly(open_runtime(), publish=published, clock=lambda: SLOT + timedelta(seconds=0.3))
    nightly.start()
    try:
        nightly.scheduler.modify_job(JOB_ID, next_run_time=datetime.now(UTC))  # the clock reaches 02:00
        outcome = published.wait()
    finally:
        nightly.shutdown()
    assert outcome.trigger == "nightly" and outcome.error is None
    assert outcome.report.comparison.run.passed == 6
    assert claims(nightly.rt, JOB) == ["2026-11-21T02:00:00+00:00"]
    assert "2026-11-22T02:00:00+00:00" in claims(nightly.rt, EXPECTED)
    assert nightly.fire(SLOT) is None  # the same slot again (another replica, a redelivery): claimed already
    assert len(published.outcomes) == 1 and [r.trigger for r in run_rows(nightly.rt)] == ["nightly"]


def test_a_restart_after_the_slot_runs_it_once_and_a_second_start_does_not(fake, db_url, monkeypatch):
    slot = (datetime.now(UTC) - timedelta(minutes=5)).replace(second=0, microsecond=0)
    configure(monkeypatch, f"{slot.minute} {slot.hour} * * *")
    rt = open_runtime()
    before = Nightly(rt, publish=Published(), clock=lambda: slot - timedelta(hours=1))  # up an hour before the slot
    before.start()
    before.shutdown()  # ...and down when it came
    assert slot_key(slot) in claims(rt, EXPECTED) and run_rows(rt) == []

    published = Published()
    restarted = Nightly(rt, publish=published)
    restarted.start()
    try:
        outcome = published.wait()
    finally:
        restarted.shutdown()
    assert outcome.report.comparison.run.passed == 6 and claims(rt, JOB) == [slot_key(slot)]

    again = Nightly(rt, publish=published)
    again.start()
    try:  # the missed slot fires again, and its claim stops it
        wait_until(lambda: again.scheduler.get_job(CATCH_UP_ID) is None, what="the catch-up job to run")
        time.sleep(0.1)
    finally:
        again.shutdown()
    assert len(published.outcomes) == 1 and len(run_rows(rt)) == 1 and claims(rt, JOB) == [slot_key(slot)]


def test_which_missed_slot_a_start_runs(db_url, corpus_dir, monkeypatch):
    configure(monkeypatch, "*/10 * * * *")
    rt = open_runtime()
    at = lambda moment: Nightly(rt, publish=Published(), clock=lambda: moment)  # noqa: E731
    assert at(SLOT + timedelta(minutes=5)).missed_slot(SLOT + timedelta(minutes=5)) is None  # never awaited
    for minutes in (0, 10, 20):
        expect(rt, SLOT + timedelta(minutes=minutes))
    now = SLOT + timedelta(minutes=25)
    assert at(now).missed_slot(now) == SLOT + timedelta(minutes=20)  # coalesced: the newest, once
    late = SLOT + timedelta(minutes=20) + MISFIRE_GRACE + timedelta(minutes=1)
    assert at(late).missed_slot(late) is None  # past the grace period
    with session_scope(rt.engine) as session:
        job_claims.claim(session, job=JOB, slot=slot_key(SLOT + timedelta(minutes=30)), holder="replica-2")
    later = SLOT + timedelta(minutes=35)
    assert at(later).missed_slot(later) is None  # a later slot ran: the older ones are not run


def test_a_slot_that_comes_while_a_run_is_in_progress_is_skipped(db_url, corpus_dir, monkeypatch):
    configure(monkeypatch, "0 2 * * *")
    published = Published()
    nightly = Nightly(open_runtime(), publish=published, clock=lambda: SLOT)
    lock = runs.acquire_run_lock(nightly.rt.engine, trigger="slack", user="U0LEAD001")
    try:
        assert nightly.fire() is None
    finally:
        lock.release()
    assert published.outcomes == [] and run_rows(nightly.rt) == []
    assert claims(nightly.rt, JOB) == [slot_key(SLOT)]


def test_housekeeping_drops_captured_inbox_rows_past_slacks_retry_window(db_url, corpus_dir):
    from bot.capture.candidate import FlagRequest
    from bot.capture.inbox import enqueue
    from bot.store.dedupe import KEEP
    from bot.store.tables import PendingFlag

    rt = open_runtime()
    flag = FlagRequest(channel="C1", user_id="U1", trigger="reaction", ts="1.000001")
    for key in ("event:EvOld", "event:EvNew", "event:EvFailed"):
        assert enqueue(rt.engine, key=key, flag=flag)
    with session_scope(rt.engine) as session:
        for key, status in (("event:EvOld", "done"), ("event:EvNew", "done"), ("event:EvFailed", "failed")):
            row = session.get(PendingFlag, key)
            row.status = status
            if key != "event:EvNew":
                row.updated_at -= KEEP + timedelta(hours=1)
    Nightly(rt, publish=lambda outcome: None).housekeeping()
    with session_scope(rt.engine) as session:
        assert sorted(e.key for e in session.exec(select(PendingFlag))) == ["event:EvFailed", "event:EvNew"]

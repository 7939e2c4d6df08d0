"""The flag inbox: written once per key, leased to one worker at a time, retried with backoff, parked, returned."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import timedelta

import pytest

from bot.capture import inbox
from bot.capture.candidate import FlagRequest
from bot.store.tables import PendingFlag, get_engine, migrate, session_scope

pytestmark = pytest.mark.migrated_db  # the database starts migrated: each test's first use of it migrates in-process


@pytest.fixture
def engine(db_url):
    engine = get_engine(db_url)
    migrate(engine)
    return engine


def flag(ts: str = "1763700000.000100", user: str = "U1") -> FlagRequest:
    return FlagRequest(channel="C1", user_id=user, trigger="reaction", ts=ts)


def test_a_key_is_written_once(engine):
    assert inbox.enqueue(engine, key="event:Ev1", flag=flag())
    assert not inbox.enqueue(engine, key="event:Ev1", flag=flag(user="U2"))
    assert inbox.known(engine, channel="C1", ts="1763700000.000100")
    assert not inbox.known(engine, channel="C1", ts="1763700000.000200")
    assert inbox.pending_count(engine) == 1


def test_racing_workers_each_lease_a_row_exactly_once(engine):
    for i in range(40):
        inbox.enqueue(engine, key=f"event:Ev{i}", flag=flag(ts=f"1763700000.{i:06d}"))
    taken: dict[str, list[str]] = {}
    start = threading.Barrier(4)

    def worker(owner: str) -> None:
        start.wait()
        mine: list[str] = []
        while batch := inbox.claim(engine, owner=owner, limit=3):
            mine += [c.key for c in batch]
        taken[owner] = mine

    threads = [threading.Thread(target=worker, args=(f"host:{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    keys = [key for mine in taken.values() for key in mine]
    assert sorted(keys) == sorted(f"event:Ev{i}" for i in range(40))


def test_only_the_lease_holder_completes_a_row(engine):
    inbox.enqueue(engine, key="event:Ev1", flag=flag())
    [claimed] = inbox.claim(engine, owner="a:1", limit=5)
    assert claimed.flag == flag() and not claimed.retry
    assert inbox.claim(engine, owner="b:2", limit=5) == []
    assert not inbox.complete(engine, key="event:Ev1", owner="b:2", case_id="abcd1234")
    assert inbox.complete(engine, key="event:Ev1", owner="a:1", case_id="abcd1234")
    with session_scope(engine) as session:
        row = session.get(PendingFlag, "event:Ev1")
    assert (row.status, row.case_id, row.leased_by) == ("done", "abcd1234", None)
    assert inbox.claim(engine, owner="a:1", limit=5) == []


def test_a_failing_row_backs_off_then_is_parked_with_its_error(engine):
    inbox.enqueue(engine, key="event:Ev1", flag=flag())
    for attempt in range(inbox.MAX_ATTEMPTS):
        [claimed] = inbox.claim(engine, owner="a:1", limit=1)
        assert claimed.attempts == attempt
        verdict = inbox.fail(engine, key=claimed.key, owner="a:1", error=f"boom {attempt}", attempts_before=attempt)
        assert verdict == ("failed" if attempt == inbox.MAX_ATTEMPTS - 1 else "retry")
        if verdict == "retry":
            assert inbox.claim(engine, owner="a:1", limit=1) == []  # not due before its backoff
            with session_scope(engine) as session:
                session.get(PendingFlag, claimed.key).next_attempt_at -= inbox.BACKOFF_MAX
    [parked] = inbox.parked(engine)
    assert (parked.status, parked.attempts, parked.error) == ("failed", inbox.MAX_ATTEMPTS, f"boom {inbox.MAX_ATTEMPTS - 1}")
    assert inbox.claim(engine, owner="a:1", limit=1) == [] and inbox.pending_count(engine) == 0


def test_backoff_doubles_up_to_its_cap():
    assert [inbox.backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [2, 4, 8, 16]
    assert inbox.backoff(30) == inbox.BACKOFF_MAX


def test_an_expired_lease_is_taken_by_another_worker(engine):
    inbox.enqueue(engine, key="event:Ev1", flag=flag())
    assert inbox.claim(engine, owner="a:1", limit=1, lease=timedelta(seconds=-1))
    [again] = inbox.claim(engine, owner="b:2", limit=1)
    assert again.key == "event:Ev1"
    assert not inbox.complete(engine, key="event:Ev1", owner="a:1", case_id=None)  # the first lost its lease


def test_leases_of_a_dead_process_on_this_host_are_returned(engine):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_owner = inbox.owner_id(int(dead.stdout))
    for key, owner in (("event:Ev1", dead_owner), ("event:Ev2", inbox.owner_id())):
        inbox.enqueue(engine, key=key, flag=flag(ts=key[-1] + ".000001"))
        assert inbox.claim(engine, owner=owner, limit=1, keys=[key])
    assert inbox.release_dead(engine) == 1
    [back] = inbox.claim(engine, owner="c:3", limit=5)
    assert back.key == "event:Ev1"
    assert inbox.release(engine, owner=inbox.owner_id()) == 1


def test_a_zombie_holder_counts_as_dead():
    """A killed worker whose parent died too can stay a zombie (an init that does not reap): its leases go back."""
    import subprocess
    import sys
    import time

    from bot.store.claims import process_alive as _alive

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while _alive(child.pid) and time.monotonic() < deadline:  # exited, not yet reaped by us: a zombie
        time.sleep(0.02)
    assert not _alive(child.pid)
    child.wait()
    assert _alive(os.getpid())

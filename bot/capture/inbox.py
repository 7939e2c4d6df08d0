"""The durable flag inbox (`pending_flags`): a flag is written here before Slack is acked, and leaves only captured.

Slack-free. The edge `enqueue`s a flag under a key (the event id, so a redelivery is the same row); capture
workers `claim` rows under a lease, by a compare-and-set update that works between replicas on PostgreSQL and
between threads and processes on SQLite; a row is `complete`d after the commit and the thread reply, or
`fail`ed: retried with backoff, then parked as `failed` with its error. Leases of a worker that died are
returned (`release`, `release_dead`); a lease that simply runs out is taken again by anyone. Done rows are
dropped after Slack's retry window by `bot.store.dedupe.forget_old`.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from sqlalchemy import ColumnElement, insert, or_, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import col, func, select

from bot.capture.candidate import FlagRequest
from bot.core.clock import utcnow
from bot.store.tables import PendingFlag, session_scope

LEASE = timedelta(minutes=5)  # longer than any capture (Slack reads, drafting bounded to seconds, one commit)
MAX_ATTEMPTS = 5
BACKOFF_FIRST = timedelta(seconds=2)
BACKOFF_MAX = timedelta(minutes=2)
ERROR_CHARS = 2000
SQLITE_WAIT_SECONDS = 30  # as long as the engine's own busy timeout
SQLITE_BUSY_TIMEOUT_MS = 30000  # bot.store.tables sets this on every SQLite connection


def owner_id(pid: int | None = None) -> str:
    """Who holds a lease: host and process id (the same host can tell whether that process still lives)."""
    return f"{socket.gethostname()}:{pid or os.getpid()}"


@dataclass(frozen=True)
class Claimed:
    """A leased inbox row: its key, the flag, and how many attempts came before this one."""

    key: str
    flag: FlagRequest
    attempts: int

    @property
    def retry(self) -> bool:
        return self.attempts > 0


def enqueue(engine: Engine, *, key: str, flag: FlagRequest) -> bool:
    """Write the flag to the inbox; False when `key` is already there (a redelivery, or caught up already)."""
    row = PendingFlag(key=key, channel=flag.channel, ts=flag.ts, thread_ts=flag.thread_ts, user_id=flag.user_id,
                      trigger=flag.trigger, note=flag.note)
    if engine.dialect.name == "sqlite":
        return _enqueue_sqlite(engine, row)
    try:
        with session_scope(engine) as session:
            session.add(row)
    except IntegrityError:
        return False
    return True


def _enqueue_sqlite(engine: Engine, row: PendingFlag) -> bool:
    """The insert on the ack path, on SQLite: its one writer lock is often held for a moment by the capture
    worker, and SQLite's own busy handler then sleeps 1, 2, 5, 10 … 100 ms between tries. Polling every half
    millisecond instead takes the lock as soon as it is free; and this commit never runs the WAL checkpoint
    (hundreds of ms with its fsyncs on a busy disk). Together they keep the ack fast under a burst."""
    deadline = time.monotonic() + SQLITE_WAIT_SECONDS
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA busy_timeout = 0")
        # The commit that takes the WAL past its threshold runs the checkpoint (and its fsyncs): let the
        # capture worker's commits do that, not the ack's.
        connection.exec_driver_sql("PRAGMA wal_autocheckpoint = 0")
        connection.commit()
        try:
            while True:
                try:
                    with connection.begin():
                        connection.execute(insert(PendingFlag).values(**row.model_dump()))
                    return True
                except IntegrityError:
                    return False
                except OperationalError as exc:
                    if "locked" not in str(exc) or time.monotonic() > deadline:
                        raise
                    time.sleep(0.0005)
        finally:
            connection.rollback()
            connection.exec_driver_sql(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            connection.exec_driver_sql("PRAGMA wal_autocheckpoint = 1000")  # SQLite's default
            connection.commit()


def known(engine: Engine, *, channel: str, ts: str) -> bool:
    """Whether any inbox row (pending, done or failed) is about this message."""
    with session_scope(engine) as session:
        found = session.exec(select(PendingFlag.key).where(col(PendingFlag.channel) == channel,
                                                           col(PendingFlag.ts) == ts).limit(1)).first()
    return found is not None


def _claimable(now: datetime) -> ColumnElement[bool]:
    return or_(
        (col(PendingFlag.status) == "pending") & (col(PendingFlag.next_attempt_at) <= now),
        (col(PendingFlag.status) == "leased") & (col(PendingFlag.lease_until) < now),
    )


def claim(engine: Engine, *, owner: str, limit: int, keys: Iterable[str] | None = None,
          lease: timedelta = LEASE) -> list[Claimed]:
    """Lease up to `limit` rows that are due (or whose lease ran out), oldest first; only `keys` when given."""
    now = utcnow()
    query = select(PendingFlag.key).where(_claimable(now)).order_by(col(PendingFlag.received_at)).limit(limit * 2)
    if keys is not None:
        query = query.where(col(PendingFlag.key).in_(list(keys)))
    with session_scope(engine) as session:
        candidates = list(session.exec(query))
    taken: list[Claimed] = []
    for key in candidates:
        if len(taken) >= limit:
            break
        with session_scope(engine) as session:
            # Compare-and-set: of the workers racing for one row, exactly one sees its update match. One
            # statement (RETURNING the row), so the transaction holds SQLite's writer lock for no longer.
            row = session.execute(
                update(PendingFlag).where(col(PendingFlag.key) == key, _claimable(now))
                .values(status="leased", leased_by=owner, lease_until=now + lease, updated_at=now)
                .returning(*(col(c) for c in (PendingFlag.attempts, PendingFlag.channel, PendingFlag.user_id,
                                              PendingFlag.trigger, PendingFlag.ts, PendingFlag.thread_ts,
                                              PendingFlag.note)))
            ).first()
        if row is None:
            continue
        taken.append(Claimed(key=key, attempts=row.attempts, flag=FlagRequest(
            channel=row.channel, user_id=row.user_id, trigger=row.trigger, ts=row.ts, thread_ts=row.thread_ts,
            note=row.note)))
    return taken


def _finish(engine: Engine, key: str, owner: str, **values: object) -> bool:
    with session_scope(engine) as session:
        result = session.execute(
            update(PendingFlag).where(col(PendingFlag.key) == key, col(PendingFlag.leased_by) == owner,
                                      col(PendingFlag.status) == "leased")
            .values(leased_by=None, lease_until=None, updated_at=utcnow(), **values)
        )
        return result.rowcount == 1  # type: ignore[attr-defined]


def complete(engine: Engine, *, key: str, owner: str, case_id: str | None) -> bool:
    """The flag is captured and answered: done (False if the lease was lost meanwhile)."""
    return _finish(engine, key, owner, status="done", case_id=case_id, error=None)


def backoff(attempts: int) -> timedelta:
    """The wait before attempt `attempts + 1`: 2 s doubling, at most 2 minutes."""
    return min(BACKOFF_MAX, BACKOFF_FIRST * (2 ** max(0, attempts - 1)))


def fail(engine: Engine, *, key: str, owner: str, error: str, attempts_before: int,
         max_attempts: int | None = None) -> Literal["retry", "failed"]:
    """Record a failed attempt: the row is retried after a backoff, or parked as failed after `max_attempts`."""
    attempts = attempts_before + 1
    parked = attempts >= (max_attempts or MAX_ATTEMPTS)
    _finish(engine, key, owner, attempts=attempts, error=error[:ERROR_CHARS],
            status="failed" if parked else "pending", next_attempt_at=utcnow() + backoff(attempts))
    return "failed" if parked else "retry"


def release(engine: Engine, *, owner: str) -> int:
    """Return every row leased by `owner` (a worker that died) to the inbox, due at once."""
    now = utcnow()
    with session_scope(engine) as session:
        result = session.execute(
            update(PendingFlag).where(col(PendingFlag.leased_by) == owner, col(PendingFlag.status) == "leased")
            .values(status="pending", leased_by=None, lease_until=None, next_attempt_at=now, updated_at=now)
        )
        return result.rowcount or 0  # type: ignore[attr-defined]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A killed worker whose parent died too stays a zombie until init reaps it (some inits never do): dead.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc to ask: it answered the signal, so count it alive
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def release_dead(engine: Engine) -> int:
    """Return the leases of processes on this host that no longer run (a killed `serve` and its worker)."""
    host = socket.gethostname()
    with session_scope(engine) as session:
        owners = set(session.exec(select(PendingFlag.leased_by).where(col(PendingFlag.status) == "leased")))
    released = 0
    for owner in owners:
        name, _, pid = (owner or "").rpartition(":")
        if name == host and pid.isdigit() and not _alive(int(pid)):
            released += release(engine, owner=owner or "")
    return released


def pending_count(engine: Engine) -> int:
    """Rows still to capture (pending or leased)."""
    with session_scope(engine) as session:
        return session.exec(select(func.count()).select_from(PendingFlag)
                            .where(col(PendingFlag.status).in_(["pending", "leased"]))).one()


def parked(engine: Engine, *, limit: int = 20) -> list[PendingFlag]:
    """Flags that failed every attempt, newest first (for `evalbot doctor` and `/eval status`)."""
    with session_scope(engine) as session:
        return list(session.exec(select(PendingFlag).where(col(PendingFlag.status) == "failed")
                                 .order_by(col(PendingFlag.updated_at).desc()).limit(limit)))

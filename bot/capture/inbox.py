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
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any, Literal

from sqlalchemy import ColumnElement, or_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.sql.dml import Insert
from sqlmodel import col, func, select

from bot.capture.candidate import FlagRequest
from bot.core.clock import utcnow
from bot.store import writes
from bot.store.claims import process_alive
from bot.store.tables import ACK_CONNECTIONS, PendingFlag, ack_engine, session_scope

LEASE = timedelta(minutes=5)  # longer than any capture (Slack reads, drafting bounded to seconds, one commit)
MAX_ATTEMPTS = 5
BACKOFF_FIRST = timedelta(seconds=2)
BACKOFF_MAX = timedelta(minutes=2)
ERROR_CHARS = 2000
SQLITE_WAIT_SECONDS = 30  # as long as the engine's own busy timeout


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
    """Write the flag to the inbox; False when `key` is already there (a redelivery, or caught up already).

    One `INSERT … ON CONFLICT DO NOTHING` that commits as it completes, on the ack engine (`ack_engine`: a pool
    of warm connections of its own): when this returns the row is committed; when it raises, nothing was written
    and the caller must not ack."""
    now = utcnow()
    values = {"key": key, "channel": flag.channel, "ts": flag.ts, "thread_ts": flag.thread_ts, "user_id": flag.user_id,
              "trigger": flag.trigger, "note": flag.note, "status": "pending", "attempts": 0, "next_attempt_at": now,
              "received_at": now, "updated_at": now}
    ack = ack_engine(engine)
    statement = _insert_statement(ack.dialect.name)
    if ack.dialect.name == "sqlite":
        return _enqueue_sqlite(ack, statement, values)
    try:
        with ack.connect() as connection:
            return connection.execute(statement, values).rowcount == 1
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
    # The ack engine does not ping a connection before using it: one found dead (the database restarted) made
    # the insert fail and the pool drop its connections. Once more, on a new one. (Had the first insert reached
    # the database before the connection died, this one finds its row: False, and the worker's poll takes it.)
    with ack.connect() as connection:
        return connection.execute(statement, values).rowcount == 1


@cache
def _insert_statement(dialect: str) -> Insert:
    """The inbox insert, built once (bound parameters: SQLAlchemy compiles it once per engine)."""
    insert = sqlite_insert if dialect == "sqlite" else pg_insert
    return insert(PendingFlag).on_conflict_do_nothing(index_elements=["key"])


def _enqueue_sqlite(engine: Engine, statement: Insert, values: dict[str, Any]) -> bool:
    """The insert on the ack path, on SQLite: its one writer lock is taken for a moment by each of the capture
    worker's writes, and SQLite's own busy handler then sleeps 1, 2, 5, 10 … 100 ms between tries. The ack
    engine's connections have no busy timeout: polling every half millisecond instead takes the lock as soon as
    it is free. Their commits never run the WAL checkpoint (hundreds of ms with its fsyncs on a busy disk)."""
    deadline = time.monotonic() + SQLITE_WAIT_SECONDS
    with engine.connect() as connection:
        while True:
            try:
                return connection.execute(statement, values).rowcount == 1
            except OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.0005)


def warm(engine: Engine) -> None:
    """Open the ack engine's connections now, so no ack waits for one (a new PostgreSQL backend) in a burst."""
    ack = ack_engine(engine)
    with ExitStack() as stack:
        for _ in range(ACK_CONNECTIONS):
            connection = stack.enter_context(ack.connect())
            connection.execute(select(PendingFlag.key).limit(0)).all()  # SQLite reads the schema once per connection


def has(engine: Engine, *, key: str) -> bool:
    """Whether the inbox has a row under `key` (whatever its status)."""
    with session_scope(engine) as session:
        return session.get(PendingFlag, key) is not None


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
    taken: list[str] = []
    for key in candidates:
        if len(taken) >= limit:
            break
        # Compare-and-set: of the workers racing for one row, exactly one sees its update match. One statement
        # committed as it completes (no RETURNING: its rows would keep SQLite's writer lock until fetched).
        if writes.write(engine, update(PendingFlag).where(col(PendingFlag.key) == key, _claimable(now))
                        .values(status="leased", leased_by=owner, lease_until=now + lease, updated_at=now)):
            taken.append(key)
    if not taken:
        return []
    with session_scope(engine) as session:  # ours now: nobody else changes these rows until we settle them
        rows = {row.key: row for row in session.exec(select(PendingFlag).where(col(PendingFlag.key).in_(taken)))}
    return [Claimed(key=key, attempts=rows[key].attempts, flag=FlagRequest(
        channel=rows[key].channel, user_id=rows[key].user_id, trigger=rows[key].trigger, ts=rows[key].ts,
        thread_ts=rows[key].thread_ts, note=rows[key].note)) for key in taken]


def _finish(engine: Engine, key: str, owner: str, **values: object) -> bool:
    return writes.write(engine, update(PendingFlag).where(col(PendingFlag.key) == key,
                                                          col(PendingFlag.leased_by) == owner,
                                                          col(PendingFlag.status) == "leased")
                        .values(leased_by=None, lease_until=None, updated_at=utcnow(), **values)) == 1


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
    return writes.write(engine, update(PendingFlag).where(col(PendingFlag.leased_by) == owner,
                                                          col(PendingFlag.status) == "leased")
                        .values(status="pending", leased_by=None, lease_until=None, next_attempt_at=now, updated_at=now))


def release_dead(engine: Engine) -> int:
    """Return the leases of processes on this host that no longer run (a killed `serve` and its worker)."""
    host = socket.gethostname()
    with session_scope(engine) as session:
        owners = set(session.exec(select(PendingFlag.leased_by).where(col(PendingFlag.status) == "leased")))
    released = 0
    for owner in owners:
        name, _, pid = (owner or "").rpartition(":")
        if name == host and pid.isdigit() and not process_alive(int(pid)):
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

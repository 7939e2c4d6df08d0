"""Claims: JobClaim rows that make something happen once across processes (SQLite and PostgreSQL).

`claim` inserts (job, slot) with an INSERT that does nothing on conflict, so exactly one caller gets it; a claim
not refreshed since `take_over_before` is taken over (its holder died). Used by the run lock, the nightly
scheduler's slots, digest posts and batch-run drivers. `PROCESS` names this process in every claim it holds.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from bot.core.clock import utcnow
from bot.store.tables import JobClaim

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)  # a claim refreshed "at EPOCH" is up for take-over
PROCESS = f"{socket.gethostname()[:60]}:{os.getpid()}"


def process_alive(pid: int) -> bool:
    """Whether the process `pid` on this host still runs (a zombie, killed but not reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed process whose parent died too stays a zombie until init reaps it (some inits never do)
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc to ask: it answered the signal, so count it alive
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def died_here(process: str) -> bool:
    """Whether `process` (a PROCESS value: host:pid) names a process of this host that no longer runs."""
    host, _, pid = process.rpartition(":")
    return host == socket.gethostname()[:60] and pid.isdigit() and not process_alive(int(pid))

def claim(session: Session, *, job: str, slot: str, holder: str, take_over_before: datetime | None = None) -> bool:
    """Claim (job, slot) for `holder`: True when this call got it, False when someone else holds it.

    A claim whose `claimed_at` is before `take_over_before` is taken over (its holder died or gave it up).
    Commit the session promptly: on PostgreSQL a concurrent claimant waits for this transaction to end.
    """
    now = utcnow()
    if _insert_ignoring_conflict(session, {"job": job, "slot": slot, "claimed_by": holder[:128], "claimed_at": now}):
        return True
    if take_over_before is None:
        return False
    result = session.execute(
        update(JobClaim).where(col(JobClaim.job) == job, col(JobClaim.slot) == slot,
                               col(JobClaim.claimed_at) < take_over_before)
        .values(claimed_by=holder[:128], claimed_at=now).returning(JobClaim.slot)
    )
    return result.first() is not None


def _insert_ignoring_conflict(session: Session, values: dict[str, Any]) -> bool:
    dialect = session.get_bind().dialect.name
    if dialect in ("sqlite", "postgresql"):
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        else:
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        statement = (dialect_insert(JobClaim).values(**values)
                     .on_conflict_do_nothing(index_elements=["job", "slot"]).returning(JobClaim.slot))
        return session.execute(statement).first() is not None  # rowcount is not reliable here (-1 on psycopg)
    try:  # any other database: a savepoint around a plain insert
        with session.begin_nested():
            session.execute(insert(JobClaim).values(**values))
        return True
    except IntegrityError:
        return False


def release(session: Session, *, job: str, slot: str, holder: str) -> None:
    """Delete the claim if `holder` still holds it."""
    session.execute(delete(JobClaim).where(col(JobClaim.job) == job, col(JobClaim.slot) == slot,
                                           col(JobClaim.claimed_by) == holder[:128]))


def refresh(session: Session, *, job: str, slot: str, holder: str, at: datetime | None = None) -> bool:
    """Set the claim's time (a heartbeat; EPOCH marks it for take-over); False if `holder` no longer holds it."""
    result = session.execute(
        update(JobClaim).where(col(JobClaim.job) == job, col(JobClaim.slot) == slot,
                               col(JobClaim.claimed_by) == holder[:128])
        .values(claimed_at=at or utcnow()).returning(JobClaim.slot)
    )
    return result.first() is not None


def forget_claims(session: Session, *, jobs: tuple[str, ...], older_than: datetime) -> int:
    """Delete old claims of these jobs (housekeeping)."""
    result = session.execute(delete(JobClaim).where(col(JobClaim.job).in_(jobs), col(JobClaim.claimed_at) < older_than))
    return result.rowcount or 0  # type: ignore[attr-defined]

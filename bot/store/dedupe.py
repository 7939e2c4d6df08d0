"""Slack event deduplication: the flag inbox (`pending_flags`, keyed on the event id) recognises a redelivery
on any replica; this drops the rows that can no longer be redelivered."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.engine import Engine
from sqlmodel import col, delete

from bot.core.clock import utcnow
from bot.store.tables import PendingFlag, session_scope

KEEP = timedelta(days=2)


def forget_old(engine: Engine) -> int:
    """Drop captured inbox rows older than Slack's retry window (run now and then); failed rows stay."""
    with session_scope(engine) as session:
        result = session.exec(delete(PendingFlag).where(col(PendingFlag.status) == "done",
                                                        col(PendingFlag.updated_at) < utcnow() - KEEP))
        return result.rowcount or 0

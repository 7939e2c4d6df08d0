"""Slack event deduplication shared through the database, so a redelivered event is handled once on any replica."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, delete

from bot.core.clock import utcnow
from bot.store.tables import ProcessedEvent, session_scope

KEEP = timedelta(days=2)


def first_delivery(engine: Engine, event_id: str | None) -> bool:
    """True the first time `event_id` is seen (and records it); False for a redelivery."""
    if not event_id:
        return True
    try:
        with session_scope(engine) as session:
            session.add(ProcessedEvent(event_id=event_id))
    except IntegrityError:
        return False
    return True


def forget_old(engine: Engine) -> int:
    """Drop event ids older than Slack's retry window (run now and then)."""
    with session_scope(engine) as session:
        result = session.exec(delete(ProcessedEvent).where(col(ProcessedEvent.received_at) < utcnow() - KEEP))
        return result.rowcount or 0

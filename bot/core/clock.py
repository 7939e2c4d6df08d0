"""The clock: every "now" evalbot reads comes from here, so tests (and operators) can move it.

`utcnow()` is the real UTC time unless a test froze it (`frozen_at`) or shifted it (`shift`). The environment
variable `EVALBOT_CLOCK_OFFSET_DAYS` shifts it for a whole process and its children, which is how the test
suite proves it passes a year from now (`EVALBOT_CLOCK_OFFSET_DAYS=365 uv run pytest`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

OFFSET_ENV = "EVALBOT_CLOCK_OFFSET_DAYS"


def _env_offset() -> timedelta:
    raw = os.environ.get(OFFSET_ENV, "").strip()
    try:
        return timedelta(days=float(raw)) if raw else timedelta(0)
    except ValueError:
        raise SystemExit(f"{OFFSET_ENV} must be a number of days, got {raw!r}") from None


_offset = _env_offset()
_frozen: datetime | None = None


def utcnow() -> datetime:
    """Now, timezone-aware UTC, to the second (what case files and rows store)."""
    return precise_utcnow().replace(microsecond=0)


def precise_utcnow() -> datetime:
    """Now, timezone-aware UTC, with microseconds (for durations and schedules)."""
    if _frozen is not None:
        return _frozen
    return datetime.now(timezone.utc) + _offset


def age(moment: datetime, *, now: datetime | None = None) -> str:
    """A short age such as 3d, 5h, 12m or now (a naive `moment` is UTC), for listings in the CLI and Slack."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    seconds = max(0.0, ((now or precise_utcnow()) - moment).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return "now"


@contextmanager
def frozen_at(moment: datetime) -> Iterator[datetime]:
    """Stop the clock at `moment` (aware) for the duration of the block; a frozen clock ignores any offset."""
    global _frozen
    if moment.tzinfo is None:
        raise ValueError("frozen_at needs a timezone-aware datetime")
    before, _frozen = _frozen, moment.astimezone(timezone.utc)
    try:
        yield moment
    finally:
        _frozen = before


@contextmanager
def shift(delta: timedelta) -> Iterator[None]:
    """Move the clock by `delta` (on top of any offset) for the duration of the block."""
    global _offset
    before, _offset = _offset, _offset + delta
    try:
        yield
    finally:
        _offset = before

"""What every part of the fake Slack shares: the fake workspace's ids, the records tests read, Web API errors.

``Call`` (a recorded request), ``Ack`` (a Socket Mode acknowledgement) and ``UploadedFile`` are what tests
inspect; ``ApiError`` is how a Web API method answers ``ok: false``; the rest are small pure helpers for Slack's
timestamps, cursors and loosely typed parameters (form posts carry everything as strings).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

JSON = dict[str, Any]

TEAM_ID = "T0FAKE"
TEAM_DOMAIN = "fake-team"
APP_ID = "A123"
BOT_USER_ID = "UEVALBOT"
BOT_ID = "BEVALBOT"
BOT_NAME = "evalbot"
VERIFICATION_TOKEN = "fake-verification-token"
PERMALINK_BASE = f"https://{TEAM_DOMAIN}.slack.com"


@dataclass(frozen=True)
class Call:
    """One recorded request: a Web API method, or ``upload`` / ``response_url`` posts."""

    method: str
    params: JSON
    headers: dict[str, str]
    token_type: str | None = None  # "xoxb", "xapp", ... (the token itself is never kept)


@dataclass(frozen=True)
class Ack:
    """A Socket Mode acknowledgement: its payload (``None`` for a bare ack) and seconds from send to ack."""

    envelope_id: str
    payload: JSON | None
    latency: float


@dataclass
class UploadedFile:
    """A file announced by files.getUploadURLExternal, its bytes once POSTed, and where it was shared."""

    id: str
    filename: str
    length: int
    content: bytes | None = None
    title: str | None = None
    channel_id: str | None = None
    thread_ts: str | None = None
    initial_comment: str | None = None


class ApiError(ValueError):
    """A Web API error code; method handlers raise it and the server answers ``ok: false``."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


# ---------------------------------------------------------------- small pure helpers


def ts_key(ts: str) -> tuple[int, int]:
    """Sort key of a Slack timestamp ("1763700000.000100"); floats would lose the microseconds."""
    seconds, _, fraction = str(ts).partition(".")
    try:
        return int(seconds), int(fraction.ljust(6, "0")[:6] or 0)
    except ValueError:
        raise ApiError("invalid_ts_latest") from None


def is_reply(message: JSON) -> bool:
    return "thread_ts" in message and message["thread_ts"] != message["ts"]


def as_json(value: Any) -> Any:
    """Form posts carry blocks/view/files as JSON strings, JSON posts as objects."""
    if isinstance(value, str) and value[:1] in ("[", "{"):
        return json.loads(value)
    return value


def as_int(value: Any, default: int) -> int:
    try:
        return int(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        raise ApiError("invalid_limit") from None


def as_bool(value: Any) -> bool:
    return value in (True, 1, "1", "true", "True")


def require(params: JSON, name: str, error: str = "invalid_arguments") -> str:
    value = params.get(name)
    if value in (None, ""):
        raise ApiError(error)
    return str(value)


def in_range(ts: str, oldest: str | None, latest: str | None, inclusive: bool) -> bool:
    key = ts_key(ts)
    if oldest and (key < ts_key(oldest) or (key == ts_key(oldest) and not inclusive)):
        return False
    return not (latest and (key > ts_key(latest) or (key == ts_key(latest) and not inclusive)))


def paginate(items: list[JSON], cursor: str | None, limit: int) -> tuple[list[JSON], str]:
    """A page of ``items`` (already in response order) and the next page's cursor ("" on the last page)."""
    start = 0
    if cursor:
        try:
            target = base64.b64decode(cursor).decode().removeprefix("next_ts:")
        except ValueError:
            raise ApiError("invalid_cursor") from None
        start = next((i for i, m in enumerate(items) if m["ts"] == target), -1)
        if start < 0:
            raise ApiError("invalid_cursor")
    end = start + max(1, min(limit, 1000))
    next_cursor = base64.b64encode(f"next_ts:{items[end]['ts']}".encode()).decode() if end < len(items) else ""
    return items[start:end], next_cursor


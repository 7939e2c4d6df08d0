"""Case ids: derived from the Slack message (stable on any replica) and checked when a person types one."""

from __future__ import annotations

import hashlib
import re

from bot.core.errors import InvalidIdError

ID_LENGTH = 8
MIN_PREFIX = 4
_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def case_id_for(*parts: str) -> str:
    """A short `[a-z0-9]` id that is the same for the same source (e.g. channel and message ts)."""
    digest = int.from_bytes(hashlib.sha256("\x1f".join(parts).encode()).digest()[:8], "big")
    chars = []
    for _ in range(ID_LENGTH):
        digest, rem = divmod(digest, 36)
        chars.append(_ALPHABET[rem])
    return "".join(chars)


def slack_case_id(channel: str, ts: str) -> str:
    """The id of the case captured from the Slack message `ts` in `channel`."""
    return case_id_for("slack", channel, ts)


def check_prefix(text: str) -> str:
    """Normalise a user-typed id or prefix, refusing anything that is not 4-32 of [a-z0-9]."""
    value = (text or "").strip().lower()
    if not re.fullmatch(r"[a-z0-9]+", value):
        shown = text if len(text or "") <= 40 else text[:40] + "…"
        raise InvalidIdError(f"'{shown}' is not a case id: ids are letters a-z and digits, like k3m9x2qa")
    if len(value) < MIN_PREFIX:
        raise InvalidIdError(f"'{value}' is too short: type at least {MIN_PREFIX} characters of the case id")
    if len(value) > 32:
        raise InvalidIdError(f"'{value[:40]}' is too long to be a case id")
    return value

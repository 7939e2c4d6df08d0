"""Slack message markup to plain text: mentions, links, channel refs and HTML entities (no Slack imports).

The other direction (user text into mrkdwn: escaping, clipping, limits) is `bot.slack.blocks.kit`, whose
`unescape` this uses, so the two stay exact inverses.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from bot.slack.blocks.kit import unescape

_TOKEN = re.compile(r"<([^<>\n]+)>")


def to_plain_text(text: str, *, user_name: Callable[[str], str]) -> str:
    """Normalise Slack markup: `<@U1>` -> @name, `<url|label>` -> `label (url)`, `&amp;` -> `&`."""

    def replace(match: re.Match[str]) -> str:
        inner = match.group(1)
        target, _, label = inner.partition("|")
        if target.startswith("@"):
            return "@" + (label or user_name(target[1:]))
        if target.startswith("#"):
            return "#" + (label or target[1:])
        if target.startswith("!subteam^"):
            return label or "@group"
        if target.startswith("!"):
            word = target[1:].split("^", 1)[0]
            return label or f"@{word}"
        if target.startswith("mailto:"):
            return label or target.removeprefix("mailto:")
        if label and label != target:
            return f"{label} ({target})"
        return target

    return unescape(_TOKEN.sub(replace, text))

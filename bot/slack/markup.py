"""Slack message markup to plain text: mentions, links, channel refs and HTML entities (no Slack imports);
`to_markdown` also turns mrkdwn styles into Markdown, as the Slack-message reader writes every message.

The other direction (user text into mrkdwn: escaping, clipping, limits) is `bot.slack.blocks.kit`, whose
`unescape` this uses, so the two stay exact inverses.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from bot.core.people import IN_TEXT
from bot.slack.blocks.kit import unescape

_TOKEN = re.compile(r"<([^<>\n]+)>")


def mentions(text: str) -> str:
    """The people in a text the domain wrote (`@U0ANA`, `bot.core.people`) as Slack mentions (`<@U0ANA>`), which
    Slack shows as their names: for mrkdwn, never for a plain_text field (which would show the markup)."""
    return IN_TEXT.sub(lambda m: f"<@{m.group(1)}>", text)


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


# Slack mrkdwn styles, delimited as Slack delimits them: the mark not inside a word, the text not starting or
# ending with a space. Code (``` blocks, `spans`) and <tokens> are left alone.
_PROTECTED = re.compile(r"```.*?```|`[^`\n]+`|<[^<>\n]+>", re.S)
_STYLES = [
    (re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])"), r"**\1**"),
    (re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])"), r"*\1*"),
    (re.compile(r"(?<![\w~])~(?=\S)([^~\n]+?)(?<=\S)~(?![\w~])"), r"~~\1~~"),
]


def to_markdown(text: str, *, user_name: Callable[[str], str]) -> str:
    """Slack mrkdwn as Markdown: `*b*` -> `**b**`, `_i_` -> `*i*`, `~s~` -> `~~s~~`, then `to_plain_text`."""
    parts: list[str] = []
    last = 0
    for match in _PROTECTED.finditer(text):
        parts.append(_styles(text[last:match.start()]))
        parts.append(match.group(0))
        last = match.end()
    parts.append(_styles(text[last:]))
    return to_plain_text("".join(parts), user_name=user_name)


def _styles(text: str) -> str:
    for pattern, replacement in _STYLES:
        text = pattern.sub(replacement, text)
    return text

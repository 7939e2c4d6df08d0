"""The Block Kit kit: Slack's limits, escaping and clipping, and the small builders every other builder uses.

One length rule: Slack counts text in **UTF-16 code units** (as JavaScript does: an emoji outside the Basic
Multilingual Plane counts 2), so every limit here is measured with `slack_len` and every cut is made in those
units, never splitting a surrogate pair or an `&amp;`-style entity. slack_sdk's own models count code points,
which are never more than UTF-16 units, so what fits here passes them too.

Clip after escaping: user text is escaped first (`escape` turns `&<>` into entities up to 5 times longer) and
the finished mrkdwn is cut last (`mrkdwn`, `section`, `quote`), so no input can push a payload past a limit.
Empty text, which Slack refuses in a text object, becomes a dash.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

Block = dict[str, Any]

# Slack's limits (https://api.slack.com/reference/block-kit).
MESSAGE_BLOCKS = 50
VIEW_BLOCKS = 100
SECTION_TEXT = 3000
SECTION_FIELD = 2000
SECTION_FIELDS = 10
HEADER_TEXT = 150
CONTEXT_ELEMENTS = 10
ACTIONS_ELEMENTS = 25
BUTTON_TEXT = 75
BUTTON_VALUE = 2000
BLOCK_ID = 255
ACTION_ID = 255
INPUT_CHARS = 3000  # a plain_text_input's max_length and initial_value
LABEL_TEXT = 2000
HINT_TEXT = 2000
PLACEHOLDER_TEXT = 150
PRIVATE_METADATA = 3000
VIEW_TITLE = 24  # also submit and close
MESSAGE_TEXT = 40_000  # chat.postMessage `text`: Slack truncates past this
URL = 3000

ELLIPSIS = "…"
EMPTY = "—"
_PARTIAL_ENTITY = re.compile(r"&[a-z]{0,4}$")


def slack_len(text: str) -> int:
    """Length as Slack counts it: UTF-16 code units."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def escape(text: str) -> str:
    """User text made safe for mrkdwn: Slack's three control characters as entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    """Slack's escaped text as typed (the inverse of `escape`)."""
    # &amp; last, so "&amp;lt;" becomes "&lt;" as the author typed it.
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def clip(text: str, limit: int, *, one_line: bool = False) -> str:
    """`text` within `limit` UTF-16 units, an ellipsis marking a cut (never inside a character or an entity);
    with `one_line`, runs of whitespace become one space first."""
    if one_line:
        text = " ".join(text.split())
    if slack_len(text) <= limit:
        return text
    head = _PARTIAL_ENTITY.sub("", cut(text, limit - slack_len(ELLIPSIS)))
    return head.rstrip() + ELLIPSIS


def cut(text: str, limit: int) -> str:
    """The longest start of `text` within `limit` UTF-16 units (no ellipsis: for values the user typed)."""
    used = 0
    for index, char in enumerate(text):
        used += 2 if ord(char) > 0xFFFF else 1
        if used > limit:
            return text[:index]
    return text


def fill(text: str) -> str:
    """Text Slack accepts in a text object: not empty."""
    return text if text.strip() else EMPTY


def mrkdwn(text: str, limit: int = SECTION_TEXT) -> Block:
    """A mrkdwn text object of finished markup (escape user text before), cut to `limit`."""
    return {"type": "mrkdwn", "text": clip(fill(text), limit)}


def plain(text: str, limit: int = SECTION_TEXT, *, emoji: bool | None = None) -> Block:
    """A plain_text object cut to `limit`."""
    obj: Block = {"type": "plain_text", "text": clip(fill(text), limit)}
    if emoji is not None:
        obj["emoji"] = emoji
    return obj


def section(text: str, **extra: Any) -> Block:
    """A section block of finished mrkdwn, cut to 3,000."""
    return {"type": "section", "text": mrkdwn(text), **extra}


def header(text: str) -> Block:
    """A header block (plain text, one line, 150)."""
    return {"type": "header", "text": plain(clip(text, HEADER_TEXT, one_line=True), HEADER_TEXT, emoji=True)}


def context(*texts: str) -> Block:
    """A context block of mrkdwn elements (at most 10, each cut to 3,000)."""
    return {"type": "context", "elements": context_elements(texts)}


def context_elements(texts: Iterable[str]) -> list[Block]:
    """Context elements from finished mrkdwn strings, at most 10."""
    return [mrkdwn(t) for t in list(texts)[:CONTEXT_ELEMENTS]]


def button(text: str, action_id: str, value: str, style: str | None = None) -> Block:
    """A button: label cut to 75, value to 2,000 (values are ids: cutting one is a bug upstream)."""
    element: Block = {"type": "button", "action_id": action_id[:ACTION_ID], "value": value[:BUTTON_VALUE],
                      "text": plain(text, BUTTON_TEXT)}
    if style:
        element["style"] = style
    return element


def actions(block_id: str, elements: Sequence[Block]) -> Block:
    """An actions block (at most 25 elements)."""
    return {"type": "actions", "block_id": block_id[:BLOCK_ID], "elements": list(elements)[:ACTIONS_ELEMENTS]}


def quote(text: str, limit: int = SECTION_TEXT, *, prefix: str = "") -> str:
    """User text as a mrkdwn block quote (escaped, each line `> `), `prefix` before it, all within `limit`."""
    lines = escape(text.strip() or "(empty)").splitlines() or ["(empty)"]
    return clip(prefix + "\n".join("> " + line for line in lines), limit)


def message_blocks(blocks: Sequence[Block]) -> list[Block]:
    """At most the 50 blocks a message may carry; a closing actions block (the buttons) is kept."""
    return _fit_blocks(list(blocks), MESSAGE_BLOCKS)


def _fit_blocks(blocks: list[Block], limit: int) -> list[Block]:
    if len(blocks) <= limit:
        return blocks
    if blocks[-1].get("type") == "actions":
        return blocks[: limit - 1] + blocks[-1:]
    return blocks[:limit]


def view_blocks(blocks: Sequence[Block]) -> list[Block]:
    """At most the 100 blocks a view may carry."""
    return _fit_blocks(list(blocks), VIEW_BLOCKS)


def view_title(text: str) -> Block:
    """A view's title, submit or close label (24)."""
    return plain(text, VIEW_TITLE)


def message_text(text: str) -> str:
    """A message's notification `text`, within what Slack keeps."""
    return clip(fill(text), MESSAGE_TEXT)

"""The one reader of Slack messages: any message payload (history, event, shortcut) to a normalised `Message`.

Everything is written as Markdown: rich text styles, and Slack mrkdwn (`*b*` `_i_` `~s~` become `**b**` `*i*`
`~~s~~`) in `text`, sections and attachments. Content is read from every place Slack puts it: `rich_text` blocks (links as
`label (url)`, users/usergroups/broadcasts as @name, channels as #name, emoji as :name:, dates by their
fallback, lists, quotes, preformatted), `section`/`header`/`context`/`markdown`/`image` blocks and section
fields, button and option labels, legacy attachments (pretext, author, title, text, fields, footer; the
fallback only when nothing else), and files. Link previews (unfurls) are left out: the link is in the text;
a forwarded or linked Slack message shown as an attachment is kept.

Which source wins: the blocks, when they carry at least what the `text` fallback does (apps post a short
notification as `text` and the content as blocks); the `text` followed by the blocks when the text carries
more; never Slack's "This content can't be displayed." placeholder. System messages (joins, topics, huddles,
pins, reminders, bot changes…) get `system` set and no content.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from bot.capture.message import Message, SharedFile
from bot.slack.markup import to_markdown

UserName = Callable[[str], str]

PLACEHOLDER = "This content can't be displayed."
# Subtypes that are not conversation, with what to tell someone who flags one.
SYSTEM_SUBTYPES = {
    "channel_join": "someone joining the channel", "channel_leave": "someone leaving the channel",
    "group_join": "someone joining the channel", "group_leave": "someone leaving the channel",
    "channel_topic": "a topic change", "group_topic": "a topic change",
    "channel_purpose": "a description change", "group_purpose": "a description change",
    "channel_name": "a channel rename", "group_name": "a channel rename",
    "channel_archive": "the channel being archived", "group_archive": "the channel being archived",
    "channel_unarchive": "the channel being unarchived", "group_unarchive": "the channel being unarchived",
    "channel_convert_to_private": "the channel becoming private", "channel_convert_to_public": "the channel becoming public",
    "channel_posting_permissions": "a posting-permissions change", "channel_canvas_updated": "a canvas update",
    "huddle_thread": "a huddle notice", "sh_room_created": "a call notice",
    "pinned_item": "a pin notice", "unpinned_item": "an unpin notice",
    "reminder_add": "a reminder notice", "reminder_delete": "a reminder notice",
    "bot_add": "an app being added", "bot_remove": "an app being removed",
    "bot_enable": "an app being enabled", "bot_disable": "an app being disabled",
    "app_conversation_join": "an app joining the channel", "app_conversation_leave": "an app leaving the channel",
    "joiner_notification": "a joining notice", "joiner_notification_for_inviter": "a joining notice",
    "ekm_access_denied": "an encrypted message Slack will not show", "assistant_app_thread": "an assistant-thread notice",
    "slackbot_response": "a Slackbot auto-response",
}
DELETED_SUBTYPES = {"message_deleted", "tombstone"}

_STYLE_MARKS = (("code", "`"), ("bold", "**"), ("italic", "*"), ("strike", "~~"))
_SPACE = re.compile(r"\s+")


def read_message(raw: dict[str, Any], *, user_name: UserName) -> Message:
    """A Slack message payload as capture's normalised `Message` (a malformed field is read as absent)."""
    subtype = _str(raw.get("subtype")) or None
    if subtype == "message_changed" and isinstance(raw.get("message"), dict):
        current = raw["message"]
        raw = {**current, "ts": current.get("ts") or _dict(raw.get("previous_message")).get("ts")}
        subtype = _str(raw.get("subtype")) or None
    user, bot_id = _str(raw.get("user")) or None, _str(raw.get("bot_id")) or None
    ids = frozenset(i for i in (user, bot_id, _str(_dict(raw.get("bot_profile")).get("id"))) if i)
    system = SYSTEM_SUBTYPES.get(subtype or "")
    deleted = subtype in DELETED_SUBTYPES
    # A deleted file stays in the message as {"mode": "tombstone"}: nothing was shared any more.
    files = tuple(_file(f) for f in _list(raw.get("files")) if isinstance(f, dict) and f.get("mode") != "tombstone")
    text = "" if system or deleted else message_text(raw, user_name=user_name)
    return Message(ts=_str(raw.get("ts")), text=text, thread_ts=_str(raw.get("thread_ts")) or None, author_ids=ids,
                   user=user, bot_id=bot_id, is_bot=bool(bot_id) or subtype == "bot_message",
                   files=() if system or deleted else files, system=system, deleted=deleted)


def mention_note(event: dict[str, Any], *, bot_user_id: str | None) -> str | None:
    """The note of an @mention: the message's content (blocks first, as `message_text`) without the mentions of
    the bot; other people stay as `<@U…>` so Slack shows their names. None when nothing else was said."""
    bot, left, right = "\x01", "\x02", "\x03"

    def name(user_id: str) -> str:
        return bot if user_id == bot_user_id else f"{left}{user_id}{right}"

    if bot_user_id and isinstance(event.get("text"), str):
        # A labelled mention (<@U…|evalbot>) is shown by its label; drop the label so the bot's own is removed.
        event = {**event, "text": re.sub(rf"<@{re.escape(bot_user_id)}\|[^>]*>", f"<@{bot_user_id}>", event["text"])}
    text = message_text(event, user_name=name)
    text = text.replace(f"@{bot} ", "").replace(f"@{bot}", "").replace(f"@{left}", "<@").replace(right, ">")
    note = text.strip()
    return note or None


def message_text(raw: dict[str, Any], *, user_name: UserName) -> str:
    """The content of a message as text: blocks, `text` and attachments, as the module docstring says."""
    text = _str(raw.get("text"))
    fallback = "" if text.strip() == PLACEHOLDER else to_markdown(text, user_name=user_name).strip()
    from_blocks = blocks_text(_list(raw.get("blocks")), user_name=user_name)
    if not from_blocks:
        body = fallback
    elif not fallback or _carries(from_blocks, fallback):
        body = from_blocks
    else:
        body = f"{fallback}\n\n{from_blocks}"
    extra = attachments_text(_list(raw.get("attachments")), user_name=user_name)
    if extra and _words(extra) not in _words(body):
        body = f"{body}\n\n{extra}" if body else extra
    return body


def _carries(bigger: str, smaller: str) -> bool:
    """Whether `bigger` holds `smaller`'s content: its words in order, or at least as many characters."""
    big, small = _words(bigger), _words(smaller)
    return small in big or len(big) >= len(small)


def _words(text: str) -> str:
    return _SPACE.sub(" ", re.sub(r"[*_~`>]", "", text)).strip()


# ---------------------------------------------------------------- blocks


def blocks_text(blocks: Iterable[Any], *, user_name: UserName) -> str:
    """Text of a list of Block Kit blocks, one block per paragraph."""
    parts = [_block(b, user_name) for b in blocks if isinstance(b, dict)]
    return "\n".join(p for p in parts if p).strip()


def _block(block: dict[str, Any], user_name: UserName) -> str:
    kind = block.get("type")
    if kind == "rich_text":
        return _rich_blocks(_list(block.get("elements")), user_name)
    if kind == "section":
        lines = [_composition(block.get("text"), user_name)]
        lines += [_composition(f, user_name) for f in _list(block.get("fields"))]
        lines.append(_element(block.get("accessory"), user_name))
        return "\n".join(line for line in lines if line)
    if kind == "header":
        return _composition(block.get("text"), user_name)
    if kind == "context":
        return " ".join(p for p in (_element(e, user_name) for e in _list(block.get("elements"))) if p)
    if kind == "markdown":
        return str(block.get("text") or "").strip()
    if kind == "actions":
        return " ".join(p for p in (_element(e, user_name) for e in _list(block.get("elements"))) if p)
    if kind in ("image", "video"):
        label = _composition(block.get("title"), user_name) or str(block.get("alt_text") or "")
        return f"[{kind}: {label}]" if label else ""
    if kind == "input":
        return _composition(block.get("label"), user_name)
    return ""


def _composition(obj: Any, user_name: UserName) -> str:
    """A text object: mrkdwn is Slack markup (as Markdown), plain_text is literal."""
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
        return ""
    if obj.get("type") == "mrkdwn":
        return to_markdown(obj["text"], user_name=user_name).strip()
    return obj["text"].strip()


def _element(element: Any, user_name: UserName) -> str:
    """A block element's visible words: text objects, button labels, images' alt text; menus are not content."""
    if not isinstance(element, dict):
        return ""
    kind = element.get("type")
    if kind in ("mrkdwn", "plain_text"):
        return _composition(element, user_name)
    if kind == "button":
        label = _composition(element.get("text"), user_name)
        return f"[{label}]" if label else ""
    if kind == "image":
        return f"[image: {element['alt_text']}]" if element.get("alt_text") else ""
    return ""


# ---------------------------------------------------------------- rich text


def _rich_blocks(elements: list[Any], user_name: UserName) -> str:
    out: list[str] = []
    numbers: dict[int, int] = {}
    for element in elements:
        if not isinstance(element, dict):
            continue
        kind = element.get("type")
        if kind == "rich_text_section":
            out.append(_inline(_list(element.get("elements")), user_name).rstrip("\n"))
            numbers.clear()
        elif kind == "rich_text_list":
            out.append(_rich_list(element, numbers, user_name))
        elif kind == "rich_text_quote":
            body = _inline(_list(element.get("elements")), user_name).rstrip("\n")
            out.append("\n".join("> " + line for line in body.split("\n")))
            numbers.clear()
        elif kind == "rich_text_preformatted":
            body = _inline(_list(element.get("elements")), user_name, styled=False).strip("\n")
            out.append(f"```\n{body}\n```")
            numbers.clear()
    return "\n".join(out).strip("\n")


def _rich_list(element: dict[str, Any], numbers: dict[int, int], user_name: UserName) -> str:
    indent = min(_int(element.get("indent")), 10)
    ordered = element.get("style") == "ordered"
    for deeper in [level for level in numbers if level > indent]:
        del numbers[deeper]
    if "offset" in element:
        numbers[indent] = _int(element.get("offset"))
    lines = []
    for item in _list(element.get("elements")):
        if not isinstance(item, dict):
            continue
        numbers[indent] = numbers.get(indent, 0) + 1
        mark = f"{numbers[indent]}." if ordered else "-"
        body = _inline(_list(item.get("elements")), user_name).strip("\n").replace("\n", "\n" + "   " * (indent + 1))
        lines.append(f"{'   ' * indent}{mark} {body}")
    return "\n".join(lines)


def _inline(elements: list[Any], user_name: UserName, *, styled: bool = True) -> str:
    return "".join(_leaf(e, user_name, styled) for e in elements if isinstance(e, dict))


def _leaf(element: dict[str, Any], user_name: UserName, styled: bool) -> str:
    kind = element.get("type")
    if kind == "text":
        return _styled(str(element.get("text") or ""), element.get("style") if styled else None)
    if kind == "link":
        url, label = str(element.get("url") or ""), str(element.get("text") or "")
        shown = f"{label} ({url})" if label and label != url else url
        return _styled(shown, element.get("style") if styled else None)
    if kind == "user":
        return "@" + _name(user_name, str(element.get("user_id") or ""))
    if kind == "usergroup":
        return "@" + str(element.get("usergroup_id") or "group")
    if kind == "channel":
        return "#" + str(element.get("channel_id") or "channel")
    if kind == "broadcast":
        return "@" + str(element.get("range") or "here")
    if kind == "emoji":
        return f":{element.get('name')}:" if element.get("name") else str(element.get("unicode") or "")
    if kind == "date":
        return str(element.get("fallback") or _date(element.get("timestamp")))
    if kind == "color":
        return str(element.get("value") or "")
    return str(element.get("text") or "")


def _styled(text: str, style: Any) -> str:
    if not isinstance(style, dict) or not text.strip():
        return text
    core = text.strip()
    lead, trail = text[: len(text) - len(text.lstrip())], text[len(text.rstrip()):]
    for key, mark in _STYLE_MARKS:
        if style.get(key):
            core = f"{mark}{core}{mark}"
    return f"{lead}{core}{trail}"


def _date(timestamp: Any) -> str:
    try:
        return datetime.fromtimestamp(int(timestamp), tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
    except (TypeError, ValueError, OverflowError, OSError):
        return ""


def _name(user_name: UserName, user_id: str) -> str:
    try:
        return user_name(user_id) or user_id
    except Exception:  # noqa: BLE001 - a name lookup failing must not lose the message; the id stands in
        return user_id


# ---------------------------------------------------------------- attachments and files


def attachments_text(attachments: Iterable[Any], *, user_name: UserName) -> str:
    """Text of legacy attachments, leaving out link previews (unfurls) of links already in the message."""
    parts = []
    for attachment in attachments:
        if not isinstance(attachment, dict) or _is_unfurl(attachment):
            continue
        parts.append(_attachment(attachment, user_name))
    return "\n\n".join(p for p in parts if p)


def _is_unfurl(attachment: dict[str, Any]) -> bool:
    # A forwarded or linked Slack message (is_share / is_msg_unfurl) is conversation, not a page preview.
    if attachment.get("is_share") or attachment.get("is_msg_unfurl"):
        return False
    return bool(attachment.get("from_url") or attachment.get("original_url") or attachment.get("is_app_unfurl"))


def _attachment(attachment: dict[str, Any], user_name: UserName) -> str:
    def markup(key: str) -> str:
        value = attachment.get(key)
        return to_markdown(value, user_name=user_name).strip() if isinstance(value, str) else ""

    title = markup("title")
    if title and attachment.get("title_link"):
        title = f"{title} ({attachment['title_link']})"
    lines = [markup("pretext"), markup("author_name"), title, markup("text")]
    for item in _list(attachment.get("fields")):
        if isinstance(item, dict):
            name = to_markdown(str(item.get("title") or ""), user_name=user_name).strip()
            value = to_markdown(str(item.get("value") or ""), user_name=user_name).strip()
            lines.append(f"{name}: {value}" if name and value else name or value)
    lines.append(blocks_text(_list(attachment.get("blocks")), user_name=user_name))
    lines.append(markup("footer"))
    body = "\n".join(line for line in lines if line)
    return body or markup("fallback")


def _file(file: dict[str, Any]) -> SharedFile:
    return SharedFile(name=str(file.get("name") or file.get("title") or "file"),
                      url=_str(file.get("url_private_download")) or _str(file.get("url_private")) or None,
                      size=_int(file.get("size")))


def _str(value: Any) -> str:
    """A text field, or "" when Slack sent none (numbers, such as a ts sent as a number, become text)."""
    return value if isinstance(value, str) else str(value) if isinstance(value, int | float) and not isinstance(value, bool) else ""


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    """A list Slack sends (blocks, elements, fields…); anything else (null, a malformed value) is empty."""
    return value if isinstance(value, list) else []


def _int(value: Any) -> int:
    """A count Slack sends as a number; anything else is 0 (a malformed payload must not lose the message)."""
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError, OverflowError):
        return 0

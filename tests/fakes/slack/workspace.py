"""The fake workspace's state: users, user groups, channels with their messages and threads, views, files.

``Workspace`` holds it and keeps it the way Slack does (reply metadata on a thread's parent, tombstones for a
deleted parent with replies, monotonic timestamps); the Web API methods over it are in ``web_api``. The caller
holds FakeSlack's lock.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field

from tests.fakes.slack.common import (
    APP_ID,
    BOT_ID,
    BOT_NAME,
    BOT_USER_ID,
    JSON,
    PERMALINK_BASE,
    TEAM_ID,
    ApiError,
    UploadedFile,
    as_bool,
    as_json,
    is_reply,
    ts_key,
)

_THREAD_KEYS = ("thread_ts", "reply_count", "reply_users", "reply_users_count", "latest_reply")


@dataclass
class Channel:
    id: str
    name: str
    is_member: bool
    messages: dict[str, JSON] = field(default_factory=dict)

    def ordered(self) -> list[JSON]:
        return sorted(self.messages.values(), key=lambda m: ts_key(m["ts"]))

    def top_level(self) -> list[JSON]:
        return [m for m in self.ordered() if not is_reply(m) or m.get("subtype") == "thread_broadcast"]

    def replies(self, parent_ts: str) -> list[JSON]:
        return [m for m in self.ordered() if is_reply(m) and m["thread_ts"] == parent_ts]

    def info(self) -> JSON:
        return {
            "id": self.id, "name": self.name, "name_normalized": self.name, "is_channel": True, "is_group": False,
            "is_im": False, "is_private": False, "is_archived": False, "is_general": False,
            "is_member": self.is_member, "context_team_id": TEAM_ID, "created": 1700000000,
        }  # fmt: skip


def user_record(user_id: str, name: str, real_name: str, display_name: str, is_bot: bool, bot_id: str | None) -> JSON:
    profile: JSON = {
        "real_name": real_name, "real_name_normalized": real_name, "display_name": display_name,
        "display_name_normalized": display_name, "team": TEAM_ID,
    }  # fmt: skip
    if bot_id:
        profile["bot_id"] = bot_id
    return {
        "id": user_id, "team_id": TEAM_ID, "name": name, "real_name": real_name, "deleted": False,
        "is_bot": is_bot, "is_admin": False, "tz": "UTC", "profile": profile,
    }  # fmt: skip



class Workspace:
    """Workspace state and the changes Slack makes to it; the caller holds FakeSlack's lock."""

    def __init__(self) -> None:
        self.channels: dict[str, Channel] = {}
        self.users: dict[str, JSON] = {}
        self.usergroups: dict[str, list[str]] = {}
        self.views: dict[str, JSON] = {}
        self.home_views: dict[str, JSON] = {}  # user id -> the App Home view published for them
        self.files: dict[str, UploadedFile] = {}
        self.ephemerals: list[JSON] = []
        self.tickets: set[str] = set()
        self.http_base = ""
        self._last_micros = 0
        self._ids = itertools.count(1)
        self.add_user(BOT_USER_ID, BOT_NAME, display_name=BOT_NAME, is_bot=True, bot_id=BOT_ID)

    # -- seeding and state changes

    def add_user(self, user_id: str, name: str, *, display_name: str | None = None, is_bot: bool = False,
                 bot_id: str | None = None, real_name: str | None = None) -> None:  # fmt: skip
        self.users[user_id] = user_record(user_id, name, real_name or name, display_name or "", is_bot, bot_id)

    def next_ts(self) -> str:
        self._last_micros = max(self._last_micros + 1, int(time.time() * 1_000_000))
        return f"{self._last_micros // 1_000_000}.{self._last_micros % 1_000_000:06d}"

    def observe_ts(self, ts: str) -> None:
        seconds, micros = ts_key(ts)
        self._last_micros = max(self._last_micros, seconds * 1_000_000 + micros)

    def next_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):08X}"

    def channel(self, channel_id: str | None, *, member: bool = True) -> Channel:
        found = self.channels.get(channel_id or "")
        if found is None:
            raise ApiError("channel_not_found")
        if member and not found.is_member:
            raise ApiError("not_in_channel")
        return found

    def message(self, channel: Channel, ts: str | None, error: str = "message_not_found") -> JSON:
        found = channel.messages.get(ts or "")
        if found is None:
            raise ApiError(error)
        return found

    def add_message(self, channel: Channel, message: JSON, thread_ts: str | None) -> JSON:
        """Store ``message``; a reply gets the thread's root ts and refreshes the parent's reply metadata."""
        self.observe_ts(message["ts"])
        root = None
        if thread_ts:
            parent = self.message(channel, thread_ts, error="thread_not_found")
            root = parent.get("thread_ts", parent["ts"])  # a reply's ts means its thread
            message["thread_ts"] = root
            if "user" in channel.messages[root]:
                message["parent_user_id"] = channel.messages[root]["user"]
        channel.messages[message["ts"]] = message
        if root:
            self.refresh_thread(channel, root)
        return message

    def refresh_thread(self, channel: Channel, parent_ts: str) -> None:
        """Recompute reply_count and friends on a parent, as Slack maintains them."""
        parent = channel.messages.get(parent_ts)
        if parent is None:
            return
        replies = channel.replies(parent_ts)
        if not replies:
            if parent.get("subtype") == "tombstone":
                del channel.messages[parent_ts]
            for key in _THREAD_KEYS:
                parent.pop(key, None)
            return
        authors = list(dict.fromkeys(r.get("user") or r.get("bot_id") for r in replies))
        parent.update(thread_ts=parent_ts, reply_count=len(replies), reply_users=authors[:5],
                      reply_users_count=len(authors), latest_reply=replies[-1]["ts"])  # fmt: skip

    def delete_message(self, channel: Channel, ts: str) -> None:
        """Remove a message; a parent with replies becomes a tombstone, as in Slack."""
        message = self.message(channel, ts)
        if is_reply(message):
            del channel.messages[ts]
            self.refresh_thread(channel, message["thread_ts"])
        elif message.get("reply_count"):
            keep = {k: message[k] for k in ("ts", *_THREAD_KEYS) if k in message}
            channel.messages[ts] = {"type": "message", "subtype": "tombstone", "text": "This message was deleted.",
                                    "user": "USLACKBOT", "hidden": True, **keep}  # fmt: skip
        else:
            del channel.messages[ts]

    def bot_message(self, params: JSON, ts: str) -> JSON:
        message: JSON = {"type": "message", "ts": ts, "user": BOT_USER_ID, "bot_id": BOT_ID, "app_id": APP_ID,
                         "team": TEAM_ID, "text": params.get("text") or ""}  # fmt: skip
        for key in ("blocks", "attachments", "metadata"):
            if params.get(key):
                message[key] = as_json(params[key])
        if as_bool(params.get("reply_broadcast")):
            message["subtype"] = "thread_broadcast"
        return message

    def file_object(self, upload: UploadedFile) -> JSON:
        return {
            "id": upload.id, "created": int(time.time()), "name": upload.filename, "title": upload.title or
            upload.filename, "mimetype": "application/octet-stream", "filetype": upload.filename.rpartition(".")[2],
            "size": upload.length, "user": BOT_USER_ID, "url_private": f"{self.http_base}/files/{upload.id}",
            "permalink": f"{PERMALINK_BASE}/files/{BOT_USER_ID}/{upload.id}/{upload.filename}",
        }  # fmt: skip


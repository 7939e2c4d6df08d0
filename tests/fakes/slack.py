"""A fake Slack on 127.0.0.1 — Web API and Socket Mode — driven by the real slack-sdk and slack-bolt clients.

Owns a fake workspace (users, user groups, channels, messages and threads, views, uploaded files), the HTTP
endpoints the real ``WebClient`` calls (``/api/<method>``, the file upload URL, ``response_url``), the Socket Mode
websocket that slack-sdk's built-in client connects to, fault injection (error codes, 429s, latency) and the
waiting helpers tests use instead of sleeps. An aiohttp server runs in a background thread with its own event
loop; every public method is thread-safe.

    with FakeSlack() as slack:
        slack.add_channel("C1", "evals")
        parent = slack.post("C1", "hello", user="U1")
        client = WebClient(base_url=slack.api_url, token="xoxb-test")
        client.chat_postMessage(channel="C1", thread_ts=parent, text="hi")
        assert slack.messages_in("C1", thread_ts=parent)[-1]["text"] == "hi"

Thread semantics follow Slack's (see PLATFORM_NOTES): ``conversations.replies`` with a parent's ts pages through the
whole thread parent-first; with a reply's ts it returns only that reply; ``conversations.history`` lists top-level
messages newest-first. Credentials are never recorded: ``Call.headers`` carries ``<redacted>`` for Authorization.
It is one file on purpose (past the usual ~400 lines), so a test imports one fixture surface.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import itertools
import json
import socket
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import WSMsgType, web
from slack_sdk.signature import SignatureVerifier

from tests.fakes.loop import LoopThread

__all__ = [
    "APP_ID",
    "BOT_ID",
    "BOT_USER_ID",
    "TEAM_ID",
    "Ack",
    "Call",
    "FakeSlack",
    "UploadedFile",
    "close_socket_mode",
    "event_callback",
    "interactive_payload",
    "signed_request_headers",
    "slash_command_payload",
]

JSON = dict[str, Any]
T = TypeVar("T")

TEAM_ID = "T0FAKE"
TEAM_DOMAIN = "fake-team"
APP_ID = "A123"
BOT_USER_ID = "UEVALBOT"
BOT_ID = "BEVALBOT"
BOT_NAME = "evalbot"
VERIFICATION_TOKEN = "fake-verification-token"
PERMALINK_BASE = f"https://{TEAM_DOMAIN}.slack.com"
_THREAD_KEYS = ("thread_ts", "reply_count", "reply_users", "reply_users_count", "latest_reply")


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


class _ApiError(ValueError):
    """A Web API error code; method handlers raise it and the server answers ``ok: false``."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


@dataclass
class _Fault:
    error: str
    retry_after: int | None = None  # set: answer HTTP 429


@dataclass
class _PendingAck:
    future: Future[Ack]
    sent_at: float = 0.0


@dataclass
class _Channel:
    id: str
    name: str
    is_member: bool
    messages: dict[str, JSON] = field(default_factory=dict)

    def ordered(self) -> list[JSON]:
        return sorted(self.messages.values(), key=lambda m: ts_key(m["ts"]))

    def top_level(self) -> list[JSON]:
        return [m for m in self.ordered() if not _is_reply(m) or m.get("subtype") == "thread_broadcast"]

    def replies(self, parent_ts: str) -> list[JSON]:
        return [m for m in self.ordered() if _is_reply(m) and m["thread_ts"] == parent_ts]

    def info(self) -> JSON:
        return {
            "id": self.id, "name": self.name, "name_normalized": self.name, "is_channel": True, "is_group": False,
            "is_im": False, "is_private": False, "is_archived": False, "is_general": False,
            "is_member": self.is_member, "context_team_id": TEAM_ID, "created": 1700000000,
        }  # fmt: skip


# ---------------------------------------------------------------- small pure helpers


def ts_key(ts: str) -> tuple[int, int]:
    """Sort key of a Slack timestamp ("1763700000.000100"); floats would lose the microseconds."""
    seconds, _, fraction = str(ts).partition(".")
    try:
        return int(seconds), int(fraction.ljust(6, "0")[:6] or 0)
    except ValueError:
        raise _ApiError("invalid_ts_latest") from None


def _is_reply(message: JSON) -> bool:
    return "thread_ts" in message and message["thread_ts"] != message["ts"]


def _as_json(value: Any) -> Any:
    """Form posts carry blocks/view/files as JSON strings, JSON posts as objects."""
    if isinstance(value, str) and value[:1] in ("[", "{"):
        return json.loads(value)
    return value


def _as_int(value: Any, default: int) -> int:
    try:
        return int(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        raise _ApiError("invalid_limit") from None


def _as_bool(value: Any) -> bool:
    return value in (True, 1, "1", "true", "True")


def _require(params: JSON, name: str, error: str = "invalid_arguments") -> str:
    value = params.get(name)
    if value in (None, ""):
        raise _ApiError(error)
    return str(value)


def _in_range(ts: str, oldest: str | None, latest: str | None, inclusive: bool) -> bool:
    key = ts_key(ts)
    if oldest and (key < ts_key(oldest) or (key == ts_key(oldest) and not inclusive)):
        return False
    return not (latest and (key > ts_key(latest) or (key == ts_key(latest) and not inclusive)))


def _paginate(items: list[JSON], cursor: str | None, limit: int) -> tuple[list[JSON], str]:
    """A page of ``items`` (already in response order) and the next page's cursor ("" on the last page)."""
    start = 0
    if cursor:
        try:
            target = base64.b64decode(cursor).decode().removeprefix("next_ts:")
        except ValueError:
            raise _ApiError("invalid_cursor") from None
        start = next((i for i, m in enumerate(items) if m["ts"] == target), -1)
        if start < 0:
            raise _ApiError("invalid_cursor")
    end = start + max(1, min(limit, 1000))
    next_cursor = base64.b64encode(f"next_ts:{items[end]['ts']}".encode()).decode() if end < len(items) else ""
    return items[start:end], next_cursor


def _redact(headers: Any) -> dict[str, str]:
    return {k.lower(): "<redacted>" if k.lower() == "authorization" else v for k, v in headers.items()}


def _user_record(user_id: str, name: str, real_name: str, display_name: str, is_bot: bool, bot_id: str | None) -> JSON:
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


# ---------------------------------------------------------------- payload builders (Socket Mode and HTTP mode)


def event_callback(event: JSON, *, event_id: str | None = None, event_time: int | None = None) -> JSON:
    """The Events API ``event_callback`` body Slack wraps ``event`` in (``event_ts`` filled in if missing)."""
    event = {**event}
    event.setdefault("event_ts", event.get("ts") or f"{time.time():.6f}")
    return {
        "token": VERIFICATION_TOKEN, "team_id": TEAM_ID, "context_team_id": TEAM_ID, "api_app_id": APP_ID,
        "event": event, "type": "event_callback", "event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}",
        "event_time": event_time or int(time.time()), "is_ext_shared_channel": False,
        "authorizations": [{"enterprise_id": None, "team_id": TEAM_ID, "user_id": BOT_USER_ID, "is_bot": True,
                            "is_enterprise_install": False}],
    }  # fmt: skip


def slash_command_payload(payload: JSON, *, response_url: str | None = None) -> JSON:
    """A slash command payload: ``payload`` over Slack's defaults (token, team, command "/eval", trigger_id, ...)."""
    defaults = {
        "token": VERIFICATION_TOKEN, "team_id": TEAM_ID, "team_domain": TEAM_DOMAIN, "api_app_id": APP_ID,
        "command": "/eval", "text": "", "is_enterprise_install": "false", "trigger_id": _trigger_id(),
        "response_url": response_url or f"https://hooks.slack.com/commands/{TEAM_ID}/1/fake",
    }  # fmt: skip
    return {**defaults, **payload}


def interactive_payload(payload: JSON, *, response_url: str | None = None) -> JSON:
    """An interactivity payload (block_actions, message_action, shortcut, view_submission) over Slack's defaults."""
    defaults: JSON = {
        "token": VERIFICATION_TOKEN, "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN}, "api_app_id": APP_ID,
        "is_enterprise_install": False, "enterprise": None, "trigger_id": _trigger_id(),
    }  # fmt: skip
    if payload.get("type") in ("block_actions", "message_action"):
        defaults["response_url"] = response_url or f"https://hooks.slack.com/actions/{TEAM_ID}/1/fake"
    return {**defaults, **payload}


def signed_request_headers(signing_secret: str, body: str, timestamp: int | str | None = None) -> dict[str, str]:
    """Headers of a request Slack signed with ``signing_secret`` (for tests of ``serve --http``)."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(signing_secret).generate_signature(timestamp=stamp, body=body)
    content_type = "application/json" if body.lstrip().startswith("{") else "application/x-www-form-urlencoded"
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature or "", "Content-Type": content_type}


def close_socket_mode(handler: Any) -> None:
    """Close a Bolt ``SocketModeHandler`` (or slack-sdk built-in ``SocketModeClient``) without a 1 s stall.

    The built-in client's message processor polls its queue with a 1 s timeout and ``close()`` joins it; marking
    the client closed and waking the queue first lets test teardown take milliseconds instead.
    """
    client = getattr(handler, "client", handler)
    client.closed = True
    client.message_queue.put(None)  # the processor skips None and then sees closed
    handler.close()


def _trigger_id() -> str:
    return f"{int(time.time())}.{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex[:16]}"


# ---------------------------------------------------------------- the workspace: state and Web API methods


class _Workspace:
    """Workspace state and one ``api_<method>`` per Web API method; the caller holds FakeSlack's lock."""

    def __init__(self) -> None:
        self.channels: dict[str, _Channel] = {}
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
        self.users[user_id] = _user_record(user_id, name, real_name or name, display_name or "", is_bot, bot_id)

    def next_ts(self) -> str:
        self._last_micros = max(self._last_micros + 1, int(time.time() * 1_000_000))
        return f"{self._last_micros // 1_000_000}.{self._last_micros % 1_000_000:06d}"

    def observe_ts(self, ts: str) -> None:
        seconds, micros = ts_key(ts)
        self._last_micros = max(self._last_micros, seconds * 1_000_000 + micros)

    def next_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):08X}"

    def channel(self, channel_id: str | None, *, member: bool = True) -> _Channel:
        found = self.channels.get(channel_id or "")
        if found is None:
            raise _ApiError("channel_not_found")
        if member and not found.is_member:
            raise _ApiError("not_in_channel")
        return found

    def message(self, channel: _Channel, ts: str | None, error: str = "message_not_found") -> JSON:
        found = channel.messages.get(ts or "")
        if found is None:
            raise _ApiError(error)
        return found

    def add_message(self, channel: _Channel, message: JSON, thread_ts: str | None) -> JSON:
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

    def refresh_thread(self, channel: _Channel, parent_ts: str) -> None:
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

    def delete_message(self, channel: _Channel, ts: str) -> None:
        """Remove a message; a parent with replies becomes a tombstone, as in Slack."""
        message = self.message(channel, ts)
        if _is_reply(message):
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
                message[key] = _as_json(params[key])
        if _as_bool(params.get("reply_broadcast")):
            message["subtype"] = "thread_broadcast"
        return message

    def file_object(self, upload: UploadedFile) -> JSON:
        return {
            "id": upload.id, "created": int(time.time()), "name": upload.filename, "title": upload.title or
            upload.filename, "mimetype": "application/octet-stream", "filetype": upload.filename.rpartition(".")[2],
            "size": upload.length, "user": BOT_USER_ID, "url_private": f"{self.http_base}/files/{upload.id}",
            "permalink": f"{PERMALINK_BASE}/files/{BOT_USER_ID}/{upload.id}/{upload.filename}",
        }  # fmt: skip

    def handler(self, method: str) -> Callable[[JSON], JSON]:
        found = getattr(self, "api_" + method.replace(".", "_"), None)
        if found is None:
            raise _ApiError("unknown_method")
        return found

    # -- Web API methods (each returns the body without "ok")

    def api_auth_test(self, params: JSON) -> JSON:
        return {"url": f"{PERMALINK_BASE}/", "team": "Fake Team", "user": BOT_NAME, "team_id": TEAM_ID,
                "user_id": BOT_USER_ID, "bot_id": BOT_ID, "is_enterprise_install": False}  # fmt: skip

    def api_apps_connections_open(self, params: JSON) -> JSON:
        ticket = uuid.uuid4().hex
        self.tickets.add(ticket)
        return {"url": f"{self.http_base.replace('http://', 'ws://')}/link?ticket={ticket}&app_id={APP_ID}"}

    def api_conversations_replies(self, params: JSON) -> JSON:
        channel = self.channel(params.get("channel"))
        message = self.message(channel, _require(params, "ts"), error="thread_not_found")
        thread = [message] if _is_reply(message) else [message, *channel.replies(message["ts"])]
        page, cursor = _paginate(thread, params.get("cursor"), _as_int(params.get("limit"), 1000))
        return {"messages": copy.deepcopy(page), "has_more": bool(cursor), "response_metadata": {"next_cursor": cursor}}

    def api_conversations_history(self, params: JSON) -> JSON:
        channel = self.channel(params.get("channel"))
        inclusive = _as_bool(params.get("inclusive"))
        newest_first = channel.top_level()[::-1]
        found = [m for m in newest_first if _in_range(m["ts"], params.get("oldest"), params.get("latest"), inclusive)]
        page, cursor = _paginate(found, params.get("cursor"), _as_int(params.get("limit"), 100))
        return {"messages": copy.deepcopy(page), "has_more": bool(cursor), "pin_count": 0,
                "response_metadata": {"next_cursor": cursor}}  # fmt: skip

    def api_conversations_info(self, params: JSON) -> JSON:
        return {"channel": self.channel(params.get("channel"), member=False).info()}

    def api_conversations_join(self, params: JSON) -> JSON:
        channel = self.channel(params.get("channel"), member=False)
        body: JSON = {"warning": "already_in_channel"} if channel.is_member else {}
        channel.is_member = True
        return {**body, "channel": channel.info()}

    def api_chat_postMessage(self, params: JSON) -> JSON:
        channel = self.channel(_require(params, "channel", "channel_not_found"))
        if not (params.get("text") or params.get("blocks") or params.get("attachments")):
            raise _ApiError("no_text")
        message = self.add_message(channel, self.bot_message(params, self.next_ts()), params.get("thread_ts"))
        return {"channel": channel.id, "ts": message["ts"], "message": copy.deepcopy(message)}

    def api_chat_update(self, params: JSON) -> JSON:
        channel = self.channel(params.get("channel"))
        message = self.message(channel, params.get("ts"))
        if message.get("bot_id") != BOT_ID:
            raise _ApiError("cant_update_message")
        message.update({k: v for k, v in self.bot_message(params, message["ts"]).items() if k in params})
        message["edited"] = {"user": BOT_USER_ID, "ts": self.next_ts()}
        return {"channel": channel.id, "ts": message["ts"], "text": message["text"], "message": copy.deepcopy(message)}

    def api_chat_postEphemeral(self, params: JSON) -> JSON:
        channel = self.channel(_require(params, "channel", "channel_not_found"))
        user = _require(params, "user", "user_not_found")
        if not (params.get("text") or params.get("blocks") or params.get("attachments")):
            raise _ApiError("no_text")
        ts = self.next_ts()
        self.ephemerals.append({"channel": channel.id, "user": user, "message_ts": ts, "text": params.get("text"),
                                "blocks": _as_json(params.get("blocks")), "thread_ts": params.get("thread_ts")})
        return {"message_ts": ts}

    def api_chat_getPermalink(self, params: JSON) -> JSON:
        channel = self.channel(params.get("channel"), member=False)
        message = self.message(channel, params.get("message_ts"))
        link = f"{PERMALINK_BASE}/archives/{channel.id}/p{message['ts'].replace('.', '')}"
        if _is_reply(message):
            link += f"?thread_ts={message['thread_ts']}&cid={channel.id}"
        return {"channel": channel.id, "permalink": link}

    def api_users_info(self, params: JSON) -> JSON:
        user = self.users.get(params.get("user") or "")
        if user is None:
            raise _ApiError("user_not_found")
        return {"user": copy.deepcopy(user)}

    def api_usergroups_users_list(self, params: JSON) -> JSON:
        users = self.usergroups.get(params.get("usergroup") or "")
        if users is None:
            raise _ApiError("no_such_subteam")
        return {"users": list(users)}

    def api_views_open(self, params: JSON) -> JSON:
        _require(params, "trigger_id")
        return {"view": self.store_view(params, view_id=self.next_id("V"), root_id=None)}

    def api_views_push(self, params: JSON) -> JSON:
        return self.api_views_open(params)

    def api_views_update(self, params: JSON) -> JSON:
        view_id = params.get("view_id") or next(
            (v["id"] for v in self.views.values() if v.get("external_id") == params.get("external_id")), None
        )
        current = self.views.get(view_id or "")
        if current is None:
            raise _ApiError("not_found")
        if params.get("hash") and params["hash"] != current["hash"]:
            raise _ApiError("hash_conflict")
        return {"view": self.store_view(params, view_id=current["id"], root_id=current["root_view_id"])}

    def store_view(self, params: JSON, *, view_id: str, root_id: str | None) -> JSON:
        view = _as_json(params.get("view"))
        if not isinstance(view, dict) or "type" not in view:
            raise _ApiError("invalid_arguments")
        stored = {
            "private_metadata": "", "callback_id": "", "external_id": "", "state": {"values": {}}, **view,
            "id": view_id, "team_id": TEAM_ID, "app_id": APP_ID, "bot_id": BOT_ID, "root_view_id": root_id or view_id,
            "previous_view_id": None, "hash": f"{int(time.time())}.{uuid.uuid4().hex[:8]}",
        }  # fmt: skip
        self.views[view_id] = stored
        return copy.deepcopy(stored)

    # -- App Home (issue 16): views.publish keeps each user's home view, as Slack shows it in their Home tab

    def api_views_publish(self, params: JSON) -> JSON:
        user_id = _require(params, "user_id", "invalid_arguments")
        if user_id not in self.users:
            raise _ApiError("user_not_found")
        view = _as_json(params.get("view"))
        if not isinstance(view, dict) or view.get("type") != "home":
            raise _ApiError("invalid_arguments")
        if len(view.get("blocks") or []) > 100:
            raise _ApiError("invalid_blocks")
        current = self.home_views.get(user_id)
        if params.get("hash") and current and params["hash"] != current["hash"]:
            raise _ApiError("hash_conflict")
        stored = self.store_view(params, view_id=current["id"] if current else self.next_id("V"), root_id=None)
        self.home_views[user_id] = stored
        return {"view": copy.deepcopy(stored)}

    def api_reactions_add(self, params: JSON) -> JSON:
        channel = self.channel(params.get("channel"))
        message = self.message(channel, params.get("timestamp"))
        name = _require(params, "name", "invalid_name")
        reaction = next((r for r in message.setdefault("reactions", []) if r["name"] == name), None)
        if reaction is None:
            message["reactions"].append({"name": name, "users": [BOT_USER_ID], "count": 1})
        elif BOT_USER_ID in reaction["users"]:
            raise _ApiError("already_reacted")
        else:
            reaction["users"].append(BOT_USER_ID)
            reaction["count"] += 1
        return {}

    def api_files_getUploadURLExternal(self, params: JSON) -> JSON:
        upload = UploadedFile(self.next_id("F"), _require(params, "filename"), _as_int(_require(params, "length"), 0))
        self.files[upload.id] = upload
        return {"upload_url": f"{self.http_base}/upload/{upload.id}", "file_id": upload.id}

    def api_files_completeUploadExternal(self, params: JSON) -> JSON:
        entries = _as_json(_require(params, "files"))
        uploads = [self.files.get(entry.get("id", "")) for entry in entries]
        if not uploads or any(u is None or u.content is None for u in uploads):
            raise _ApiError("file_not_found")
        channel_id = params.get("channel_id") or (params.get("channels") or "").split(",")[0] or None
        channel = self.channel(channel_id) if channel_id else None
        for upload, entry in zip(uploads, entries, strict=True):
            assert upload is not None
            upload.title, upload.channel_id = entry.get("title"), channel_id
            upload.thread_ts, upload.initial_comment = params.get("thread_ts"), params.get("initial_comment")
        objects = [self.file_object(u) for u in uploads if u is not None]
        if channel is not None:
            message = {**self.bot_message({"text": params.get("initial_comment")}, self.next_ts()), "files": objects}
            self.add_message(channel, message, params.get("thread_ts"))
        return {"files": objects}


# ---------------------------------------------------------------- the fake


class FakeSlack:
    """The fake Slack server; seed and inspect it from the test thread while real clients talk to it.

    Close Socket Mode clients (``close_socket_mode``) before stopping it, or they keep trying to reconnect.
    """

    def __init__(self, *, ping_interval: float = 0.2, delivery_timeout: float = 5.0) -> None:
        self.ping_interval = ping_interval  # server pings wake the client's blocking recv, so it closes fast
        self.delivery_timeout = delivery_timeout  # how long an envelope waits for a connected client
        self.calls: list[Call] = []
        self.acks: list[Ack] = []
        self._workspace = _Workspace()
        self._faults: dict[str, deque[_Fault]] = defaultdict(deque)
        self._latency: dict[str, float] = {}
        self._sockets: dict[int, web.WebSocketResponse] = {}  # live connections, by id()
        self._draining: dict[int, web.WebSocketResponse] = {}  # asked to reconnect: no new envelopes
        self._pending: dict[str, _PendingAck] = {}
        self._round_robin = itertools.count()
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._loop = LoopThread("fake-slack")
        self._runner: web.AppRunner | None = None
        self._socket_available: asyncio.Event | None = None
        self._port: int | None = None

    # -- lifecycle

    def start(self) -> FakeSlack:
        """Serve on a free port of 127.0.0.1 from a background thread with its own event loop."""
        if self._loop.running:
            return self
        self._loop.start()
        self._call(self._serve())
        return self

    def stop(self) -> None:
        """Close client sockets, shut the server down, fail unacked envelopes and join the thread."""
        if not self._loop.running:
            return
        self._call(self._shutdown())
        self._loop.stop()
        with self._lock:
            pending, self._pending = self._pending, {}
        for entry in pending.values():
            if not entry.future.done():
                entry.future.set_exception(ConnectionError("FakeSlack stopped before the envelope was acked"))
        self._runner, self._port = None, None

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        if self._port is None:
            raise RuntimeError("FakeSlack is not started")
        return f"http://127.0.0.1:{self._port}"

    @property
    def api_url(self) -> str:
        """``http://127.0.0.1:PORT/api/``, for ``WebClient(base_url=...)`` or SLACK_API_URL."""
        return f"{self.base_url}/api/"

    # -- seeding and inspecting the workspace

    def add_user(self, user_id: str, name: str, display_name: str | None = None, is_bot: bool = False,
                 bot_id: str | None = None, real_name: str | None = None) -> None:  # fmt: skip
        """Add a user; ``display_name`` defaults to "" (as for users who never set one), real_name to ``name``."""
        with self._lock:
            self._workspace.add_user(user_id, name, display_name=display_name, is_bot=is_bot, bot_id=bot_id,
                                     real_name=real_name)  # fmt: skip

    def add_usergroup(self, group_id: str, users: list[str]) -> None:
        """Add a user group (S...) with these members, for usergroups.users.list."""
        with self._lock:
            self._workspace.usergroups[group_id] = list(users)

    def add_channel(self, channel_id: str, name: str, member: bool = True) -> None:
        """Add a channel; with ``member=False`` the bot gets not_in_channel until conversations.join."""
        with self._lock:
            self._workspace.channels[channel_id] = _Channel(channel_id, name, member)

    def post(self, channel: str, text: str, user: str | None = None, bot_id: str | None = None,
             thread_ts: str | None = None, files: list[JSON] | None = None, ts: str | None = None,
             edited: JSON | str | None = None, subtype: str | None = None,
             blocks: list[JSON] | None = None) -> str:  # fmt: skip
        """Add a message (a reply when ``thread_ts``) as if someone posted it; returns its ts.

        An unknown channel is created (bot a member). A ``bot_id`` without ``user`` is a ``bot_message``,
        like an integration's post; ``edited`` may be a ts or Slack's ``{"user", "ts"}``.
        """
        if user is None and bot_id is None:
            raise ValueError("post() needs user or bot_id")
        with self._lock:
            workspace = self._workspace
            room = workspace.channels.setdefault(channel, _Channel(channel, channel, True))
            message: JSON = {"type": "message", "ts": ts or workspace.next_ts(), "text": text, "team": TEAM_ID}
            extras = {"user": user, "bot_id": bot_id, "subtype": subtype or (None if user else "bot_message"),
                      "files": files, "blocks": blocks,
                      "edited": {"user": user, "ts": edited} if isinstance(edited, str) else edited}  # fmt: skip
            message.update({k: v for k, v in extras.items() if v is not None})
            workspace.add_message(room, message, thread_ts)
            self._changed.notify_all()
            return message["ts"]

    def post_raw(self, channel: str, message: JSON) -> str:
        """Store a message payload exactly as given (blocks, attachments, subtypes: Slack's own shapes); returns its ts.

        A reply (``thread_ts`` naming another message already here) refreshes its parent's reply metadata.
        """
        with self._lock:
            workspace = self._workspace
            room = workspace.channels.setdefault(channel, _Channel(channel, channel, True))
            stored: JSON = {"type": "message", **copy.deepcopy(message)}
            thread_ts = stored.get("thread_ts")
            if thread_ts and thread_ts != stored["ts"] and thread_ts in room.messages:
                workspace.add_message(room, stored, thread_ts)
            else:
                workspace.observe_ts(stored["ts"])
                room.messages[stored["ts"]] = stored
            self._changed.notify_all()
            return str(stored["ts"])

    # -- reactions by people (catch-up reads them from conversations.history / conversations.replies)

    def add_reaction(self, channel: str, ts: str, name: str, user: str) -> None:
        """``user`` reacts to a message with ``name``, as Slack records it on the message (no event is sent:
        send one with ``send_event`` when the bot is meant to be connected)."""
        with self._lock:
            message = self._workspace.message(self._workspace.channel(channel, member=False), ts)
            reaction = next((r for r in message.setdefault("reactions", []) if r["name"] == name), None)
            if reaction is None:
                message["reactions"].append({"name": name, "users": [user], "count": 1})
            elif user not in reaction["users"]:
                reaction["users"].append(user)
                reaction["count"] += 1
            self._changed.notify_all()

    def delete_message(self, channel: str, ts: str) -> None:
        """Delete a message (a parent with replies leaves a tombstone, as in Slack)."""
        with self._lock:
            self._workspace.delete_message(self._workspace.channel(channel, member=False), ts)

    def messages_in(self, channel: str, thread_ts: str | None = None) -> list[JSON]:
        """Copies of a channel's top-level messages, or of one thread (parent first), oldest first."""
        with self._lock:
            room = self._workspace.channel(channel, member=False)
            if thread_ts is None:
                return copy.deepcopy(room.top_level())
            parent = room.messages.get(thread_ts)
            return copy.deepcopy(([parent] if parent else []) + room.replies(thread_ts))

    def message(self, channel: str, ts: str) -> JSON | None:
        """A copy of one message, or None."""
        with self._lock:
            return copy.deepcopy(self._workspace.channel(channel, member=False).messages.get(ts))

    def is_member(self, channel: str) -> bool:
        """Whether the bot is in the channel (conversations.join sets it)."""
        with self._lock:
            return self._workspace.channel(channel, member=False).is_member

    @property
    def views(self) -> dict[str, JSON]:
        """Views opened, pushed or updated, by view id."""
        with self._lock:
            return copy.deepcopy(self._workspace.views)

    def home_view(self, user_id: str) -> JSON | None:
        """The App Home view last published for ``user_id`` (views.publish), or None."""
        with self._lock:
            return copy.deepcopy(self._workspace.home_views.get(user_id))

    @property
    def files(self) -> dict[str, UploadedFile]:
        """Files announced by files.getUploadURLExternal (bytes and share details once sent), by file id."""
        with self._lock:
            return dict(self._workspace.files)

    @property
    def ephemerals(self) -> list[JSON]:
        """Ephemeral messages sent with chat.postEphemeral: channel, user, message_ts, text, blocks, thread_ts."""
        with self._lock:
            return copy.deepcopy(self._workspace.ephemerals)

    # -- calls and waiting

    def calls_to(self, method: str) -> list[Call]:
        """Recorded calls of one method, oldest first."""
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def wait_for_call(self, method: str, predicate: Callable[[Call], bool] | None = None, timeout: float = 10.0,
                      *, start: int = 0) -> Call:  # fmt: skip
        """The first call of ``method`` (from index ``start`` of ``calls``) matching ``predicate``; waits for it.

        Side effects of a call (a posted message, an uploaded file) are visible once it is returned.
        Raises TimeoutError naming the calls seen instead.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for call in self.calls[start:]:
                    if call.method == method and (predicate is None or predicate(call)):
                        return call
                start = max(start, len(self.calls))
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [c.method for c in self.calls]
                    raise TimeoutError(f"no matching {method} call within {timeout}s; calls: {seen}")
                self._changed.wait(remaining)

    # -- fault injection

    def fail_next(self, method: str, error: str = "not_in_channel", times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with ``ok: false`` and ``error``."""
        with self._lock:
            self._faults[method].extend(_Fault(error) for _ in range(times))

    def rate_limit_next(self, method: str, times: int = 1, retry_after: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with HTTP 429, ``Retry-After`` and error ratelimited."""
        with self._lock:
            self._faults[method].extend(_Fault("ratelimited", retry_after) for _ in range(times))

    def set_latency(self, method: str, seconds: float) -> None:
        """Delay every answer of ``method`` ("*": every method) without blocking other requests."""
        with self._lock:
            self._latency[method] = seconds

    # -- Socket Mode

    @property
    def connection_count(self) -> int:
        """Live Socket Mode connections (not counting those asked to reconnect)."""
        with self._lock:
            return len(self._sockets)

    def wait_connected(self, timeout: float = 5.0, count: int = 1) -> None:
        """Block until ``count`` clients are connected and none asked to reconnect is still open.

        After ``disconnect_clients()`` this waits for the reconnection to finish, so a test does not close its
        client in the middle of it. Raises TimeoutError otherwise.
        """
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._sockets) >= count and not self._draining, timeout):
                raise TimeoutError(f"{len(self._sockets)} of {count} Socket Mode clients connected after {timeout}s")

    def send_envelope_nowait(self, envelope_type: str, payload: JSON, *, envelope_id: str | None = None,
                             retry_attempt: int = 0, retry_reason: str = "",
                             accepts_response_payload: bool | None = None) -> Future[Ack]:  # fmt: skip
        """Deliver an envelope to one connected client (round robin); the future resolves with its Ack."""
        envelope_id = envelope_id or str(uuid.uuid4())
        accepts = envelope_type != "events_api" if accepts_response_payload is None else accepts_response_payload
        envelope = {"envelope_id": envelope_id, "type": envelope_type, "accepts_response_payload": accepts,
                    "retry_attempt": retry_attempt, "retry_reason": retry_reason, "payload": payload}  # fmt: skip
        future: Future[Ack] = Future()
        with self._lock:
            self._pending[envelope_id] = _PendingAck(future)
        self._loop.submit(self._deliver(envelope))
        return future

    def send_envelope(self, envelope_type: str, payload: JSON, *, timeout: float = 5.0, **options: Any) -> Ack:
        """Deliver an envelope and wait for its ack."""
        return self.send_envelope_nowait(envelope_type, payload, **options).result(timeout)

    def send_event(self, event: JSON, event_id: str | None = None, retry_attempt: int = 0, retry_reason: str = "",
                   *, timeout: float = 5.0) -> Ack:  # fmt: skip
        """Deliver an Events API event (wrapped in its event_callback) and wait for the ack."""
        payload = event_callback(event, event_id=event_id)
        return self.send_envelope("events_api", payload, timeout=timeout, retry_attempt=retry_attempt,
                                  retry_reason=retry_reason)  # fmt: skip

    def send_slash_command(self, payload: JSON, *, timeout: float = 5.0) -> Ack:
        """Deliver a slash command (defaults filled in; response_url points here) and wait for the ack."""
        full = slash_command_payload(payload, response_url=self._response_url())
        return self.send_envelope("slash_commands", full, timeout=timeout)

    def send_interactive(self, payload: JSON, *, timeout: float = 5.0) -> Ack:
        """Deliver block_actions / message_action / shortcut / view_submission and wait for the ack."""
        full = interactive_payload(payload, response_url=self._response_url())
        return self.send_envelope("interactive", full, timeout=timeout)

    def disconnect_clients(self, reason: str = "refresh_requested") -> int:
        """Ask every connected client to reconnect (Slack's disconnect frame); returns how many were asked."""
        frame = {"type": "disconnect", "reason": reason, "debug_info": {"host": "fake-slack"}}
        return self._call(self._ask_to_reconnect(frame))

    def drop_connections(self) -> int:
        """Close every Socket Mode connection from the server side; returns how many.

        slack-sdk's built-in client notices in its monitor, every ``ping_interval`` (Bolt's default: 10 s).
        """
        return self._call(self._close_sockets())

    # -- server plumbing

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._loop.call(coro)

    async def _serve(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_post("/upload/{file_id}", self._handle_upload)
        app.router.add_post("/response/{response_id}", self._handle_response_url)
        app.router.add_get("/link", self._handle_socket)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        self._socket_available = asyncio.Event()
        with self._lock:
            self._workspace.http_base = self.base_url
        await web.SockSite(self._runner, sock, backlog=1024).start()

    async def _shutdown(self) -> None:
        await self._close_sockets()
        if self._runner is not None:
            await self._runner.cleanup()

    def _record(self, call: Call) -> None:
        """Append a call and wake waiters; the caller holds the lock."""
        self.calls.append(call)
        self._changed.notify_all()

    def _response_url(self) -> str:
        return f"{self.base_url}/response/{uuid.uuid4().hex[:12]}"

    # -- HTTP handlers

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params, token = await _read_params(request)
        with self._lock:
            delay = self._latency.get(method, self._latency.get("*", 0.0))
        if delay:
            await asyncio.sleep(delay)
        with self._lock:
            status, body, headers = self._answer(method, params, token)
            token_type = token.partition("-")[0] if token else None
            self._record(Call(method, params, _redact(request.headers), token_type))
        return web.json_response(body, status=status, headers=headers)

    def _answer(self, method: str, params: JSON, token: str | None) -> tuple[int, JSON, dict[str, str]]:
        """Status, body and headers for one API call: an injected fault, or the method's real answer."""
        faults = self._faults.get(method)
        if faults:
            fault = faults.popleft()
            if fault.retry_after is not None:
                return 429, {"ok": False, "error": fault.error}, {"Retry-After": str(fault.retry_after)}
            return 200, {"ok": False, "error": fault.error}, {}
        try:
            handler = self._workspace.handler(method)
            _check_token(method, token)
            return 200, {"ok": True, **handler(params)}, {}
        except _ApiError as failure:
            return 200, {"ok": False, "error": failure.error}, {}

    async def _handle_upload(self, request: web.Request) -> web.Response:
        content = await request.read()
        with self._lock:
            upload = self._workspace.files.get(request.match_info["file_id"])
            if upload is not None:
                upload.content = content
            self._record(Call("upload", {"file_id": request.match_info["file_id"], "length": len(content)},
                              _redact(request.headers)))  # fmt: skip
        if upload is None:
            return web.Response(status=404, text="file_not_found")
        return web.Response(text=f"OK - {len(content)}")

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        with self._lock:
            self._record(Call("response_url", {"response_id": request.match_info["response_id"], **body},
                              _redact(request.headers)))  # fmt: skip
        return web.Response(text="ok")

    # -- Socket Mode handlers (event loop thread)

    async def _handle_socket(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            known = request.query.get("ticket") in self._workspace.tickets
        if not known:
            return web.Response(status=401, text="invalid_ticket")
        ws = web.WebSocketResponse(autoping=True, timeout=1.0)
        await ws.prepare(request)
        await ws.send_json(self._hello())
        self._register(ws)
        keepalive = asyncio.ensure_future(self._keepalive(ws))
        try:
            async for frame in ws:
                if frame.type == WSMsgType.TEXT:
                    self._on_client_frame(frame.data)
        finally:
            keepalive.cancel()
            self._unregister(ws)
        return ws

    def _hello(self) -> JSON:
        with self._lock:
            count = len(self._sockets) + 1
        return {"type": "hello", "num_connections": count, "connection_info": {"app_id": APP_ID},
                "debug_info": {"host": "fake-slack", "build_number": 1, "approximate_connection_time": 18060}}

    def _register(self, ws: web.WebSocketResponse) -> None:
        with self._lock:
            self._sockets[id(ws)] = ws
            self._changed.notify_all()
        assert self._socket_available is not None
        self._socket_available.set()

    def _unregister(self, ws: web.WebSocketResponse) -> None:
        with self._lock:
            self._sockets.pop(id(ws), None)
            self._draining.pop(id(ws), None)
            empty = not self._sockets
            self._changed.notify_all()
        if empty and self._socket_available is not None:
            self._socket_available.clear()

    async def _keepalive(self, ws: web.WebSocketResponse) -> None:
        while not ws.closed:
            await asyncio.sleep(self.ping_interval)
            try:
                await ws.ping(b"fake-slack")
            except ConnectionError:
                return

    def _on_client_frame(self, raw: str) -> None:
        """Match an ack to its envelope by envelope_id; other frames are ignored."""
        received = time.perf_counter()
        try:
            frame = json.loads(raw)
        except ValueError:
            return
        with self._lock:
            pending = self._pending.pop(str(frame.get("envelope_id")), None)
            if pending is None:
                return
            ack = Ack(frame["envelope_id"], frame.get("payload"), received - pending.sent_at)
            self.acks.append(ack)
            self._changed.notify_all()
        pending.future.set_result(ack)

    async def _deliver(self, envelope: JSON) -> None:
        envelope_id = envelope["envelope_id"]
        try:
            ws = await self._pick_socket()
            with self._lock:
                if envelope_id in self._pending:
                    self._pending[envelope_id].sent_at = time.perf_counter()
            await ws.send_str(json.dumps(envelope))
        except Exception as error:  # the waiting test gets the reason, not a hang
            with self._lock:
                pending = self._pending.pop(envelope_id, None)
            if pending is not None and not pending.future.done():
                pending.future.set_exception(error)

    async def _pick_socket(self) -> web.WebSocketResponse:
        assert self._socket_available is not None
        try:
            await asyncio.wait_for(self._socket_available.wait(), self.delivery_timeout)
        except TimeoutError:
            raise ConnectionError(f"no Socket Mode client connected within {self.delivery_timeout}s") from None
        with self._lock:
            open_sockets = [ws for ws in self._sockets.values() if not ws.closed]
        if not open_sockets:
            raise ConnectionError("no open Socket Mode connection")
        return open_sockets[next(self._round_robin) % len(open_sockets)]

    async def _ask_to_reconnect(self, frame: JSON) -> int:
        """Send ``frame`` to every live connection and stop delivering to them until they are replaced."""
        with self._lock:
            targets = [ws for ws in self._sockets.values() if not ws.closed]
            self._draining.update(self._sockets)
            self._sockets.clear()
            self._changed.notify_all()
        assert self._socket_available is not None
        self._socket_available.clear()
        for ws in targets:
            await ws.send_json(frame)
        return len(targets)

    async def _close_sockets(self) -> int:
        with self._lock:
            targets = [*self._sockets.values(), *self._draining.values()]
        await asyncio.gather(*(ws.close() for ws in targets), return_exceptions=True)
        return len(targets)


async def _read_params(request: web.Request) -> tuple[JSON, str | None]:
    """Merge query, form or JSON body; the token comes from ``Authorization: Bearer`` or a ``token`` field."""
    params: JSON = dict(request.query)
    if request.content_type == "application/json":
        body = await request.json() if request.can_read_body else None
        params.update(body or {})
    elif request.can_read_body:
        form = await request.post()
        params.update({k: v for k, v in form.items() if isinstance(v, str)})
    token = params.pop("token", None)
    authorization = request.headers.get("Authorization", "")
    if authorization.startswith("Bearer "):
        token = authorization.removeprefix("Bearer ").strip()
    return params, token


def _check_token(method: str, token: str | None) -> None:
    """Slack's token rules: none -> not_authed; apps.connections.open needs xapp-, everything else xox?-."""
    if not token:
        raise _ApiError("not_authed")
    if not token.startswith(("xoxb-", "xoxp-", "xapp-")):
        raise _ApiError("invalid_auth")
    if (method == "apps.connections.open") != token.startswith("xapp-"):
        raise _ApiError("not_allowed_token_type")


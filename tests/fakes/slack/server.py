"""``FakeSlack``: the fake's life cycle (one aiohttp server on a free port of 127.0.0.1), seeding and inspection.

The Web API and Socket Mode sides are its parts (``http.HttpEndpoints``, ``socket_mode.SocketModeServer``); the
workspace they serve is ``web_api.WebApi``. Everything here runs on the test's thread, under one lock.
"""

from __future__ import annotations

import copy
import socket
import threading
import uuid
from collections.abc import Coroutine
from typing import Any, TypeVar

from aiohttp import web

from tests.fakes.loop import LoopThread
from tests.fakes.slack.common import JSON, TEAM_ID, UploadedFile
from tests.fakes.slack.http import HttpEndpoints
from tests.fakes.slack.socket_mode import SocketModeServer
from tests.fakes.slack.web_api import WebApi
from tests.fakes.slack.workspace import Channel

T = TypeVar("T")


class FakeSlack(HttpEndpoints, SocketModeServer):
    """The fake Slack server; seed and inspect it from the test thread while real clients talk to it.

    Close Socket Mode clients (``close_socket_mode``) before stopping it, or they keep trying to reconnect.
    """

    def __init__(self, *, ping_interval: float = 0.2, delivery_timeout: float = 5.0) -> None:
        self._workspace = WebApi()
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._loop = LoopThread("fake-slack")
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._init_http()
        self._init_socket_mode(ping_interval, delivery_timeout)

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
        self._fail_pending("FakeSlack stopped before the envelope was acked")
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
            self._workspace.channels[channel_id] = Channel(channel_id, name, member)

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
            room = workspace.channels.setdefault(channel, Channel(channel, channel, True))
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
            room = workspace.channels.setdefault(channel, Channel(channel, channel, True))
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

    # -- server plumbing

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._loop.call(coro)

    async def _serve(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        self._add_http_routes(app)
        self._add_socket_routes(app)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        with self._lock:
            self._workspace.http_base = self.base_url
        await web.SockSite(self._runner, sock, backlog=1024).start()

    async def _shutdown(self) -> None:
        await self._close_sockets()
        if self._runner is not None:
            await self._runner.cleanup()

    def _response_url(self) -> str:
        return f"{self.base_url}/response/{uuid.uuid4().hex[:12]}"

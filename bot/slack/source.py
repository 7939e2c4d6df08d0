"""Reads threads, users, permalinks and files from Slack for capture (implements capture.ThreadSource).

Messages leave here normalised by `bot.slack.reader` (capture never sees Slack's payloads); Slack errors
become CaptureError messages that tell the flagger what to do.
"""

from __future__ import annotations

import threading
import urllib.request
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.capture.message import Message, SharedFile
from bot.core.errors import CaptureError
from bot.slack.reader import read_message

_PAGE = 200


def explain(error: str, *, channel: str | None = None, needed: str | None = None) -> str:
    """A sentence a flagger can act on, for a Slack Web API error code."""
    where = f"<#{channel}>" if channel else "that channel"
    return {
        "not_in_channel": f"I can't read {where}: invite me with `/invite @evalbot` there, then flag again.",
        "channel_not_found": f"I can't see {where}: invite me with `/invite @evalbot` there, then flag again.",
        "missing_scope": f"the evalbot app is missing the `{needed or 'needed'}` permission: an admin should reinstall it with the scopes in slack-manifest.yml.",
        "ratelimited": "Slack is rate-limiting me right now: flag the message again in a minute.",
        "thread_not_found": "that message was deleted, so there is nothing to capture.",
        "message_not_found": "that message was deleted, so there is nothing to capture.",
        "invalid_auth": "my Slack token was refused: an admin should check SLACK_BOT_TOKEN.",
        "token_revoked": "my Slack token was revoked: an admin should reinstall the app.",
    }.get(error, f"Slack refused to give me the conversation ({error}); try again, or ask an admin to run `evalbot doctor`.")


class SlackThreadSource:
    """capture.ThreadSource over the Web API, caching user names."""

    def __init__(self, client: WebClient, *, bot_user_id: str | None, bot_id: str | None):
        self.client = client
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self._names: dict[str, str] = {}
        self._names_lock = threading.Lock()

    def _call(self, method: str, **params: Any) -> dict[str, Any]:
        try:
            return self.client.api_call(method, http_verb="GET", params=params).data  # type: ignore[return-value]
        except SlackApiError as exc:
            error = exc.response.get("error", "unknown_error")
            raise CaptureError(explain(error, channel=params.get("channel"), needed=exc.response.get("needed"))) from None

    def read(self, raw: dict[str, Any]) -> Message:
        """A Slack message payload, normalised, with user mentions by display name."""
        return read_message(raw, user_name=self._safe_name)

    def _safe_name(self, user_id: str) -> str:
        try:
            return self.user_name(user_id)
        except CaptureError:
            return user_id

    def message(self, channel: str, ts: str) -> Message | None:
        """The message `ts` (a parent or a reply), or None when it no longer exists."""
        try:
            data = self._call("conversations.replies", channel=channel, ts=ts, limit=1, inclusive=True)
        except CaptureError as exc:
            if "deleted" in str(exc):
                return None
            raise
        for message in data.get("messages") or []:
            if message.get("ts") == ts:
                return self.read(message)
        return None

    def thread(self, channel: str, thread_ts: str) -> list[Message]:
        """Every message of the thread whose parent is `thread_ts`, parent first, all pages."""
        messages: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"channel": channel, "ts": thread_ts, "limit": _PAGE}
            if cursor:
                params["cursor"] = cursor
            data = self._call("conversations.replies", **params)
            messages.extend(data.get("messages") or [])
            cursor = (data.get("response_metadata") or {}).get("next_cursor")
            if not data.get("has_more") or not cursor:
                break
        seen: set[Any] = set()
        unique = [m for m in messages if not (m.get("ts") in seen or seen.add(m.get("ts")))]  # type: ignore[func-returns-value]
        ordered = sorted(unique, key=lambda m: tuple(int(p) for p in m["ts"].split(".")))
        return [self.read(m) for m in ordered]

    def user_name(self, user_id: str) -> str:
        """The user's display name (real name, then handle, as fallbacks), cached."""
        with self._names_lock:
            if user_id in self._names:
                return self._names[user_id]
        try:
            user = self.client.users_info(user=user_id).get("user") or {}
        except SlackApiError:
            return user_id
        profile = user.get("profile") or {}
        name = profile.get("display_name") or profile.get("real_name") or user.get("real_name") or user.get("name") or user_id
        with self._names_lock:
            self._names[user_id] = name
        return name

    def permalink(self, channel: str, ts: str) -> str | None:
        try:
            return self.client.chat_getPermalink(channel=channel, message_ts=ts).get("permalink")
        except SlackApiError:
            return None

    def download(self, file: SharedFile, *, max_bytes: int) -> bytes:
        """The bytes of a file shared in Slack (needs files:read), refusing files over `max_bytes`."""
        url = file.url
        if not url:
            raise ValueError(f"{file.name} cannot be downloaded")
        if file.size > max_bytes:
            raise ValueError(f"{file.name} is larger than {max_bytes // 1_000_000} MB")
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.client.token}"})
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - Slack file URL
            data = response.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise ValueError(f"{file.name} is larger than {max_bytes // 1_000_000} MB")
        return data

"""Catch-up's reading of Slack: the standing channel's history and threads as normalised messages, at Slack's pace.

Slack keeps no Socket Mode events for a disconnected app, so at start and on every reconnect `catch_up` reads
`conversations.history` back to the window and `conversations.replies` of the threads active since the checkpoint,
and hands the domain (`bot.capture.catchup`) each message as a `ChannelMessage`: who wrote it, who reacted with a
flag emoji, whether it mentions the bot (its note: the text without the `<@…>` mentions). Calls are paced under
Slack's Tier 3 limit; a 429 is retried after its Retry-After by the WebClient.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from slack_sdk import WebClient
from sqlalchemy.engine import Engine

from bot.capture import catchup as domain
from bot.capture.catchup import CatchupResult, ChannelMessage
from bot.corpus.files import Corpus

PAGE = 200
BURST = 20  # calls before pacing starts
PACE_SECONDS = 1.2  # Tier 3 is about 50 calls a minute per method
_MENTION = re.compile(r"<@[A-Z0-9]+(?:\|[^>]*)?>")


@dataclass
class CatchupScope:
    """What to look for: the channel, the flag emoji, the bot's own ids, and the window's bounds."""

    channel: str
    flag_emoji: frozenset[str]
    bot_user_id: str | None
    bot_id: str | None = None
    hours: float = 48
    max_messages: int = 1000


class _Pacer:
    def __init__(self, sleep: Callable[[float], None], pace: float) -> None:
        self.sleep, self.pace, self.calls, self._last = sleep, pace, 0, 0.0

    def __call__(self) -> None:
        if self.calls >= BURST:
            self.sleep(max(0.0, self._last + self.pace - time.monotonic()))
        self.calls += 1
        self._last = time.monotonic()


class SlackChannelReader:
    """`bot.capture.catchup.ChannelReader` over the Web API, paged and paced."""

    def __init__(self, client: WebClient, scope: CatchupScope, *, sleep: Callable[[float], None] = time.sleep,
                 pace: float = PACE_SECONDS) -> None:
        self.client, self.scope = client, scope
        self._pacer = _Pacer(sleep, pace)

    @property
    def calls(self) -> int:
        return self._pacer.calls

    def history(self, channel: str, *, oldest: str, latest: str) -> Iterator[ChannelMessage]:
        for raw in self._pages(self.client.conversations_history, channel=channel, oldest=oldest, latest=latest):
            yield self.read(raw)

    def replies(self, channel: str, ts: str) -> Iterator[ChannelMessage]:
        for raw in self._pages(self.client.conversations_replies, channel=channel, ts=ts):
            yield self.read(raw)

    def read(self, raw: dict[str, Any]) -> ChannelMessage:
        """What catch-up needs of one message payload."""
        scope = self.scope
        text = raw.get("text") or ""
        flagged_by = tuple(
            user for reaction in raw.get("reactions") or []
            if str(reaction.get("name", "")).split("::", 1)[0] in scope.flag_emoji
            for user in reaction.get("users") or [] if user != scope.bot_user_id
        )
        own = bool((scope.bot_user_id and raw.get("user") == scope.bot_user_id)
                   or (scope.bot_id and raw.get("bot_id") == scope.bot_id))
        return ChannelMessage(
            ts=raw["ts"], thread_ts=raw.get("thread_ts"), user=raw.get("user"), own=own, by_bot=bool(raw.get("bot_id")),
            flagged_by=flagged_by, mentions_bot=bool(scope.bot_user_id and f"<@{scope.bot_user_id}" in text),
            note=_MENTION.sub("", text).strip() or None, reply_count=int(raw.get("reply_count") or 0),
            latest_reply=str(raw["latest_reply"]) if raw.get("latest_reply") else None,
        )

    def _pages(self, call: Callable[..., Any], **params: Any) -> Iterator[dict[str, Any]]:
        cursor = None
        while True:
            self._pacer()
            page = call(**params, limit=PAGE, **({"cursor": cursor} if cursor else {}))
            yield from page.get("messages") or []
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not page.get("has_more") or not cursor:
                return


def catch_up(client: WebClient, *, engine: Engine, corpus: Corpus, scope: CatchupScope,
             now: float | None = None, sleep: Callable[[float], None] = time.sleep,
             pace: float = PACE_SECONDS) -> CatchupResult:
    """Write to the inbox every flag in the channel the bot has not seen (`bot.capture.catchup.catch_up`)."""
    reader = SlackChannelReader(client, scope, sleep=sleep, pace=pace)
    return domain.catch_up(reader, engine=engine, corpus=corpus, channel=scope.channel, hours=scope.hours,
                           max_messages=scope.max_messages, now=now)

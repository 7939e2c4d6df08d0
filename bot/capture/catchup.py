"""Catch-up on connect: flags made while the bot was not connected (a deploy, a crash, the network) go to the inbox.

Slack keeps no Socket Mode events for a disconnected app. At start and on every reconnect, `catch_up` reads the
standing channel's history (`conversations.history`) back to the catch-up window (EVALBOT_CATCHUP_HOURS, at most
EVALBOT_CATCHUP_MAX_MESSAGES messages), and the replies (`conversations.replies`) of the threads active since
the stored checkpoint. A message that carries a flag reaction and is not yet a case, a rejection or an inbox
row, and an `@evalbot` mention since the checkpoint that has no inbox row and no answer from the bot after it,
is written to the inbox under `catchup:<channel>:<ts>:<user>`, so catching up twice (or on two replicas) writes
it once. Calls are paced under Slack's Tier 3 limit; a 429 is retried after its Retry-After by the WebClient.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.engine import Engine

from bot.capture import inbox
from bot.capture.candidate import FlagRequest
from bot.core.clock import utcnow
from bot.corpus.files import Corpus
from bot.corpus.ids import slack_case_id
from bot.store.tables import CatchupCheckpoint, Rejection, session_scope

log = logging.getLogger(__name__)

PAGE = 200
BURST = 20  # calls before pacing starts
PACE_SECONDS = 1.2  # Tier 3 is about 50 calls a minute per method
_MENTION = re.compile(r"<@[A-Z0-9]+(?:\|[^>]*)?>")


class HistoryClient(Protocol):
    """The two Web API methods catch-up reads with (slack_sdk's WebClient)."""

    def conversations_history(self, **kwargs: Any) -> Any: ...
    def conversations_replies(self, **kwargs: Any) -> Any: ...


@dataclass
class CatchupScope:
    """What to look for: the channel, the flag emoji, the bot's own ids, and the window's bounds."""

    channel: str
    flag_emoji: frozenset[str]
    bot_user_id: str | None
    bot_id: str | None = None
    hours: float = 48
    max_messages: int = 1000


@dataclass
class CatchupResult:
    """The inbox keys written, and how many messages and calls it took."""

    keys: list[str] = field(default_factory=list)
    messages: int = 0
    calls: int = 0


class _Pacer:
    def __init__(self, sleep: Callable[[float], None], pace: float) -> None:
        self.sleep, self.pace, self.calls, self._last = sleep, pace, 0, 0.0

    def __call__(self) -> None:
        if self.calls >= BURST:
            self.sleep(max(0.0, self._last + self.pace - time.monotonic()))
        self.calls += 1
        self._last = time.monotonic()


def _slack_ts(seconds: float) -> str:
    return f"{seconds:.6f}"


def _key(ts: str) -> tuple[int, int]:
    whole, _, micros = ts.partition(".")
    return int(whole or 0), int((micros or "0").ljust(6, "0")[:6])


def checkpoint(engine: Engine, channel: str) -> str | None:
    """The ts up to which `channel` was last caught up, or None before the first catch-up."""
    with session_scope(engine) as session:
        row = session.get(CatchupCheckpoint, channel)
        return row.ts if row else None


def _store_checkpoint(engine: Engine, channel: str, ts: str) -> None:
    with session_scope(engine) as session:
        row = session.get(CatchupCheckpoint, channel)
        if row is None:
            session.add(CatchupCheckpoint(channel=channel, ts=ts))
        elif _key(ts) > _key(row.ts):
            row.ts, row.updated_at = ts, utcnow()


def _pages(call: Callable[..., Any], pace: _Pacer, **params: Any) -> Iterator[dict[str, Any]]:
    cursor = None
    while True:
        pace()
        page = call(**params, limit=PAGE, **({"cursor": cursor} if cursor else {}))
        yield from page.get("messages") or []
        cursor = (page.get("response_metadata") or {}).get("next_cursor")
        if not page.get("has_more") or not cursor:
            return


def catch_up(client: HistoryClient, *, engine: Engine, corpus: Corpus, scope: CatchupScope,
             now: float | None = None, sleep: Callable[[float], None] = time.sleep,
             pace: float = PACE_SECONDS) -> CatchupResult:
    """Write to the inbox every flag in the channel the bot has not seen (see the module docstring)."""
    result = CatchupResult()
    started = time.time() if now is None else now
    latest = _slack_ts(started)
    window = _slack_ts(started - scope.hours * 3600)
    stored = checkpoint(engine, scope.channel)
    since = max(stored, window, key=_key) if stored else window
    pacer = _Pacer(sleep, pace)
    found: list[tuple[str, FlagRequest]] = []
    for message in _pages(client.conversations_history, pacer, channel=scope.channel, oldest=window, latest=latest):
        if result.messages >= scope.max_messages:
            log.warning("catch-up stopped after %d messages (EVALBOT_CATCHUP_MAX_MESSAGES)", scope.max_messages)
            break
        result.messages += 1
        found += _flags_on(message, scope, since=since, thread=None)
        if message.get("reply_count") and _key(str(message.get("latest_reply") or "0")) >= _key(since):
            thread = list(_pages(client.conversations_replies, pacer, channel=scope.channel, ts=message["ts"]))
            for reply in thread:
                if reply.get("ts") != message["ts"] and _key(reply["ts"]) <= _key(latest):
                    found += _flags_on(reply, scope, since=since, thread=thread)
    for key, flag in found:
        if _is_new(flag, engine=engine, corpus=corpus) and inbox.enqueue(engine, key=key, flag=flag):
            result.keys.append(key)
    _store_checkpoint(engine, scope.channel, latest)
    result.calls = pacer.calls
    log.info("caught up on %s since %s: %d message(s) read in %d call(s), %d flag(s) found",
             scope.channel, since, result.messages, result.calls, len(result.keys))
    return result


def _is_own(message: dict[str, Any], scope: CatchupScope) -> bool:
    return bool((scope.bot_user_id and message.get("user") == scope.bot_user_id)
                or (scope.bot_id and message.get("bot_id") == scope.bot_id))


def _flags_on(message: dict[str, Any], scope: CatchupScope, *, since: str,
              thread: list[dict[str, Any]] | None) -> list[tuple[str, FlagRequest]]:
    ts, channel = message["ts"], scope.channel
    flags: list[tuple[str, FlagRequest]] = []
    for reaction in message.get("reactions") or []:
        if str(reaction.get("name", "")).split("::", 1)[0] not in scope.flag_emoji:
            continue
        for user in reaction.get("users") or []:
            if user != scope.bot_user_id:
                flags.append((f"catchup:{channel}:{ts}:{user}",
                              FlagRequest(channel=channel, user_id=user, trigger="reaction", ts=ts)))
    text = message.get("text") or ""
    user = message.get("user")
    if (scope.bot_user_id and f"<@{scope.bot_user_id}" in text and user and not _is_own(message, scope)
            and not message.get("bot_id") and _key(ts) >= _key(since)):
        answered = any(_is_own(m, scope) and _key(m["ts"]) > _key(ts) for m in thread or [])
        if not answered:
            note = _MENTION.sub("", text).strip() or None
            flags.append((f"catchup:{channel}:{ts}:{user}", FlagRequest(
                channel=channel, user_id=user, trigger="mention", ts=ts, thread_ts=message.get("thread_ts"), note=note)))
    return flags


def _is_new(flag: FlagRequest, *, engine: Engine, corpus: Corpus) -> bool:
    """Not yet an inbox row, nor (for a reaction) a case or a rejection of that message."""
    if inbox.known(engine, channel=flag.channel, ts=flag.ts):
        return False
    if flag.trigger != "reaction":
        return True
    case_id = slack_case_id(flag.channel, flag.ts)
    with session_scope(engine) as session:
        rejected = session.get(Rejection, case_id) is not None
    return not rejected and corpus.find(case_id) is None

"""Catch-up on connect: flags made while the bot was not connected (a deploy, a crash, the network) go to the inbox.

Plain Python over normalised channel messages. The edge (`bot.slack.flows.catchup`) reads the standing channel's
history back to the catch-up window (EVALBOT_CATCHUP_HOURS, at most EVALBOT_CATCHUP_MAX_MESSAGES messages) and the
replies of the threads active since the stored checkpoint, and hands each message over as a `ChannelMessage`
(who wrote it, who flagged it, whether it mentions the bot). A message that carries a flag reaction and is not yet
a case, a rejection or an inbox row, and a mention of the bot since the checkpoint that has no inbox row and no
answer from the bot after it, is written to the inbox under `catchup:<channel>:<ts>:<user>`, so catching up twice
(or on two replicas) writes it once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.engine import Engine

from bot.capture import inbox
from bot.capture.candidate import FlagRequest
from bot.core.clock import utcnow
from bot.corpus.files import Corpus
from bot.corpus.ids import slack_case_id
from bot.store.tables import CatchupCheckpoint, Rejection, session_scope

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChannelMessage:
    """One message of the channel as catch-up sees it (the edge reads it from whatever the platform sends)."""

    ts: str
    thread_ts: str | None = None
    user: str | None = None  # the person who wrote it; None for an integration's post
    own: bool = False  # written by this bot
    by_bot: bool = False  # written by a bot or an integration (this one included)
    flagged_by: tuple[str, ...] = ()  # people who reacted with a flag emoji, the bot left out
    mentions_bot: bool = False
    note: str | None = None  # its text without the mentions, for a mention flag
    reply_count: int = 0
    latest_reply: str | None = None


class ChannelReader(Protocol):
    """How catch-up reads the channel: top-level messages newest first, and one thread's messages."""

    @property
    def calls(self) -> int:
        """Requests made so far."""
        ...

    def history(self, channel: str, *, oldest: str, latest: str) -> Iterator[ChannelMessage]: ...
    def replies(self, channel: str, ts: str) -> Iterable[ChannelMessage]: ...


@dataclass
class CatchupResult:
    """The inbox keys written, and how many messages and calls it took."""

    keys: list[str] = field(default_factory=list)
    messages: int = 0
    calls: int = 0


def _ts(seconds: float) -> str:
    return f"{seconds:.6f}"


CATCHUP_PREFIX = "catchup:"


def catchup_key(channel: str, ts: str, user: str) -> str:
    """The inbox key of a flag found by catch-up: the message and who flagged it (catching up twice writes it once)."""
    return f"{CATCHUP_PREFIX}{channel}:{ts}:{user}"


def found_by_catchup(engine: Engine, flag: FlagRequest) -> bool:
    """Whether catch-up wrote this flag to the inbox: the same reaction may also have arrived live, as its own row."""
    return inbox.has(engine, key=catchup_key(flag.channel, flag.ts, flag.user_id))


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


def catch_up(reader: ChannelReader, *, engine: Engine, corpus: Corpus, channel: str, hours: float = 48,
             max_messages: int = 1000, now: float | None = None) -> CatchupResult:
    """Write to the inbox every flag in the channel the bot has not seen (see the module docstring)."""
    result = CatchupResult()
    started = time.time() if now is None else now
    latest = _ts(started)
    window = _ts(started - hours * 3600)
    stored = checkpoint(engine, channel)
    since = max(stored, window, key=_key) if stored else window
    found: list[tuple[str, FlagRequest]] = []
    for message in reader.history(channel, oldest=window, latest=latest):
        if result.messages >= max_messages:
            log.warning("catch-up stopped after %d messages (EVALBOT_CATCHUP_MAX_MESSAGES)", max_messages)
            break
        result.messages += 1
        found += _flags_on(message, channel, since=since, thread=None)
        if message.reply_count and _key(message.latest_reply or "0") >= _key(since):
            thread = list(reader.replies(channel, message.ts))
            for reply in thread:
                if reply.ts != message.ts and _key(reply.ts) <= _key(latest):
                    found += _flags_on(reply, channel, since=since, thread=thread)
    for key, flag in found:
        if _is_new(flag, engine=engine, corpus=corpus) and inbox.enqueue(engine, key=key, flag=flag):
            result.keys.append(key)
    _store_checkpoint(engine, channel, latest)
    result.calls = reader.calls
    log.info("caught up on %s since %s: %d message(s) read in %d call(s), %d flag(s) found",
             channel, since, result.messages, result.calls, len(result.keys))
    return result


def _flags_on(message: ChannelMessage, channel: str, *, since: str,
              thread: list[ChannelMessage] | None) -> list[tuple[str, FlagRequest]]:
    ts = message.ts
    flags = [(catchup_key(channel, ts, user), FlagRequest(channel=channel, user_id=user, trigger="reaction", ts=ts))
             for user in message.flagged_by]
    user = message.user
    if message.mentions_bot and user and not message.own and not message.by_bot and _key(ts) >= _key(since):
        answered = any(m.own and _key(m.ts) > _key(ts) for m in thread or [])
        if not answered:
            flags.append((catchup_key(channel, ts, user), FlagRequest(
                channel=channel, user_id=user, trigger="mention", ts=ts, thread_ts=message.thread_ts, note=message.note)))
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

"""Event listeners: a flag reaction and an @evalbot mention in the standing channel.

A flag is written to the inbox (`bot.capture.inbox`) by a listener middleware, which Bolt runs before it acks
the envelope: if that write fails, Slack is not acked and redelivers. The listener proper (after the ack) hands
the row's key to the capture (`deps.submit_flag`). A redelivered event finds its row and is dropped.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from slack_bolt import App, BoltContext
from slack_sdk import WebClient

from bot.capture import inbox
from bot.capture.candidate import FlagRequest
from bot.core.settings import Settings
from bot.slack.deps import SlackDeps
from bot.slack.flows.notify import tell_user
from bot.slack.listeners import bind
from bot.slack.reader import mention_note

INBOX_KEY = "evalbot_inbox_key"  # the context key under which the middleware leaves a newly written row's key


def reaction_flag(event: dict[str, Any], settings: Settings) -> FlagRequest | None:
    """The flag a reaction_added event makes, or None when it is not a flag reaction in the standing channel."""
    item = event.get("item") or {}
    if item.get("type") != "message" or item.get("channel") != settings.channel:
        return None
    if event.get("reaction", "").split("::", 1)[0] not in settings.flag_emoji:
        return None
    return FlagRequest(channel=item["channel"], user_id=event["user"], trigger="reaction", ts=item["ts"])


def mention_flag(event: dict[str, Any], settings: Settings, *, bot_user_id: str | None = None) -> FlagRequest | None:
    """The flag an app_mention makes, or None outside the standing channel; its note is the message's content
    (blocks first), not its fallback text."""
    if event.get("channel") != settings.channel:
        return None
    note = mention_note(event, bot_user_id=bot_user_id)
    return FlagRequest(channel=event["channel"], user_id=event["user"], trigger="mention", ts=event["ts"],
                       thread_ts=event.get("thread_ts"), note=note)


def event_key(body: dict[str, Any], flag: FlagRequest) -> str:
    """The inbox key of an event's flag: its event id (what Slack keeps across redeliveries)."""
    event_id = body.get("event_id")
    return f"event:{event_id}" if event_id else f"{flag.trigger}:{flag.channel}:{flag.ts}:{flag.user_id}"


def inbox_middleware(deps: SlackDeps, flag_of: Callable[[dict[str, Any], Settings], FlagRequest | None]) -> Callable[..., None]:
    """A listener middleware writing the event's flag to the inbox before the ack (`write_to_inbox`)."""
    return bind(write_to_inbox, deps=deps, flag_of=flag_of)


def write_to_inbox(body: dict[str, Any], context: BoltContext, next: Callable[[], None], *,  # noqa: A002
                   deps: SlackDeps, flag_of: Callable[[dict[str, Any], Settings], FlagRequest | None]) -> None:
    """Write the event's flag to the inbox; leave the new row's key in the context ("" for a redelivery, nothing
    for an event that is no flag)."""
    flag = flag_of(body.get("event") or {}, deps.runtime.settings)
    if flag is not None:
        key = event_key(body, flag)
        # "" for a redelivery (already in the inbox): the listener still runs, so Bolt acks it.
        context[INBOX_KEY] = key if inbox.enqueue(deps.runtime.engine, key=key, flag=flag) else ""
    next()


def on_reaction(context: BoltContext, *, deps: SlackDeps) -> None:
    """After the ack: hand a flag reaction newly written to the inbox over to be captured."""
    if context.get(INBOX_KEY) and deps.submit_flag is not None:
        deps.submit_flag(context[INBOX_KEY])


def on_mention(event: dict[str, Any], context: BoltContext, client: WebClient, *, deps: SlackDeps) -> None:
    """After the ack: hand a mention flag over to be captured, or tell the user flags are taken in the channel."""
    if INBOX_KEY in context:
        if context[INBOX_KEY] and deps.submit_flag is not None:
            deps.submit_flag(context[INBOX_KEY])
        return
    tell_user(client, user=event["user"], channel=event["channel"], thread_ts=event.get("thread_ts"),
              text=f"I only take flags in <#{deps.runtime.settings.channel}>: mention me in a thread there.")


def flag_of_mention(event: dict[str, Any], settings: Settings, *, deps: SlackDeps) -> FlagRequest | None:
    """`mention_flag` with the bot's own user id (its mention is not part of the note)."""
    return mention_flag(event, settings, bot_user_id=deps.source.bot_user_id)


def register(app: App, deps: SlackDeps) -> None:
    """Attach the event listeners."""
    app.event("reaction_added", middleware=[inbox_middleware(deps, reaction_flag)])(bind(on_reaction, deps=deps))
    mention_middleware = inbox_middleware(deps, functools.partial(flag_of_mention, deps=deps))
    app.event("app_mention", middleware=[mention_middleware])(bind(on_mention, deps=deps))

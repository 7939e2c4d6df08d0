"""Event listeners: a flag reaction and an @evalbot mention in the standing channel."""

from __future__ import annotations

from typing import Any

from slack_bolt import App
from slack_sdk import WebClient

from bot.capture.candidate import FlagRequest
from bot.slack.deps import SlackDeps
from bot.slack.flows.notify import tell_user
from bot.slack.reader import mention_note
from bot.store.dedupe import first_delivery


def register(app: App, deps: SlackDeps) -> None:
    """Attach the event listeners."""
    settings = deps.runtime.settings

    @app.event("reaction_added")
    def on_reaction(event: dict[str, Any], body: dict[str, Any]) -> None:
        item = event.get("item") or {}
        if item.get("type") != "message" or item.get("channel") != settings.channel:
            return
        if event.get("reaction", "").split("::", 1)[0] not in settings.flag_emoji:
            return
        if not first_delivery(deps.runtime.engine, body.get("event_id")):
            return
        deps.submit_flag(FlagRequest(channel=item["channel"], user_id=event["user"], trigger="reaction", ts=item["ts"]), None)

    @app.event("app_mention")
    def on_mention(event: dict[str, Any], body: dict[str, Any], client: WebClient) -> None:
        if not first_delivery(deps.runtime.engine, body.get("event_id")):
            return
        channel = event["channel"]
        if channel != settings.channel:
            tell_user(client, user=event["user"], channel=channel, thread_ts=event.get("thread_ts"),
                      text=f"I only take flags in <#{settings.channel}>: mention me in a thread there.")
            return
        note = mention_note(event, bot_user_id=deps.source.bot_user_id)  # from the content, not the fallback text
        flag = FlagRequest(channel=channel, user_id=event["user"], trigger="mention", ts=event["ts"],
                           thread_ts=event.get("thread_ts"), note=note)
        deps.submit_flag(flag, None)

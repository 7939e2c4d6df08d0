"""The message shortcut `evalbot_flag`: a modal for an optional note; its submission is written to the flag
inbox before it is acked, and captured after the ack."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.capture import inbox
from bot.capture.candidate import FlagRequest
from bot.slack.blocks import capture as blocks
from bot.slack.deps import SlackDeps
from bot.slack.flows.notify import tell_user
from bot.slack.listeners import bind

CALLBACK_ID = "evalbot_flag"


def on_shortcut(ack: Ack, shortcut: dict[str, Any], client: WebClient, *, deps: SlackDeps) -> None:
    """Open the note modal on a message of the standing channel, or tell the user where flags are taken."""
    ack()
    settings = deps.runtime.settings
    channel = (shortcut.get("channel") or {}).get("id")
    user = shortcut["user"]["id"]
    if channel is None or channel != settings.channel:
        tell_user(client, user=user, response_url=shortcut.get("response_url"),
                  text=f"I only take flags in <#{settings.channel}>: use the shortcut on a message there.")
        return
    client.views_open(trigger_id=shortcut["trigger_id"],
                      view=blocks.flag_note_modal(channel=channel, message_ts=shortcut["message_ts"]))


def enqueue_note(ack: Ack, body: dict[str, Any], *, deps: SlackDeps) -> None:
    """Write the submitted note's flag to the inbox, ack, then hand it over to be captured."""
    flag, key = note_flag(body)
    # Written before the ack: once the form closes, the flag is in the database. Bolt answers Slack as soon
    # as ack() is called; the hand-over after it (a nudge to the worker under `serve`) does not delay that.
    new = inbox.enqueue(deps.runtime.engine, key=key, flag=flag)
    ack()
    if new and deps.submit_flag is not None:
        deps.submit_flag(key)


def register(app: App, deps: SlackDeps) -> None:
    """Attach the shortcut and its note modal."""
    app.shortcut(CALLBACK_ID)(bind(on_shortcut, deps=deps))
    app.view(blocks.FLAG_NOTE_VIEW)(bind(enqueue_note, deps=deps))


def note_flag(body: dict[str, Any]) -> tuple[FlagRequest, str]:
    """The flag a submitted note form makes, and its inbox key (the view id: one row per submission)."""
    view = body["view"]
    channel, _, message_ts = view["private_metadata"].partition("|")
    note = (((view.get("state") or {}).get("values") or {}).get("note") or {}).get("note", {}).get("value")
    flag = FlagRequest(channel=channel, user_id=body["user"]["id"], trigger="shortcut", ts=message_ts,
                       note=(note or "").strip() or None)
    return flag, f"view:{view.get('id') or f'{channel}:{message_ts}:{flag.user_id}'}"

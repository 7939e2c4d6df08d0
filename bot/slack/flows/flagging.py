"""The flag flow shared by the reaction, the message shortcut and the mention: capture, then answer.

A new case gets a reply in the thread; a new flagger updates that reply's count; a repeat flag or a
refusal is told to the flagger alone.
"""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.capture.candidate import CaptureResult, FlagRequest, capture, remember_reply, reply_of
from bot.core.errors import AlreadyRejectedError, CaptureError
from bot.slack.blocks import capture as blocks
from bot.slack.deps import SlackDeps
from bot.slack.flows.notify import tell_user

log = logging.getLogger(__name__)


def handle_flag(deps: SlackDeps, client: WebClient, flag: FlagRequest, *, response_url: str | None = None) -> str:
    """Capture the flagged conversation and tell the flagger how it landed; returns the outcome
    (created, reflagged, repeated or refused) for the metrics."""
    rt = deps.runtime
    try:
        result = capture(flag, source=deps.source, corpus=rt.corpus, engine=rt.engine, options=deps.options)
    except (CaptureError, AlreadyRejectedError) as exc:
        tell_user(client, user=flag.user_id, text=f":warning: {exc}", channel=flag.channel,
                  thread_ts=flag.thread_ts or flag.ts, response_url=response_url)
        return "refused"
    if result.created:
        _post_reply(deps, client, result)
    elif result.new_flagger:
        _refresh_reply(deps, client, result)
    else:
        tell_user(client, user=flag.user_id, channel=flag.channel, thread_ts=result.thread_ts, response_url=response_url,
                  text=f"You already flagged this: case `{result.case.id}` ({blocks.flaggers_text(result.case)}).")
    return "created" if result.created else "reflagged" if result.new_flagger else "repeated"


def _post_reply(deps: SlackDeps, client: WebClient, result: CaptureResult) -> None:
    case = result.case
    response = client.chat_postMessage(
        channel=case.source.channel, thread_ts=result.thread_ts, text=blocks.capture_text(case),
        blocks=blocks.capture_reply(result), unfurl_links=False,
    )
    remember_reply(deps.runtime.engine, case_id=case.id, channel=response["channel"], message_ts=response["ts"])


def _refresh_reply(deps: SlackDeps, client: WebClient, result: CaptureResult) -> None:
    where = reply_of(deps.runtime.engine, case_id=result.case.id)
    if where is None:
        _post_reply(deps, client, result)
        return
    channel, ts = where
    try:
        client.chat_update(channel=channel, ts=ts, text=blocks.capture_text(result.case), blocks=blocks.capture_reply(result))
    except SlackApiError as exc:
        log.warning("could not update the capture reply of %s (%s); posting a new one", result.case.id, exc.response.get("error"))
        _post_reply(deps, client, result)

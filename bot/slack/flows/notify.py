"""Telling one person something privately: an ephemeral message, falling back to a DM or a response_url."""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack.markup import mentions
from bot.slack.redaction import RedactingWebhookClient

log = logging.getLogger(__name__)


def tell_user(
    client: WebClient, *, user: str, text: str, channel: str | None = None, thread_ts: str | None = None,
    response_url: str | None = None,
) -> None:
    """Send `text` only to `user`: through response_url, else ephemeral in the channel, else as a DM (the people
    the domain named in it, `@U…`, as mentions)."""
    text = mentions(text)
    if response_url:
        try:
            RedactingWebhookClient(response_url, timeout=10).send(text=text, response_type="ephemeral", replace_original=False)
            return
        except Exception:  # noqa: BLE001 - fall back to the Web API below
            log.warning("posting to response_url failed; trying an ephemeral message")
    if channel:
        try:
            client.chat_postEphemeral(channel=channel, user=user, text=text, thread_ts=thread_ts)
            return
        except SlackApiError as exc:
            log.info("ephemeral message failed (%s); sending a DM", exc.response.get("error"))
    # A DM reaches the user even when the bot cannot post in the channel (e.g. it was never invited).
    client.chat_postMessage(channel=user, text=text)


def digest_permalink(client: WebClient, channel: str | None, ts: str | None) -> str | None:
    """The permalink of a posted digest, or None when there is none or Slack will not say (a link is optional)."""
    if not channel or not ts:
        return None
    try:
        return client.chat_getPermalink(channel=channel, message_ts=ts).get("permalink")
    except SlackApiError as exc:
        log.info("no permalink for the digest %s (%s)", ts, exc.response.get("error"))
        return None

"""The flag flow shared by the reaction, the message shortcut and the mention: capture, then answer.

A new case gets a reply in the thread; a new flagger updates that reply's count; a repeat flag or a
refusal is told to the flagger alone. `capture_claimed` runs one leased inbox row through that and settles
it: done after the commit and the reply, or retried with backoff and finally parked as failed (the flagger
is told). The reply is idempotent: a retry after a crash between the commit and the reply finds the reply
already in the thread (or posts it), never a second one.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.engine import Engine

from bot.capture import inbox
from bot.capture.candidate import CaptureResult, FlagRequest, capture, remember_reply, reply_of
from bot.capture.catchup import CATCHUP_PREFIX, found_by_catchup
from bot.core import metrics
from bot.core.errors import AlreadyRejectedError, CaptureError, EvalbotError
from bot.slack.blocks import capture as blocks
from bot.slack.deps import SlackDeps
from bot.slack.flows.notify import tell_user
from bot.store.tables import advisory_lock

log = logging.getLogger(__name__)


def capture_claimed(deps: SlackDeps, client: WebClient, claimed: inbox.Claimed, *, owner: str) -> str:
    """Capture one leased inbox row and settle it; returns the outcome for the metrics (or "retry"/"failed")."""
    engine = deps.runtime.engine
    try:
        # A flag catch-up found is never one the flagger made twice: if its case has it already, it was delivered live.
        outcome, case_id = _handle(deps, client, claimed.flag, retry=claimed.retry or claimed.key.startswith(CATCHUP_PREFIX))
    except Exception as exc:  # noqa: BLE001 - any failure is recorded on the row and retried, never dropped
        log.warning("capturing flag %s failed (attempt %d): %s", claimed.key, claimed.attempts + 1, exc,
                    exc_info=not isinstance(exc, (SlackApiError, EvalbotError)))
        verdict = inbox.fail(engine, key=claimed.key, owner=owner, error=_describe(exc), attempts_before=claimed.attempts)
        if verdict == "failed":
            _tell_failed(client, claimed.flag, _describe(exc))
        return verdict
    inbox.complete(engine, key=claimed.key, owner=owner, case_id=case_id)
    return outcome


def capture_now(deps: SlackDeps, client: WebClient, key: str) -> None:
    """Capture one inbox row on this thread (no worker process): lease it, capture it, count the outcome."""
    owner = inbox.owner_id()
    for claimed in inbox.claim(deps.runtime.engine, owner=owner, limit=1, keys=[key]):
        metrics.CAPTURES.labels(capture_claimed(deps, client, claimed, owner=owner)).inc()


def _describe(exc: Exception) -> str:
    if isinstance(exc, SlackApiError):
        return f"Slack answered {exc.response.get('error') or exc.response.status_code}"
    return str(exc) or type(exc).__name__


def _tell_failed(client: WebClient, flag: FlagRequest, error: str) -> None:
    text = (f":x: I could not capture the message you flagged, after {inbox.MAX_ATTEMPTS} attempts: {error}. "
            "It is kept as a failed flag (`evalbot doctor` and `/eval status` list it); flag it again to retry.")
    try:
        tell_user(client, user=flag.user_id, text=text, channel=flag.channel, thread_ts=flag.thread_ts or flag.ts)
    except SlackApiError as exc:
        log.warning("could not tell %s that their flag failed (%s)", flag.user_id, exc.response.get("error"))


def handle_flag(deps: SlackDeps, client: WebClient, flag: FlagRequest, *, response_url: str | None = None) -> str:
    """Capture the flagged conversation and tell the flagger how it landed; returns the outcome
    (created, reflagged, repeated or refused) for the metrics."""
    return _handle(deps, client, flag, response_url=response_url)[0]


def _handle(deps: SlackDeps, client: WebClient, flag: FlagRequest, *, response_url: str | None = None,
            retry: bool = False) -> tuple[str, str | None]:
    rt = deps.runtime
    try:
        result = capture(flag, source=deps.source, corpus=rt.corpus, engine=rt.engine, options=deps.options)
    except (CaptureError, AlreadyRejectedError) as exc:
        tell_user(client, user=flag.user_id, text=f":warning: {exc}", channel=flag.channel,
                  thread_ts=flag.thread_ts or flag.ts, response_url=response_url)
        return "refused", None
    repeated = False
    with _reply_lock(rt.engine, result.case.id):
        # One capture of a case at a time from here: whichever of two flags captured at once gets here second finds
        # the other's reply recorded and updates it (with the case as it is now, naming both), never posts another.
        if reply_of(rt.engine, case_id=result.case.id) is None:
            if result.created:
                _post_reply(deps, client, result)
            else:
                _ensure_reply(deps, client, result)  # committed, but the process stopped before it replied
        elif result.created or result.new_flagger:
            current = rt.corpus.find(result.case.id) or result.case
            _refresh_reply(deps, client, replace(result, case=current))
        else:
            repeated = True
    # Nothing to tell on a retry (this flag is what made the case), nor when catch-up also found this very reaction.
    if repeated and not retry and not found_by_catchup(rt.engine, flag):
        tell_user(client, user=flag.user_id, channel=flag.channel, thread_ts=result.thread_ts, response_url=response_url,
                  text=f"You already flagged this: case `{result.case.id}` ({blocks.flaggers_text(result.case)}).")
    outcome = "created" if result.created else "reflagged" if result.new_flagger else "repeated"
    return outcome, result.case.id


_REPLY_STRIPES = [threading.Lock() for _ in range(64)]
_REPLY_LOCK_SPACE = 0x5E71_0000_0000_0000  # PostgreSQL advisory keys of case replies, apart from the other locks


@contextmanager
def _reply_lock(engine: Engine, case_id: str) -> Iterator[None]:
    """Serialise what is posted in a case's thread: in this process (threads) and, on PostgreSQL, across replicas."""
    digest = int.from_bytes(hashlib.sha256(case_id.encode()).digest()[:6], "big")
    with _REPLY_STRIPES[digest % len(_REPLY_STRIPES)], advisory_lock(engine, _REPLY_LOCK_SPACE + digest):
        yield


def _ensure_reply(deps: SlackDeps, client: WebClient, result: CaptureResult) -> None:
    """Adopt the bot's reply already in the thread for this case (posted just before a crash), else post it."""
    case = result.case
    for message in deps.source.thread(case.source.channel or "", result.thread_ts):
        own = (deps.source.bot_id and message.bot_id == deps.source.bot_id) or (
            deps.source.bot_user_id and message.user == deps.source.bot_user_id)
        # The reader gives the reply's content (its blocks), which names the case by id.
        if own and case.id in message.text:
            remember_reply(deps.runtime.engine, case_id=case.id, channel=case.source.channel or "", message_ts=message.ts)
            if result.new_flagger:
                _refresh_reply(deps, client, result)
            return
    _post_reply(deps, client, result)


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

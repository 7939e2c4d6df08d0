"""Posting digests to EVALBOT_CHANNEL: one channel message per run, the full lists and the trend chart in its thread.

`post_digest(runtime, run_id)` posts a recorded run once (a JobClaim `digest`/<run id> keeps two processes from
both posting it) and records the message's ts on the run (`digest_ts`). A 429 is retried after its Retry-After
by the WebClient (bot/slack/client.py). When Slack refuses for good the results stay in the database, the claim
is marked for take-over, and `post_pending_digests()` posts it when evalbot next starts. A run that failed as a
whole (it raised, or every case errored) is one "run failed: <reason>" message. `publish(outcome)` is what the
nightly job and `/eval run` call when a run ends; it never raises.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import timedelta

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.core.clock import utcnow
from bot.core.errors import ConfigError, DigestPostError, EvalbotError, RunNotFoundError
from bot.digest.data import DIGEST_JOB, Digest, load_digest, pending_digest_runs
from bot.evals.records import get_run
from bot.evals.runs import RunOutcome
from bot.runtime import Runtime
from bot.slack.blocks import digest as db
from bot.slack.client import make_web_client
from bot.store.claims import EPOCH, PROCESS, claim, refresh
from bot.store.tables import EvalRun, session_scope

log = logging.getLogger(__name__)

CLAIM_TTL = timedelta(minutes=10)  # a digest claim older than this (posting died half-way) is taken over


def _client_and_channel(runtime: Runtime, client: WebClient | None, channel: str | None) -> tuple[WebClient, str]:
    settings = runtime.settings
    channel = channel or settings.channel
    if channel is None:
        raise ConfigError("EVALBOT_CHANNEL is not set: it should hold the Slack channel id digests go to (C…)")
    if client is None:
        if settings.slack_bot_token is None:
            raise ConfigError("SLACK_BOT_TOKEN is not set: it should hold a bot token starting with xoxb-")
        client = make_web_client(settings)
    return client, channel


def _why(exc: Exception) -> str:
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error") or exc.response.status_code)
    return f"{type(exc).__name__}: {exc}"


def post_digest(runtime: Runtime, run_id: int, *, client: WebClient | None = None, channel: str | None = None) -> str | None:
    """Post run `run_id`'s digest to EVALBOT_CHANNEL (once) and return the message ts.

    Returns the recorded ts when it was posted already, None when another process is posting it right now.
    Raises RunNotFoundError for an unknown run, EvalbotError for a run still running, ConfigError without a token
    or channel, and DigestPostError when Slack refuses for good (the digest is then posted at the next start).
    """
    client, channel = _client_and_channel(runtime, client, channel)
    with session_scope(runtime.engine) as session:
        run = get_run(session, run_id)
        if run is None:
            raise RunNotFoundError(f"there is no run {run_id} (see `evalbot eval report`)")
        if run.digest_ts:
            return run.digest_ts
        if run.status == "running":
            raise EvalbotError(f"run {run_id} is still running: its digest is posted when it ends")
        if not claim(session, job=DIGEST_JOB, slot=str(run_id), holder=PROCESS, take_over_before=utcnow() - CLAIM_TTL):
            log.info("the digest of run %d is being posted by another process", run_id)
            return None
        digest = load_digest(session, run_id, corpus=runtime.corpus)
    message = db.digest_failure_message(digest) if digest.failure else db.digest_message(digest)
    try:
        response = client.chat_postMessage(channel=channel, text=message.text, blocks=message.blocks,
                                           unfurl_links=False, unfurl_media=False)
    except (SlackApiError, OSError) as exc:
        with session_scope(runtime.engine) as session:  # leave it for the next start to take over
            refresh(session, job=DIGEST_JOB, slot=str(run_id), holder=PROCESS, at=EPOCH)
        raise DigestPostError(f"posting the digest of run {run_id} to {channel} failed ({_why(exc)}); the results are "
                              "saved and the digest will be posted when evalbot next starts") from exc
    ts = str(response["ts"])
    with session_scope(runtime.engine) as session:
        row = session.get(EvalRun, run_id)
        if row is not None:
            row.digest_ts = ts
            session.add(row)
    if not digest.failure:
        post_thread(client, channel, ts, digest)
    log.info("digest of run %d posted to %s (ts %s)", run_id, channel, ts, extra={"run_id": run_id})
    return ts


def post_thread(client: WebClient, channel: str, thread_ts: str, digest: Digest) -> None:
    """The full lists that were cut, then the trend chart, in the digest's thread (best effort: logged on failure)."""
    for message in db.thread_messages(digest):
        try:
            client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=message.text, blocks=message.blocks,
                                    unfurl_links=False, unfurl_media=False)
        except (SlackApiError, OSError) as exc:
            log.warning("posting the full lists of run %d failed (%s)", digest.run_id, _why(exc))
            break
    if not digest.trend:
        return
    try:
        from bot.digest.chart import trend_png  # matplotlib loads only when a chart is drawn

        png = trend_png(digest.trend, title=db.chart_title(digest))
        client.files_upload_v2(channel=channel, thread_ts=thread_ts, file=png, filename=f"evalbot-run-{digest.run_id}-trend.png",
                               title=db.chart_title(digest), alt_txt="Pass rate and estimated cost per run")
    except (SlackApiError, OSError) as exc:
        log.warning("uploading the trend chart of run %d failed (%s)", digest.run_id, _why(exc))
    except Exception:  # noqa: BLE001 - a chart is a nicety: drawing it must not lose the digest
        log.exception("drawing the trend chart of run %d failed", digest.run_id)


def post_run_failed(runtime: Runtime, reason: str, *, trigger: str, client: WebClient | None = None,
                    channel: str | None = None) -> str:
    """Post 'run failed: <reason>' for a run that stopped before it was recorded; returns the message ts."""
    client, channel = _client_and_channel(runtime, client, channel)
    message = db.failure_message(reason, when=utcnow(), trigger=trigger)
    try:
        response = client.chat_postMessage(channel=channel, text=message.text, blocks=message.blocks)
    except (SlackApiError, OSError) as exc:
        raise DigestPostError(f"posting 'run failed' to {channel} failed ({_why(exc)})") from exc
    return str(response["ts"])


def publish(runtime: Runtime, outcome: RunOutcome, *, client: WebClient | None = None) -> str | None:
    """Post what a run came to: its digest, or 'run failed'. Logs instead of raising; returns the message ts."""
    try:
        if outcome.run_id is not None:
            return post_digest(runtime, outcome.run_id, client=client)
        return post_run_failed(runtime, outcome.error or "unknown error", trigger=outcome.trigger, client=client)
    except EvalbotError as exc:
        log.error("%s", exc)
    except Exception:  # noqa: BLE001 - called at the end of a background run: nothing above to tell
        log.exception("posting the outcome of a %s run failed", outcome.trigger)
    return None


def post_pending_digests(runtime: Runtime, *, client: WebClient | None = None, exclude: Collection[int] = ()) -> list[int]:
    """Post every digest still owed (see `pending_digest_runs`) but those of `exclude` (runs about to be resumed),
    oldest first; the run ids posted.

    Stops at the first refusal: Slack would most likely refuse the next ones too; they stay pending.
    """
    with session_scope(runtime.engine) as session:
        pending = [run_id for run_id in pending_digest_runs(session) if run_id not in exclude]
    posted: list[int] = []
    for run_id in pending:
        try:
            if post_digest(runtime, run_id, client=client) is not None:
                posted.append(run_id)
        except DigestPostError as exc:
            log.error("%s", exc)
            break
    if posted:
        log.info("posted %d pending digest(s): runs %s", len(posted), ", ".join(map(str, posted)))
    return posted

"""Sending follow-ups from the outbox to their flag threads: paced, retried on 429, never dropped, sent once.

`FollowUpSender.run_once()` records the follow-ups of runs that owe them (bot/digest/outbox.py) and sends what is
due. One process sends at a time (the `followup-sender` claim), so Slack's ~1 message/s per channel holds across
replicas: after each post to a channel the next one waits `interval`. A 429 is not retried by the WebClient here:
the sender holds that channel back for its Retry-After and puts the row back with `not_before`, so nothing is lost
and other channels go on. A row claimed by a process that died is first looked for in its thread (the message's
metadata carries the outbox key) before it is posted again. The clock and sleep are injectable (`Clock`), so
tests pace hundreds of messages without waiting.

`FollowUpService` runs the sender in a background thread every POLL seconds (started by `evalbot serve`).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler

from bot.core.clock import utcnow
from bot.digest import outbox
from bot.digest.followups import FollowUp, to_mention
from bot.runtime import Runtime
from bot.slack.blocks import followups as fb
from bot.store.claims import PROCESS
from bot.store.tables import FollowUpRow, session_scope

log = logging.getLogger(__name__)

INTERVAL = 1.0  # seconds between two posts to one channel (Slack: ~1 message/s per channel)
POLL = 3.0  # seconds between two looks at the outbox
RETRY_LATER = timedelta(seconds=30)  # after a dropped connection or a server error
MAX_ATTEMPTS = 8  # then the follow-up is marked failed (429s do not count: they only wait)
BATCH = 100


class Clock(Protocol):
    """Time as the sender sees it: a monotonic clock for pacing, the wall clock for `not_before`, and sleep."""

    def monotonic(self) -> float: ...

    def now(self) -> datetime: ...

    def sleep(self, seconds: float) -> None: ...


class RealClock:
    """The process's clocks."""

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return utcnow()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@dataclass(frozen=True)
class Sent:
    """One follow-up posted: where, its ts, and when (the sender's monotonic clock)."""

    key: str
    channel: str
    thread_ts: str
    ts: str
    at: float


@dataclass
class _Pacer:
    interval: float
    ready_at: dict[str, float] = field(default_factory=dict)

    def wait(self, clock: Clock, channel: str) -> None:
        delay = self.ready_at.get(channel, 0.0) - clock.monotonic()
        if delay > 0:
            clock.sleep(delay)

    def hold(self, clock: Clock, channel: str, seconds: float) -> None:
        self.ready_at[channel] = max(self.ready_at.get(channel, 0.0), clock.monotonic() + seconds)


def sending_client(client: WebClient) -> WebClient:
    """A client like `client` that lets a 429 through (the sender waits itself) and retries dropped connections."""
    return WebClient(token=client.token, base_url=client.base_url, timeout=client.timeout,
                     retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=2)])


def retry_after(exc: SlackApiError) -> float:
    """Seconds a 429 asks to wait (1 when it does not say)."""
    headers = {k.lower(): v for k, v in (exc.response.headers or {}).items()}
    value = headers.get("retry-after")
    if isinstance(value, list):
        value = value[0] if value else None
    try:
        return max(float(value), 0.0) if value is not None else 1.0
    except (TypeError, ValueError):
        return 1.0


class FollowUpSender:
    """Records owed run follow-ups and posts due ones, paced per channel (see the module docstring)."""

    def __init__(self, runtime: Runtime, client: WebClient, *, clock: Clock | None = None, interval: float = INTERVAL,
                 holder: str = PROCESS):
        self.rt = runtime
        self.client = sending_client(client)
        self.clock: Clock = clock or RealClock()
        self.pacer = _Pacer(interval)
        self.holder = holder
        self.sent: list[Sent] = []

    def record_owed(self) -> int:
        """Record the follow-ups of every run that owes them; how many were added."""
        added = 0
        with session_scope(self.rt.engine) as session:
            owed = outbox.skip_backlog(session, outbox.owed_runs(session, now=self.clock.now()), holder=self.holder)
        for run_id in owed:
            with session_scope(self.rt.engine) as session:
                added += outbox.record_run(session, self.rt.corpus, run_id, holder=self.holder) or 0
        return added

    def run_once(self, *, until_empty: bool = False) -> list[Sent]:
        """Record what runs owe, then send what is due (with `until_empty`, wait for rows held back by a 429)."""
        self.record_owed()
        return self.send_due(until_empty=until_empty)

    def send_due(self, *, until_empty: bool = False) -> list[Sent]:
        """Post every due follow-up, oldest first; returns those posted by this call."""
        start = len(self.sent)
        while True:
            with session_scope(self.rt.engine) as session:
                if not outbox.claim_sender(session, holder=self.holder, now=self.clock.now()):
                    log.debug("another process is sending follow-ups")
                    break
                rows = outbox.due(session, now=self.clock.now(), limit=BATCH)
                upcoming = outbox.next_due(session) if not rows else None
            if rows:
                for row in rows:
                    self._send(row)
                continue
            if not until_empty or upcoming is None:
                break
            self.clock.sleep(max((upcoming - self.clock.now()).total_seconds(), 0.05))
        return self.sent[start:]

    def _send(self, row: FollowUpRow) -> None:
        assert row.id is not None
        self.pacer.wait(self.clock, row.channel)
        crashed = row.claimed_at is not None  # claimed by a process that died: it may have posted already
        with session_scope(self.rt.engine) as session:
            if not outbox.claim_row(session, row.id, holder=self.holder, now=self.clock.now()):
                return
            quiet = outbox.muted(session)
        followup = FollowUp.from_json(row.payload)
        who = to_mention(followup, quiet)
        if not who:
            self._finish(row, "skipped", error="everyone who flagged it muted follow-ups")
            return
        if crashed:
            posted = self._already_posted(row)
            if posted:
                self._finish(row, "sent", ts=posted)
                return
        message = fb.followup_message(followup, who)
        try:
            response = self.client.chat_postMessage(
                channel=row.channel, thread_ts=row.thread_ts, text=message.text, blocks=message.blocks,
                metadata=fb.metadata(row.key), unfurl_links=False, unfurl_media=False)
        except SlackApiError as exc:
            self._refused(row, exc)
            return
        except OSError as exc:
            self._later(row, f"{type(exc).__name__}: {exc}", RETRY_LATER.total_seconds())
            return
        self.pacer.hold(self.clock, row.channel, self.pacer.interval)
        ts = str(response["ts"])
        self._finish(row, "sent", ts=ts)
        self.sent.append(Sent(row.key, row.channel, row.thread_ts, ts, self.clock.monotonic()))

    def _refused(self, row: FollowUpRow, exc: SlackApiError) -> None:
        if exc.response.status_code == 429:
            wait = retry_after(exc)
            self.pacer.hold(self.clock, row.channel, wait)
            self._later(row, "ratelimited", wait, counts=False)
            return
        error = str(exc.response.get("error") or exc.response.status_code)
        if exc.response.status_code >= 500 and row.attempts + 1 < MAX_ATTEMPTS:
            self._later(row, error, RETRY_LATER.total_seconds())
            return
        log.warning("Slack refused the %s follow-up of %s in %s (%s)", row.kind, row.case_id, row.channel, error)
        self._finish(row, "failed", error=error)

    def _later(self, row: FollowUpRow, error: str, seconds: float, *, counts: bool = True) -> None:
        assert row.id is not None
        if counts and row.attempts + 1 >= MAX_ATTEMPTS:
            self._finish(row, "failed", error=error)
            return
        with session_scope(self.rt.engine) as session:
            outbox.put_back(session, row.id, not_before=self.clock.now() + timedelta(seconds=seconds), error=error,
                            refund=not counts)

    def _finish(self, row: FollowUpRow, status: str, *, ts: str | None = None, error: str | None = None) -> None:
        assert row.id is not None
        with session_scope(self.rt.engine) as session:
            outbox.finish(session, row.id, status=status, now=self.clock.now(), ts=ts, error=error)

    def _already_posted(self, row: FollowUpRow) -> str | None:
        """The ts of this follow-up in its thread, if a process that died had posted it."""
        cursor = None
        try:
            while True:
                page = self.client.conversations_replies(channel=row.channel, ts=row.thread_ts, cursor=cursor,
                                                         include_all_metadata=True, limit=200)
                for message in page.get("messages") or []:
                    meta = message.get("metadata") or {}
                    if meta.get("event_type") == fb.METADATA_EVENT and (meta.get("event_payload") or {}).get("key") == row.key:
                        return str(message["ts"])
                cursor = (page.get("response_metadata") or {}).get("next_cursor")
                if not cursor:
                    return None
        except (SlackApiError, OSError) as exc:
            log.info("could not check the thread of %s for an earlier follow-up (%s)", row.case_id, exc)
            return None


class FollowUpService:
    """The sender in a background thread: every POLL seconds, or at once after `kick()`."""

    def __init__(self, sender: FollowUpSender, *, poll: float = POLL):
        self.sender = sender
        self.poll = poll
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="evalbot-followups", daemon=True)

    def start(self) -> FollowUpService:
        self._thread.start()
        return self

    def kick(self) -> None:
        """Look at the outbox now."""
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.sender.run_once()
            except Exception:  # noqa: BLE001 - the outbox keeps them: the next round tries again
                log.exception("sending follow-ups failed")
            self._wake.wait(self.poll)
            self._wake.clear()

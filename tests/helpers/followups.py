"""Builders for the follow-up tests: a virtual clock for the sender, flagging a reply through the fake Slack, and
reading the bot's follow-ups in a thread."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlmodel import select

from bot.core.clock import utcnow
from bot.corpus.ids import slack_case_id
from bot.runtime import Runtime
from bot.slack.blocks.followups import METADATA_EVENT
from bot.store.tables import Flag, session_scope
from tests.fakes.slack import BOT_ID, FakeSlack
from tests.helpers.evalruns import wait_until
from tests.helpers.slackbot import ASSISTANT_BOT, CHANNEL


class FakeClock:
    """Virtual time: `sleep` advances it at once and records how long it was asked to wait.

    `on_sleep(clock)` runs after every sleep (a test injects 429s there).
    """

    def __init__(self, on_sleep: Callable[[FakeClock], None] | None = None):
        self.elapsed = 0.0
        self.start = utcnow()
        self.sleeps: list[float] = []
        self.on_sleep = on_sleep

    def monotonic(self) -> float:
        return self.elapsed

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.elapsed)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.elapsed += max(seconds, 0.0)
        if self.on_sleep is not None:
            self.on_sleep(self)


def flag_reply(slack: FakeSlack, rt: Runtime, *, question: str, reply: str, flaggers: list[str]) -> tuple[str, str]:
    """Post a question and the assistant's reply in a new thread and flag the reply with a reaction by each of
    `flaggers` (in order); returns (case id, thread ts) once the capture and every flag are recorded."""
    parent = slack.post(CHANNEL, question, user=flaggers[0])
    reply_ts = slack.post(CHANNEL, reply, bot_id=ASSISTANT_BOT, thread_ts=parent)
    case_id = slack_case_id(CHANNEL, reply_ts)
    for count, user in enumerate(flaggers, start=1):
        slack.send_event({"type": "reaction_added", "user": user, "reaction": "triangular_flag_on_post",
                          "item": {"type": "message", "channel": CHANNEL, "ts": reply_ts}})

        def recorded(expected: int = count) -> bool:
            with session_scope(rt.engine) as session:
                return len(list(session.exec(select(Flag).where(Flag.case_id == case_id)))) >= expected

        wait_until(recorded, what=f"flag {count} of {case_id}")
    wait_until(lambda: rt.corpus.find(case_id) is not None, what=f"capture of {case_id}")
    return case_id, parent


def followups_in(slack: FakeSlack, thread_ts: str, channel: str = CHANNEL) -> list[dict]:
    """The bot's follow-ups in a thread (messages carrying the follow-up metadata), oldest first."""
    return [m for m in slack.messages_in(channel, thread_ts=thread_ts)
            if m.get("bot_id") == BOT_ID and (m.get("metadata") or {}).get("event_type") == METADATA_EVENT]

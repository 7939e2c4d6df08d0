"""Catch-up: flags made while the bot was away are found in the channel's history and threads, written to the
inbox once, bounded by the window, and read at Slack's pace (a 429 is waited out)."""

from __future__ import annotations

import time

import pytest
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from bot.capture import inbox
from bot.capture.candidate import FlagRequest
from bot.capture.catchup import checkpoint
from bot.corpus.files import Corpus
from bot.slack.flows import catchup
from bot.store.tables import Rejection, get_engine, migrate, session_scope
from tests.fakes.slack import BOT_ID, BOT_USER_ID, FakeSlack
from tests.helpers.slackbot import ASSISTANT_BOT, CHANNEL, FLAGGER, SECOND, seed

pytestmark = pytest.mark.migrated_db  # the database starts migrated: each test's first use of it migrates in-process

FLAG = "triangular_flag_on_post"


@pytest.fixture
def slack():
    with FakeSlack() as fake:
        seed(fake)
        yield fake


@pytest.fixture
def engine(db_url):
    engine = get_engine(db_url)
    migrate(engine)
    return engine


@pytest.fixture
def client(slack):
    return WebClient(token="xoxb-test", base_url=slack.api_url, retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=2)])


def scope(**extra) -> catchup.CatchupScope:
    return catchup.CatchupScope(channel=CHANNEL, flag_emoji=frozenset({FLAG}), bot_user_id=BOT_USER_ID, bot_id=BOT_ID, **extra)


def run(client, engine, tmp_path, **options) -> catchup.CatchupResult:
    return catchup.catch_up(client, engine=engine, corpus=Corpus(tmp_path / "corpus"), scope=scope(), **options)


def test_flags_in_history_and_threads_are_written_once(slack, client, engine, tmp_path):
    parent = slack.post(CHANNEL, "How long do I have to return this?", user=FLAGGER)
    reply = slack.post(CHANNEL, "You have 90 days.", bot_id=ASSISTANT_BOT, thread_ts=parent)
    slack.add_reaction(CHANNEL, reply, FLAG, FLAGGER)  # a reply flagged while the bot was away
    mention = slack.post(CHANNEL, f"<@{BOT_USER_ID}> wrong window", user=SECOND, thread_ts=parent)
    top = slack.post(CHANNEL, "A question", user=FLAGGER)
    slack.add_reaction(CHANNEL, top, FLAG, SECOND)
    slack.add_reaction(CHANNEL, top, "thumbsup", FLAGGER)  # not a flag emoji
    answered_parent = slack.post(CHANNEL, "Another", user=FLAGGER)
    slack.post(CHANNEL, f"<@{BOT_USER_ID}> seen live", user=FLAGGER, thread_ts=answered_parent)
    slack.post(CHANNEL, "Captured case abcd1234", user=BOT_USER_ID, bot_id=BOT_ID, thread_ts=answered_parent)

    first = run(client, engine, tmp_path)
    assert sorted(first.keys) == sorted([f"catchup:{CHANNEL}:{reply}:{FLAGGER}", f"catchup:{CHANNEL}:{mention}:{SECOND}",
                                         f"catchup:{CHANNEL}:{top}:{SECOND}"])
    [held] = inbox.claim(engine, owner="t:1", limit=1, keys=[f"catchup:{CHANNEL}:{mention}:{SECOND}"])
    assert held.flag == FlagRequest(channel=CHANNEL, user_id=SECOND, trigger="mention", ts=mention, thread_ts=parent,
                                    note="wrong window")
    assert run(client, engine, tmp_path).keys == []  # again (a reconnect, a second replica): nothing new
    assert checkpoint(engine, CHANNEL) is not None


def test_rejected_messages_and_messages_past_the_window_are_left(slack, client, engine, tmp_path):
    from bot.corpus.ids import slack_case_id

    now = time.time()
    old = slack.post(CHANNEL, "From last week", user=FLAGGER, ts=f"{now - 7 * 86400:.6f}")
    slack.add_reaction(CHANNEL, old, FLAG, FLAGGER)
    rejected = slack.post(CHANNEL, "Rejected already", user=FLAGGER)
    slack.add_reaction(CHANNEL, rejected, FLAG, FLAGGER)
    with session_scope(engine) as session:
        session.add(Rejection(case_id=slack_case_id(CHANNEL, rejected), title="t", rejected_by="U0LEAD001", reason="dup"))
    result = run(client, engine, tmp_path)
    assert result.keys == [] and result.messages == 1  # the week-old message is not even read


def test_a_rate_limited_history_call_is_waited_out(slack, client, engine, tmp_path):
    top = slack.post(CHANNEL, "A question", user=FLAGGER)
    slack.add_reaction(CHANNEL, top, FLAG, FLAGGER)
    slack.rate_limit_next("conversations.history", times=1, retry_after=1)
    started = time.monotonic()
    assert run(client, engine, tmp_path).keys == [f"catchup:{CHANNEL}:{top}:{FLAGGER}"]
    assert time.monotonic() - started >= 1.0  # Retry-After was respected
    assert len(slack.calls_to("conversations.history")) == 2


def test_calls_past_the_burst_are_paced(slack, client, engine, tmp_path, monkeypatch):
    monkeypatch.setattr(catchup, "BURST", 1)
    for i in range(3):
        parent = slack.post(CHANNEL, f"Question {i}", user=FLAGGER)
        slack.post(CHANNEL, "Answer", bot_id=ASSISTANT_BOT, thread_ts=parent)
    waits: list[float] = []
    result = run(client, engine, tmp_path, sleep=waits.append, pace=5.0)
    assert result.calls == 4 and len(waits) == 3 and all(w > 4 for w in waits)

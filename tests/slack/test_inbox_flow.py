"""The inbox in the Slack app: written before the ack, one row per event, settled after the reply; a failing flag
is parked and its flagger told; a retry after a crash between the commit and the reply does not reply twice."""

from __future__ import annotations

import json
import time

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from bot.capture import inbox
from bot.cli import app as cli
from bot.corpus.ids import slack_case_id
from bot.store.tables import CaptureReply, PendingFlag, session_scope
from tests.fakes.slack import BOT_ID, FakeSlack
from tests.helpers.slackbot import ASSISTANT_BOT, CHANNEL, FLAGGER, configure, running_bot, seed

pytestmark = pytest.mark.migrated_db  # the database starts migrated: each test's first use of it migrates in-process


@pytest.fixture
def slack():
    with FakeSlack() as fake:
        seed(fake)
        yield fake


@pytest.fixture
def bot(slack, db_url, monkeypatch):
    configure(monkeypatch, slack)
    with running_bot(slack) as running:
        yield running


def flagged(slack: FakeSlack) -> tuple[str, str]:
    parent = slack.post(CHANNEL, "How long do I have to return this?", user=FLAGGER)
    return parent, slack.post(CHANNEL, "You have 90 days.", bot_id=ASSISTANT_BOT, thread_ts=parent)


def react(slack: FakeSlack, ts: str, event_id: str, retry_attempt: int = 0):
    event = {"type": "reaction_added", "user": FLAGGER, "reaction": "triangular_flag_on_post",
             "item": {"type": "message", "channel": CHANNEL, "ts": ts}, "event_ts": "1763800000.000001"}
    return slack.send_event(event, event_id=event_id, retry_attempt=retry_attempt)


def rows(bot) -> list[PendingFlag]:
    with session_scope(bot.runtime.engine) as session:
        return list(session.exec(select(PendingFlag)))


def eventually(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def own_replies(slack: FakeSlack, parent: str) -> list[dict]:
    return [m for m in slack.messages_in(CHANNEL, thread_ts=parent) if m.get("bot_id") == BOT_ID]


def test_a_flag_is_in_the_inbox_when_acked_and_done_after_the_reply(bot, slack):
    parent, reply = flagged(slack)
    react(slack, reply, "EvInbox1")
    # The ack came back after the row was written (the listener middleware runs before Bolt acks).
    [row] = rows(bot)
    assert (row.key, row.channel, row.ts, row.user_id) == ("event:EvInbox1", CHANNEL, reply, FLAGGER)
    slack.wait_for_call("chat.postMessage", lambda c: c.params.get("thread_ts") == parent)
    react(slack, reply, "EvInbox1", retry_attempt=1)  # Slack's redelivery: the same row, nothing new
    assert eventually(lambda: rows(bot)[0].status == "done")
    [row] = rows(bot)
    assert (row.status, row.case_id, row.attempts) == ("done", slack_case_id(CHANNEL, reply), 0)
    assert len(own_replies(slack, parent)) == 1


def test_a_flag_that_keeps_failing_is_parked_and_its_flagger_told(bot, slack, monkeypatch):
    monkeypatch.setattr(inbox, "MAX_ATTEMPTS", 1)
    parent, reply = flagged(slack)
    slack.fail_next("chat.postMessage", "internal_error", times=3)  # the reply (and its retries) fail
    react(slack, reply, "EvFail1")
    ephemeral = slack.wait_for_call("chat.postEphemeral", lambda c: "could not capture" in c.params.get("text", ""))
    assert ephemeral.params["user"] == FLAGGER and "internal_error" in ephemeral.params["text"]
    [row] = inbox.parked(bot.runtime.engine)
    assert row.key == "event:EvFail1" and "internal_error" in row.error
    # `/eval status` lists it, and so does `evalbot doctor` (which exits 1 for it).
    slack.send_slash_command({"command": "/eval", "text": "status", "user_id": FLAGGER, "channel_id": CHANNEL})
    status = slack.wait_for_call("response_url", lambda c: "could not be captured" in json.dumps(c.params)).params
    assert f"reaction by <@{FLAGGER}>" in json.dumps(status["blocks"]) and "internal_error" in status["text"]
    result = CliRunner().invoke(cli, ["doctor"])
    assert "FAIL inbox: 1 flag(s) failed every attempt" in result.output and "internal_error" in result.output
    assert result.exit_code == 1


def test_a_retry_after_a_crash_between_commit_and_reply_adopts_the_reply(bot, slack):
    parent, reply = flagged(slack)
    react(slack, reply, "EvOnce1")
    slack.wait_for_call("chat.postMessage", lambda c: c.params.get("thread_ts") == parent)
    case_id = slack_case_id(CHANNEL, reply)
    assert eventually(lambda: [r.status for r in rows(bot)] == ["done"])
    with session_scope(bot.runtime.engine) as session:  # as if the process died right after chat.postMessage
        session.delete(session.get(CaptureReply, case_id))
    before = len(slack.calls_to("chat.postMessage"))
    react(slack, reply, "EvOnce2")  # the same flag captured again (a retried inbox row would do the same)
    assert eventually(lambda: [r.status for r in rows(bot)] == ["done", "done"])
    assert len(slack.calls_to("chat.postMessage")) == before and len(own_replies(slack, parent)) == 1
    with session_scope(bot.runtime.engine) as session:
        assert session.get(CaptureReply, case_id).message_ts == own_replies(slack, parent)[0]["ts"]

"""A flag's database writes, from the ack to the settled inbox row, each commit as they complete (issue 12).

The ack waits for its inbox insert; on SQLite that insert waits for the one writer lock, which a transaction
holds from its first write to its commit. A write that left its transaction open while Python ran on (the ORM's
flush and commit, a git commit, a Slack call) made the ack's tail slow: that is what these tests catch, through
the real app over Socket Mode against the fake Slack, on SQLite and PostgreSQL. No timing is measured.
"""

from __future__ import annotations

from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import pytest
from psycopg.pq import TransactionStatus
from sqlalchemy import event, text
from sqlalchemy.engine import Engine

from bot.corpus.ids import slack_case_id
from bot.store.tables import ACK_CONNECTIONS, ack_engine
from tests.fakes.slack import FakeSlack, event_callback
from tests.helpers.slackbot import ASSISTANT_BOT, CHANNEL, FLAGGER, SECOND, configure, running_bot, seed

pytestmark = pytest.mark.migrated_db  # the database starts migrated: each test's first use of it migrates in-process

WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


def open_transaction(dbapi_connection: Any) -> bool:
    """Whether the driver's connection is inside a transaction (SQLite: holding the writer lock after a write)."""
    if hasattr(dbapi_connection, "in_transaction"):  # sqlite3
        return bool(dbapi_connection.in_transaction)
    return bool(dbapi_connection.info.transaction_status != TransactionStatus.IDLE)  # psycopg


class Watch:
    """Every write statement on an engine, and whether it left a transaction open behind it."""

    def __init__(self) -> None:
        self.writes: list[tuple[str, bool]] = []  # ("INSERT pending_flags", left a transaction open)
        self.connects = 0

    def attach(self, engine: Engine) -> None:
        event.listen(engine, "after_cursor_execute", self._executed)
        event.listen(engine, "connect", self._connected)

    def _executed(self, _conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        words = statement.split()
        if words[0].upper() in WRITES:
            table = words[1] if words[0].upper() == "UPDATE" else words[2]  # INSERT INTO t, DELETE FROM t
            self.writes.append((f"{words[0].upper()} {table}", open_transaction(cursor.connection)))

    def _connected(self, *_args: Any) -> None:
        self.connects += 1

    def left_open(self) -> list[str]:
        return [statement for statement, still_open in self.writes if still_open]


@pytest.fixture
def slack():
    with FakeSlack() as fake:
        seed(fake)
        yield fake


@pytest.fixture
def bot(slack, db_url, monkeypatch):
    configure(monkeypatch, slack)
    with running_bot(slack) as running:  # no worker process: the flags are captured on Bolt's threads here
        yield running


def flag(slack: FakeSlack, *, user: str = FLAGGER) -> tuple[str, str]:
    parent = slack.post(CHANNEL, "How long do I have to return my tent?", user=FLAGGER)
    reply = slack.post(CHANNEL, "You have 90 days.", bot_id=ASSISTANT_BOT, thread_ts=parent)
    event_ = {"type": "reaction_added", "user": user, "reaction": "triangular_flag_on_post",
              "item": {"type": "message", "channel": CHANNEL, "ts": reply}}
    slack.send_event(event_)
    return parent, reply


def test_every_write_of_a_capture_has_committed_when_it_returns(bot, slack):
    watch = Watch()
    watch.attach(bot.runtime.engine)
    watch.attach(ack_engine(bot.runtime.engine))
    parent, reply = flag(slack)
    slack.wait_for_call("chat.postMessage", lambda c: c.params.get("thread_ts") == parent)
    event_ = {"type": "reaction_added", "user": SECOND, "reaction": "triangular_flag_on_post",
              "item": {"type": "message", "channel": CHANNEL, "ts": reply}}
    slack.send_event(event_)  # a second flagger: the flag row, the index row and the reply are written again
    slack.wait_for_call("chat.update", lambda c: c.params.get("ts") is not None)
    assert bot.runtime.corpus.find(slack_case_id(CHANNEL, reply)) is not None
    written = {statement for statement, _ in watch.writes}
    # The inbox row (written, leased, settled), the flag, the index row and the reply were all watched ...
    assert {"INSERT pending_flags", "UPDATE pending_flags", "INSERT flags", "INSERT case_index",
            "INSERT capture_replies"} <= written, written
    # ... and not one of them kept a transaction (SQLite's writer lock) open after it returned.
    assert watch.left_open() == []


def test_the_ack_writes_one_statement_on_a_connection_opened_before_the_first_envelope(bot, slack):
    ack = ack_engine(bot.runtime.engine)
    assert ack.pool.checkedin() == ACK_CONNECTIONS  # warmed at start
    statements: list[str] = []
    event.listen(ack, "before_cursor_execute", lambda _c, _cur, statement, *_a: statements.append(statement))
    watch = Watch()
    watch.attach(ack)
    parent, _reply = flag(slack)
    slack.wait_for_call("chat.postMessage", lambda c: c.params.get("thread_ts") == parent)
    # No pragma set and reset around it, no BEGIN/COMMIT, no new connection: the insert alone.
    assert [s.split()[:3] for s in statements] == [["INSERT", "INTO", "pending_flags"]]
    assert watch.connects == 0


def test_a_flag_the_inbox_cannot_take_is_not_acked_and_its_redelivery_is_captured(bot, slack):
    parent = slack.post(CHANNEL, "Can I return a used tent?", user=FLAGGER)
    reply = slack.post(CHANNEL, "No.", bot_id=ASSISTANT_BOT, thread_ts=parent)
    payload = event_callback({"type": "reaction_added", "user": FLAGGER, "reaction": "triangular_flag_on_post",
                              "item": {"type": "message", "channel": CHANNEL, "ts": reply}}, event_id="EvAway1")
    with bot.runtime.engine.begin() as connection:  # the insert fails for real: its table is not there
        connection.execute(text("ALTER TABLE pending_flags RENAME TO pending_flags_away"))
    try:
        with pytest.raises(FutureTimeout):
            slack.send_envelope_nowait("events_api", payload).result(timeout=3)
    finally:
        with bot.runtime.engine.begin() as connection:
            connection.execute(text("ALTER TABLE pending_flags_away RENAME TO pending_flags"))
    assert slack.calls_to("chat.postMessage") == []
    slack.send_envelope("events_api", payload, retry_attempt=1, retry_reason="timeout")  # Slack sends it again
    slack.wait_for_call("chat.postMessage", lambda c: c.params.get("thread_ts") == parent)
    assert bot.runtime.corpus.find(slack_case_id(CHANNEL, reply)) is not None

"""Listeners called directly, as the module-level functions `register(app)` binds: a recording `ack`, a real
WebClient on the fake Slack and the app's deps, with no Bolt app in between."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from slack_bolt import BoltContext
from slack_sdk import WebClient
from sqlmodel import select

from bot.runtime import open_runtime
from bot.slack.blocks import modals
from bot.slack.blocks.capture import FLAG_NOTE_VIEW
from bot.slack.deps import SlackDeps, build_deps
from bot.slack.flows.triage_ops import TriageOps
from bot.slack.listeners import commands, events, shortcuts, views
from bot.store.tables import PendingFlag, session_scope
from tests.fakes.slack import FakeSlack
from tests.helpers.slackbot import CHANNEL, FLAGGER, OTHER_CHANNEL, configure, seed


@dataclass
class RecordingAck:
    """Bolt's `ack` as a listener sees it: called with the answer's keyword arguments, recorded in order."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    on_call: Any = None  # run at the moment of the ack (to look at what was already written)

    def __call__(self, **answer: Any) -> None:
        if self.on_call is not None:
            self.on_call()
        self.calls.append(answer)


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        seed(fake)
        yield fake


@pytest.fixture
def client(slack: FakeSlack) -> WebClient:
    return WebClient(base_url=slack.api_url, token="xoxb-test-token")


@pytest.fixture
def handed_over() -> list[str]:
    """The inbox keys the listeners hand over to be captured (`deps.submit_flag`)."""
    return []


@pytest.fixture
def deps(slack: FakeSlack, client: WebClient, handed_over: list[str], monkeypatch: pytest.MonkeyPatch) -> SlackDeps:
    configure(monkeypatch, slack)
    built = build_deps(open_runtime(), client, client.auth_test().data)
    built.submit_flag = handed_over.append
    return built


def test_shortcut_in_the_channel_acks_then_opens_the_note_modal(slack, client, deps):
    ts = slack.post(CHANNEL, "You have 90 days.", user=FLAGGER)
    ack = RecordingAck()
    shortcut = {"type": "message_action", "callback_id": shortcuts.CALLBACK_ID, "trigger_id": "1.2.abc",
                "user": {"id": FLAGGER}, "channel": {"id": CHANNEL}, "message_ts": ts}

    shortcuts.on_shortcut(ack, shortcut, client, deps=deps)

    assert ack.calls == [{}]
    opened = slack.calls_to("views.open")
    assert [c.params["trigger_id"] for c in opened] == ["1.2.abc"]
    view = next(iter(slack.views.values()))
    assert (view["callback_id"], view["private_metadata"]) == (FLAG_NOTE_VIEW, f"{CHANNEL}|{ts}")


def test_shortcut_elsewhere_answers_through_response_url_and_opens_nothing(slack, client, deps):
    ack = RecordingAck()
    shortcut = {"type": "message_action", "trigger_id": "1.2.abc", "user": {"id": FLAGGER},
                "channel": {"id": OTHER_CHANNEL}, "message_ts": "1763700000.000100",
                "response_url": f"{slack.base_url}/response/elsewhere"}

    shortcuts.on_shortcut(ack, shortcut, client, deps=deps)

    assert ack.calls == [{}]
    answer = slack.wait_for_call("response_url")
    assert answer.params["response_type"] == "ephemeral"
    assert f"<#{CHANNEL}>" in answer.params["text"]
    assert slack.calls_to("views.open") == []


def test_note_submission_is_in_the_inbox_when_acked_and_handed_over_after(deps, handed_over):
    view = {"id": "V0NOTE01", "private_metadata": f"{CHANNEL}|1763700000.000100",
            "state": {"values": {"note": {"note": {"value": "  wrong window  "}}}}}
    body = {"type": "view_submission", "user": {"id": FLAGGER}, "view": view}
    seen_at_ack: list[tuple[list[str], list[str]]] = []

    def look() -> None:
        with session_scope(deps.runtime.engine) as session:
            keys = [row.key for row in session.exec(select(PendingFlag)).all()]
        seen_at_ack.append((keys, list(handed_over)))

    shortcuts.enqueue_note(RecordingAck(on_call=look), body, deps=deps)

    assert seen_at_ack == [(["view:V0NOTE01"], [])]  # written before the ack, handed over after it
    assert handed_over == ["view:V0NOTE01"]


def test_mention_outside_the_channel_is_told_where_flags_are_taken(slack, client, deps, handed_over):
    event = {"type": "app_mention", "user": FLAGGER, "channel": OTHER_CHANNEL, "ts": "1763700000.000200",
             "text": "<@UEVALBOT> this is wrong"}

    events.on_mention(event, BoltContext(), client, deps=deps)  # the middleware wrote nothing: no flag

    [ephemeral] = slack.ephemerals
    assert (ephemeral["channel"], ephemeral["user"]) == (OTHER_CHANNEL, FLAGGER)
    assert f"<#{CHANNEL}>" in ephemeral["text"]
    assert handed_over == []


@pytest.mark.parametrize(("written", "expected"), [("event:Ev01", ["event:Ev01"]), ("", [])])
def test_mention_hands_over_only_a_newly_written_flag(slack, client, deps, handed_over, written, expected):
    context = BoltContext({events.INBOX_KEY: written})  # "" is a redelivery: already in the inbox
    event = {"type": "app_mention", "user": FLAGGER, "channel": CHANNEL, "ts": "1763700000.000300", "text": "hm"}

    events.on_mention(event, context, client, deps=deps)

    assert handed_over == expected
    assert slack.ephemerals == []


def test_slash_command_ack_answers_help_for_an_unknown_subcommand(client, deps):
    ops = TriageOps(deps, client)
    table = commands.CommandTable(commands.subcommands(ops))
    ack = RecordingAck()

    commands.answer_at_once(ack, {"channel_id": CHANNEL, "text": "frobnicate 3"}, table=table, ops=ops)
    commands.answer_at_once(ack, {"channel_id": CHANNEL, "text": "list"}, table=table, ops=ops)
    commands.answer_at_once(ack, {"channel_id": OTHER_CHANNEL, "text": "list"}, table=table, ops=ops)

    unknown, known, elsewhere = ack.calls
    assert "I don't know `/eval frobnicate`" in str(unknown["blocks"]) and "list" in unknown["text"]
    assert known == {}  # the lazy listener answers it
    assert set(elsewhere) == {"text"} and f"<#{CHANNEL}>" in elsewhere["text"]


def test_modal_ack_shows_the_errors_in_the_modal_else_acts_after_the_ack(slack, client, deps):
    def validate(user_id: str, view: dict[str, Any]) -> tuple[Any, dict[str, str]]:
        return (None, {"reason": "Say why."}) if not view.get("reason") else ("plan", {})

    acted: list[tuple[str, Any, int]] = []
    ack = RecordingAck()

    def act(user_id: str, plan: Any) -> str:
        acted.append((user_id, plan, len(ack.calls)))
        return "Rejected."

    ops = TriageOps(deps, client)
    origin = modals.Origin(case_id="abcd1234", channel=CHANNEL).dump()
    views.submit(ack, {"user": {"id": FLAGGER}, "view": {"private_metadata": origin}}, ops=ops, validate=validate, act=act)
    views.submit(ack, {"user": {"id": FLAGGER}, "view": {"reason": "dupe", "private_metadata": origin}}, ops=ops,
                 validate=validate, act=act)

    assert ack.calls == [{"response_action": "errors", "errors": {"reason": "Say why."}}, {}]
    # Validated once, acted on after the ack; the answer goes to the maintainer, never nothing.
    assert acted == [(FLAGGER, "plan", 2)]
    told = slack.calls_to("chat.postEphemeral")
    assert [(c.params["user"], c.params["text"]) for c in told] == [(FLAGGER, "Rejected.")]

"""Self-tests of the fake Slack, driven by the real slack-sdk WebClient and a real slack-bolt App over 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from slack_bolt import Ack as BoltAck
from slack_bolt import App, Say
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import RateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier

from .slack import BOT_ID, BOT_USER_ID, FakeSlack, close_socket_mode, event_callback, signed_request_headers

CHANNEL = "C0EVALS"
ALICE = "U0ALICE"
BOB = "U0BOB"
MODAL = {"type": "modal", "callback_id": "promote", "title": {"type": "plain_text", "text": "Promote"}}


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as slack:
        slack.add_user(ALICE, "alice", display_name="Alice A.")
        slack.add_user(BOB, "bob")
        slack.add_channel(CHANNEL, "evals")
        yield slack


@pytest.fixture
def client(fake: FakeSlack) -> WebClient:
    return WebClient(base_url=fake.api_url, token="xoxb-test")


def seed_thread(fake: FakeSlack, replies: int) -> tuple[str, list[str]]:
    parent = fake.post(CHANNEL, "How long do I have to return this?", user=ALICE)
    reply_ts = [fake.post(CHANNEL, f"reply {i}", user=BOB, thread_ts=parent) for i in range(replies)]
    return parent, reply_ts


def error_of(call: Any, **kwargs: Any) -> str:
    with pytest.raises(SlackApiError) as raised:
        call(**kwargs)
    return str(raised.value.response["error"])


# ---------------------------------------------------------------- Web API: identity and threads


def test_auth_test_names_a_bot_distinct_from_test_users(client: WebClient) -> None:
    identity = client.auth_test()
    assert (identity["user_id"], identity["bot_id"], identity["user"]) == (BOT_USER_ID, BOT_ID, "evalbot")
    assert identity["user_id"] not in (ALICE, BOB)


def test_replies_with_parent_ts_pages_through_the_thread_parent_first(fake: FakeSlack, client: WebClient) -> None:
    parent, replies = seed_thread(fake, replies=4)
    pages = [client.conversations_replies(channel=CHANNEL, ts=parent, limit=2)]
    while pages[-1]["has_more"]:
        cursor = pages[-1]["response_metadata"]["next_cursor"]
        pages.append(client.conversations_replies(channel=CHANNEL, ts=parent, limit=2, cursor=cursor))

    assert [[m["ts"] for m in page["messages"]] for page in pages] == [[parent, replies[0]], replies[1:3], replies[3:]]
    assert pages[-1]["response_metadata"]["next_cursor"] == ""
    assert pages[0]["messages"][0]["reply_count"] == 4 and pages[0]["messages"][0]["thread_ts"] == parent


def test_replies_iterates_with_the_sdk_paginator(fake: FakeSlack, client: WebClient) -> None:
    parent, replies = seed_thread(fake, replies=5)
    # the SDK's iterator reuses one response object, so read each page as it comes
    pages = client.conversations_replies(channel=CHANNEL, ts=parent, limit=2)
    assert [m["ts"] for page in pages for m in page["messages"]] == [parent, *replies]


def test_replies_with_a_reply_ts_returns_only_that_reply(fake: FakeSlack, client: WebClient) -> None:
    parent, replies = seed_thread(fake, replies=3)
    answer = client.conversations_replies(channel=CHANNEL, ts=replies[1])
    assert [m["ts"] for m in answer["messages"]] == [replies[1]]
    assert answer["messages"][0]["thread_ts"] == parent and answer["has_more"] is False


@pytest.mark.parametrize(
    ("channel", "ts", "error"),
    [
        (CHANNEL, "1.000001", "thread_not_found"),
        ("C0OUTSIDE", None, "not_in_channel"),
        ("C0NOPE", "1.000001", "channel_not_found"),
    ],
)
def test_replies_errors(fake: FakeSlack, client: WebClient, channel: str, ts: str | None, error: str) -> None:
    fake.add_channel("C0OUTSIDE", "outside", member=False)
    message_ts = ts or fake.post("C0OUTSIDE", "hi", user=ALICE)
    assert error_of(client.conversations_replies, channel=channel, ts=message_ts) == error


def test_history_fetches_one_message_by_ts_and_hides_replies(fake: FakeSlack, client: WebClient) -> None:
    fake.post(CHANNEL, "before", user=BOB)
    parent, _ = seed_thread(fake, replies=2)
    fake.post(CHANNEL, "after", user=BOB)
    one = client.conversations_history(channel=CHANNEL, latest=parent, inclusive=True, limit=1)
    assert [m["ts"] for m in one["messages"]] == [parent]
    newest_first = [m["text"] for m in client.conversations_history(channel=CHANNEL)["messages"]]
    assert newest_first == ["after", "How long do I have to return this?", "before"]


def test_deleting_a_parent_with_replies_leaves_a_tombstone(fake: FakeSlack) -> None:
    parent, replies = seed_thread(fake, replies=2)
    fake.delete_message(CHANNEL, replies[0])
    assert fake.message(CHANNEL, parent)["reply_count"] == 1
    fake.delete_message(CHANNEL, parent)
    assert fake.message(CHANNEL, parent)["subtype"] == "tombstone"


# ---------------------------------------------------------------- Web API: writing


def test_post_message_appears_in_the_thread(fake: FakeSlack, client: WebClient) -> None:
    parent, _ = seed_thread(fake, replies=1)
    sent = client.chat_postMessage(channel=CHANNEL, thread_ts=parent, text="Captured", blocks=[{"type": "divider"}])
    thread = client.conversations_replies(channel=CHANNEL, ts=parent)["messages"]
    mine = thread[-1]
    assert (mine["ts"], mine["text"], mine["blocks"]) == (sent["ts"], "Captured", [{"type": "divider"}])
    assert (mine["user"], mine["bot_id"]) == (BOT_USER_ID, BOT_ID)
    assert thread[0]["reply_count"] == 2 and thread[0]["latest_reply"] == sent["ts"]
    assert fake.messages_in(CHANNEL, thread_ts=parent)[-1]["ts"] == sent["ts"]


def test_not_a_member_cannot_post_until_it_joins(fake: FakeSlack, client: WebClient) -> None:
    fake.add_channel("C0PRIV", "private", member=False)
    assert error_of(client.chat_postMessage, channel="C0PRIV", text="hi") == "not_in_channel"
    client.conversations_join(channel="C0PRIV")
    assert client.chat_postMessage(channel="C0PRIV", text="hi")["ok"] and fake.is_member("C0PRIV")


def test_update_edits_the_bots_message(fake: FakeSlack, client: WebClient) -> None:
    sent = client.chat_postMessage(channel=CHANNEL, text="draft")
    updated = client.chat_update(channel=CHANNEL, ts=sent["ts"], text="final")
    assert updated["message"]["edited"]["user"] == BOT_USER_ID and fake.message(CHANNEL, sent["ts"])["text"] == "final"
    someone_elses = fake.post(CHANNEL, "mine", user=ALICE)
    assert error_of(client.chat_update, channel=CHANNEL, ts=someone_elses, text="x") == "cant_update_message"


def test_ephemeral_messages_are_kept_aside(fake: FakeSlack, client: WebClient) -> None:
    assert client.chat_postEphemeral(channel=CHANNEL, user=ALICE, text="nope")["message_ts"]
    assert fake.ephemerals[0]["user"] == ALICE and fake.messages_in(CHANNEL) == []


def test_permalink_of_a_reply_names_its_thread(fake: FakeSlack, client: WebClient) -> None:
    parent, replies = seed_thread(fake, replies=1)
    link = client.chat_getPermalink(channel=CHANNEL, message_ts=replies[0])["permalink"]
    assert link.endswith(f"/archives/{CHANNEL}/p{replies[0].replace('.', '')}?thread_ts={parent}&cid={CHANNEL}")


def test_reactions_add_marks_the_message(fake: FakeSlack, client: WebClient) -> None:
    parent, _ = seed_thread(fake, replies=0)
    client.reactions_add(channel=CHANNEL, timestamp=parent, name="eyes")
    assert fake.message(CHANNEL, parent)["reactions"] == [{"name": "eyes", "users": [BOT_USER_ID], "count": 1}]
    assert error_of(client.reactions_add, channel=CHANNEL, timestamp=parent, name="eyes") == "already_reacted"


def test_users_and_usergroups(fake: FakeSlack, client: WebClient) -> None:
    fake.add_usergroup("S0MAINT", [ALICE])
    profile = client.users_info(user=ALICE)["user"]["profile"]
    assert (profile["display_name"], profile["real_name"]) == ("Alice A.", "alice")
    assert client.users_info(user=BOB)["user"]["profile"]["display_name"] == ""
    assert client.usergroups_users_list(usergroup="S0MAINT")["users"] == [ALICE]
    assert error_of(client.users_info, user="U0GHOST") == "user_not_found"


def test_views_open_update_and_push(fake: FakeSlack, client: WebClient) -> None:
    view = client.views_open(trigger_id="1.2.3", view=MODAL)["view"]
    changed = {**MODAL, "callback_id": "promote2"}
    updated = client.views_update(view_id=view["id"], hash=view["hash"], view=changed)["view"]
    assert updated["id"] == view["id"] and fake.views[view["id"]]["callback_id"] == "promote2"
    assert error_of(client.views_update, view_id=view["id"], hash=view["hash"], view=MODAL) == "hash_conflict"
    assert client.views_push(trigger_id="1.2.3", view=MODAL)["view"]["id"] != view["id"]


def test_files_upload_v2_makes_the_three_calls(fake: FakeSlack, client: WebClient) -> None:
    parent, _ = seed_thread(fake, replies=0)
    result = client.files_upload_v2(channel=CHANNEL, thread_ts=parent, content=b"\x89PNG", filename="trend.png",
                                    title="Trend", initial_comment="pass rate")  # fmt: skip
    methods = [c.method for c in fake.calls[-3:]]
    assert methods == ["files.getUploadURLExternal", "upload", "files.completeUploadExternal"]
    uploaded = fake.files[result["file"]["id"]]
    assert (uploaded.content, uploaded.channel_id, uploaded.thread_ts) == (b"\x89PNG", CHANNEL, parent)
    assert uploaded.initial_comment == "pass rate"
    assert fake.messages_in(CHANNEL, thread_ts=parent)[-1]["files"][0]["title"] == "Trend"


# ---------------------------------------------------------------- faults, tokens and waiting


def test_rate_limit_answers_429_with_retry_after(fake: FakeSlack, client: WebClient) -> None:
    fake.rate_limit_next("conversations.replies", retry_after=0)
    parent, _ = seed_thread(fake, replies=1)
    with pytest.raises(SlackApiError) as raised:
        client.conversations_replies(channel=CHANNEL, ts=parent)
    assert raised.value.response.status_code == 429 and raised.value.response.headers["Retry-After"] == "0"


def test_rate_limit_is_retried_by_the_retry_handler(fake: FakeSlack) -> None:
    fake.rate_limit_next("conversations.replies", retry_after=0)
    parent, _ = seed_thread(fake, replies=1)
    handler = RateLimitErrorRetryHandler(max_retry_count=1)
    patient = WebClient(base_url=fake.api_url, token="xoxb-test", retry_handlers=[handler])
    assert len(patient.conversations_replies(channel=CHANNEL, ts=parent)["messages"]) == 2
    assert len(fake.calls_to("conversations.replies")) == 2


def test_fail_next_fails_then_recovers(fake: FakeSlack, client: WebClient) -> None:
    fake.fail_next("chat.postMessage", error="channel_not_found", times=2)
    errors = [error_of(client.chat_postMessage, channel=CHANNEL, text="hi") for _ in range(2)]
    assert errors == ["channel_not_found"] * 2
    assert client.chat_postMessage(channel=CHANNEL, text="hi")["ok"]


@pytest.mark.parametrize(
    ("method", "token", "error"),
    [
        ("no.such.method", "xoxb-test", "unknown_method"),
        ("apps.connections.open", "xoxb-test", "not_allowed_token_type"),
        ("auth.test", "xapp-test", "not_allowed_token_type"),
        ("auth.test", "bogus", "invalid_auth"),
    ],
)
def test_method_and_token_errors(fake: FakeSlack, method: str, token: str, error: str) -> None:
    assert error_of(WebClient(base_url=fake.api_url, token=token).api_call, api_method=method) == error


def test_token_form_field_is_accepted_and_never_recorded(fake: FakeSlack) -> None:
    WebClient(base_url=fake.api_url).api_call("auth.test", params={"token": "xoxb-secret"})
    call = fake.calls_to("auth.test")[0]
    assert call.token_type == "xoxb" and "xoxb-secret" not in json.dumps([call.params, call.headers])


def test_latency_delays_answers_and_wait_for_call_sees_them(fake: FakeSlack, client: WebClient) -> None:
    fake.set_latency("chat.postMessage", 0.2)
    started = time.monotonic()
    poster = threading.Thread(target=client.chat_postMessage, kwargs={"channel": CHANNEL, "text": "late"})
    poster.start()
    call = fake.wait_for_call("chat.postMessage", lambda c: c.params["text"] == "late", timeout=2)
    poster.join()
    assert call.params["channel"] == CHANNEL and time.monotonic() - started >= 0.2
    with pytest.raises(TimeoutError):
        fake.wait_for_call("chat.postMessage", timeout=0.05, start=len(fake.calls))


def test_signed_request_headers_verify() -> None:
    body = '{"type":"event_callback"}'
    headers = signed_request_headers("shh", body)
    verifier = SignatureVerifier("shh")
    assert verifier.is_valid(body, headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"])
    assert headers["Content-Type"] == "application/json"


# ---------------------------------------------------------------- Socket Mode with a real Bolt app


@pytest.fixture
def bolt(fake: FakeSlack) -> Iterator[App]:
    app = App(client=WebClient(base_url=fake.api_url, token="xoxb-test"))  # Bolt warns if token= is given too
    handler = SocketModeHandler(app, "xapp-test")
    handler.connect()
    try:
        fake.wait_connected(timeout=5)
        yield app
    finally:
        close_socket_mode(handler)


def ack_eval_commands(app: App, text: str = "") -> None:
    @app.command("/eval")
    def on_eval(ack: BoltAck) -> None:
        ack(text)


def test_bolt_receives_an_app_mention_and_acks(fake: FakeSlack, bolt: App) -> None:
    seen: list[dict[str, Any]] = []

    @bolt.event("app_mention")
    def on_mention(event: dict[str, Any], say: Say) -> None:
        seen.append(event)
        say(text="on it", thread_ts=event["ts"])

    parent = fake.post(CHANNEL, f"<@{BOT_USER_ID}> refunds are 30 days", user=ALICE)
    mention = {"type": "app_mention", "user": ALICE, "text": f"<@{BOT_USER_ID}> note", "ts": parent, "channel": CHANNEL}
    ack = fake.send_event(mention)
    assert ack.payload is None and ack.latency < 3
    fake.wait_for_call("chat.postMessage", lambda c: c.params.get("thread_ts") == parent, timeout=5)
    assert seen[0]["user"] == ALICE
    assert fake.messages_in(CHANNEL, thread_ts=parent)[-1]["text"] == "on it"


def test_bolt_slash_command_ack_carries_its_text(fake: FakeSlack, bolt: App) -> None:
    @bolt.command("/eval")
    def on_eval(ack: BoltAck, command: dict[str, Any]) -> None:
        ack(f"you asked: {command['text']}")

    ack = fake.send_slash_command({"command": "/eval", "text": "status", "user_id": ALICE, "channel_id": CHANNEL})
    assert ack.payload == {"text": "you asked: status"}


def test_bolt_view_submission_ack_carries_response_action(fake: FakeSlack, bolt: App) -> None:
    errors = {"response_action": "errors", "errors": {"rubric": "Add at least one expectation"}}

    @bolt.view("promote")
    def on_submit(ack: BoltAck) -> None:
        ack(**errors)

    view = {"id": "V1", "type": "modal", "callback_id": "promote", "private_metadata": "k3m9", "state": {"values": {}}}
    ack = fake.send_interactive({"type": "view_submission", "user": {"id": ALICE}, "view": view})
    assert ack.payload == errors


def test_bolt_block_action_is_acked(fake: FakeSlack, bolt: App) -> None:
    clicked = threading.Event()

    @bolt.action("promote")
    def on_click(ack: BoltAck) -> None:
        ack()
        clicked.set()

    action = {"action_id": "promote", "block_id": "b", "value": "k3m9", "type": "button"}
    payload = {"type": "block_actions", "user": {"id": ALICE}, "channel": {"id": CHANNEL}, "actions": [action],
               "container": {"type": "message", "message_ts": "1.000001", "channel_id": CHANNEL}}  # fmt: skip
    assert fake.send_interactive(payload).payload is None and clicked.wait(5)


def test_respond_posts_to_the_fake_response_url(fake: FakeSlack, bolt: App) -> None:
    @bolt.command("/eval")
    def on_eval(ack: BoltAck, respond: Any) -> None:
        ack()
        respond(text="run started", response_type="ephemeral")

    fake.send_slash_command({"text": "run"})
    assert fake.wait_for_call("response_url", timeout=5).params["text"] == "run started"


def test_many_envelopes_are_acked_by_envelope_id(fake: FakeSlack, bolt: App) -> None:
    @bolt.event("reaction_added")
    def on_reaction() -> None:
        pass

    item = {"type": "message", "channel": CHANNEL, "ts": "1.000001"}
    event = {"type": "reaction_added", "user": ALICE, "reaction": "eyes", "item": item}
    futures = [fake.send_envelope_nowait("events_api", event_callback(event)) for _ in range(50)]
    acks = [f.result(timeout=5) for f in futures]
    assert [a.envelope_id for a in acks] == [f.result().envelope_id for f in futures]
    assert len({a.envelope_id for a in acks}) == 50 and len(fake.acks) == 50


def test_client_reconnects_when_asked_to_refresh(fake: FakeSlack, bolt: App) -> None:
    ack_eval_commands(bolt)
    opened = len(fake.calls_to("apps.connections.open"))
    assert fake.disconnect_clients() == 1
    fake.wait_connected(timeout=5)  # the replacement is up and the old connection gone
    assert len(fake.calls_to("apps.connections.open")) == opened + 1
    assert fake.send_slash_command({"text": "help"}).payload is None


def test_client_reconnects_after_a_dropped_connection(fake: FakeSlack, bolt: App) -> None:
    ack_eval_commands(bolt)
    # the built-in client notices a closed socket in its monitor, every ping_interval (Bolt's default: 10 s)
    quick = SocketModeHandler(bolt, "xapp-test", ping_interval=0.2)
    quick.connect()
    try:
        fake.wait_connected(count=2)
        assert fake.drop_connections() == 2
        fake.wait_for_call("apps.connections.open", start=len(fake.calls), timeout=5)
        fake.wait_connected(timeout=5)
        assert fake.send_slash_command({"text": "help"}).payload is None
    finally:
        close_socket_mode(quick)


def test_envelopes_are_shared_by_two_connections(fake: FakeSlack, bolt: App) -> None:
    ack_eval_commands(bolt, "ok")
    second = SocketModeHandler(bolt, "xapp-test")
    second.connect()
    try:
        fake.wait_connected(count=2)
        futures = [fake.send_envelope_nowait("slash_commands", {"command": "/eval", "text": ""}) for _ in range(20)]
        assert [f.result(timeout=5).payload for f in futures] == [{"text": "ok"}] * 20
    finally:
        close_socket_mode(second)

"""Capture end to end: the real Bolt app over Socket Mode against the fake Slack, corpus and database real."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlmodel import select

from bot.corpus.files import Corpus
from bot.corpus.ids import slack_case_id
from bot.store.tables import Flag, Rejection, session_scope
from tests.fakes.slack import FakeSlack
from tests.helpers.slackbot import ASSISTANT_BOT, CHANNEL, FLAGGER, LEAD, OTHER_CHANNEL, SECOND, configure, running_bot, seed

pytestmark = pytest.mark.migrated_db  # the database starts migrated: each test's first use of it migrates in-process


@pytest.fixture
def slack():
    with FakeSlack() as fake:
        seed(fake)
        yield fake


@pytest.fixture
def bot(slack, db_url, monkeypatch, tmp_path):
    configure(monkeypatch, slack)
    with running_bot(slack) as running:
        yield running


def thread(slack: FakeSlack) -> tuple[str, str]:
    """A support thread: user question, assistant reply (the failure), a human follow-up. Returns (parent, reply)."""
    parent = slack.post(CHANNEL, "How long do I have to return my tent? <@U0SECOND1> said 60 days &amp; free", user=FLAGGER)
    reply = slack.post(CHANNEL, "You have 90 days. See <https://acme.example/returns|our policy>.", bot_id=ASSISTANT_BOT, thread_ts=parent)
    slack.post(CHANNEL, "that's wrong, it's 30", user=SECOND, thread_ts=parent)
    return parent, reply


def react(slack: FakeSlack, ts: str, *, user: str = FLAGGER, reaction: str = "triangular_flag_on_post",
          channel: str = CHANNEL, event_id: str | None = None, retry_attempt: int = 0):
    event = {"type": "reaction_added", "user": user, "reaction": reaction, "item_user": "U0X",
             "item": {"type": "message", "channel": channel, "ts": ts}, "event_ts": "1763800000.000001"}
    return slack.send_event(event, event_id=event_id, retry_attempt=retry_attempt)


def wait_reply(slack: FakeSlack, thread_ts: str, count: int = 1):
    call = slack.wait_for_call("chat.postMessage", lambda c: c.params.get("thread_ts") == thread_ts and
                               len([x for x in slack.calls_to("chat.postMessage") if x.params.get("thread_ts") == thread_ts]) >= count)
    return call


def blocks_text(params: dict) -> str:
    raw = params.get("blocks")
    blocks = json.loads(raw) if isinstance(raw, str) else raw
    return json.dumps(blocks)


def test_reaction_on_a_reply_captures_the_whole_thread_up_to_it(bot, slack):
    parent, reply = thread(slack)
    ack = react(slack, reply)
    assert ack.latency < 1.0
    call = wait_reply(slack, parent)
    case_id = slack_case_id(CHANNEL, reply)
    text = blocks_text(call.params)
    assert case_id in text and "2 turns from this thread" in text and "<@U0FLAGGER>" in text
    assert "evalbot_promote" in text and "evalbot_reject" in text

    case = Corpus(bot.runtime.corpus.root).get(case_id)
    assert case.status == "candidate" and case.source.kind == "slack"
    assert [t.role for t in case.conversation] == ["user", "assistant"]
    assert case.conversation[0].content == "How long do I have to return my tent? @Dev said 60 days & free"
    assert case.conversation[1].content == "You have 90 days. See our policy (https://acme.example/returns)."
    assert case.source.flagged_by == [FLAGGER] and case.source.ts == reply
    assert case.source.permalink and case.title.startswith("Reply to: How long do I have to return")
    log = bot.runtime.corpus.repo.run("log", "-1", "--format=%an <%ae>|%s")
    assert log.strip() == f"Maria <{FLAGGER}@users.slack>|Capture {case_id}: {case.title}"
    with session_scope(bot.runtime.engine) as session:
        flags = session.exec(select(Flag)).all()
    assert [(f.case_id, f.user_id, f.trigger) for f in flags] == [(case_id, FLAGGER, "reaction")]


def test_reaction_on_the_parent_captures_only_the_parent(bot, slack):
    parent, _ = thread(slack)
    react(slack, parent)
    wait_reply(slack, parent)
    case = bot.runtime.corpus.get(slack_case_id(CHANNEL, parent))
    assert len(case.conversation) == 1


def test_other_emoji_and_other_channels_are_ignored(bot, slack):
    parent, reply = thread(slack)
    other = slack.post(OTHER_CHANNEL, "You have 90 days.", bot_id=ASSISTANT_BOT)
    react(slack, reply, reaction="thumbsup")
    react(slack, other, channel=OTHER_CHANNEL)
    react(slack, parent, reaction="eyes")
    # A flag afterwards is processed, so the ignored ones had their chance to act first.
    react(slack, reply)
    wait_reply(slack, parent)
    assert len(bot.runtime.corpus.ids()) == 1


def test_redelivered_event_and_second_flag_make_one_case(bot, slack):
    parent, reply = thread(slack)
    react(slack, reply, event_id="Ev0001")
    wait_reply(slack, parent)
    react(slack, reply, event_id="Ev0001", retry_attempt=1)  # Slack's retry of the same event
    react(slack, reply, event_id="Ev0002")  # the same person again
    slack.wait_for_call("chat.postEphemeral", lambda c: "already flagged" in c.params.get("text", ""))
    react(slack, reply, user=SECOND, event_id="Ev0003")
    update = slack.wait_for_call("chat.update")
    assert "2 flags" in blocks_text(update.params)
    commits = bot.runtime.corpus.repo.run("log", "--format=%s").splitlines()
    case_id = slack_case_id(CHANNEL, reply)
    assert commits == [f"Flag {case_id}: also flagged by {SECOND}", commits[1]] and commits[1].startswith(f"Capture {case_id}")
    assert bot.runtime.corpus.get(case_id).source.flagged_by == [FLAGGER, SECOND]
    assert len([c for c in slack.calls_to("chat.postMessage") if c.params.get("thread_ts") == parent]) == 1


def test_flag_on_a_rejected_message_says_who_and_why(bot, slack):
    parent, reply = thread(slack)
    case_id = slack_case_id(CHANNEL, reply)
    with session_scope(bot.runtime.engine) as session:
        session.add(Rejection(case_id=case_id, title="t", channel=CHANNEL, ts=reply, rejected_by=LEAD, reason="not a bug"))
    react(slack, reply)
    call = slack.wait_for_call("chat.postEphemeral")
    assert f"rejected by <@{LEAD}>" in call.params["text"] and "not a bug" in call.params["text"]
    assert bot.runtime.corpus.ids() == {}


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ("not_in_channel", "/invite @evalbot"),
        ("missing_scope", "reinstall it with the scopes in slack-manifest.yml"),
        ("thread_not_found", "deleted"),
    ],
)
def test_slack_refusing_the_thread_tells_the_flagger_and_writes_nothing(bot, slack, error, expected):
    parent, reply = thread(slack)
    slack.fail_next("conversations.replies", error=error)
    react(slack, reply)
    call = slack.wait_for_call("chat.postEphemeral")
    assert expected in call.params["text"] and call.params["user"] == FLAGGER
    assert bot.runtime.corpus.ids() == {}
    assert not bot.runtime.corpus.repo.has_commits()


def test_rate_limited_replies_are_retried_after_retry_after(bot, slack):
    parent, reply = thread(slack)
    slack.rate_limit_next("conversations.replies", retry_after=0)
    react(slack, reply)
    wait_reply(slack, parent)
    assert len(bot.runtime.corpus.ids()) == 1


def test_not_in_channel_when_even_ephemeral_fails_falls_back_to_a_dm(bot, slack):
    parent, reply = thread(slack)
    slack.fail_next("conversations.replies", error="not_in_channel")
    slack.fail_next("chat.postEphemeral", error="not_in_channel")
    react(slack, reply)
    dm = slack.wait_for_call("chat.postMessage", lambda c: c.params.get("channel") == FLAGGER)
    assert "/invite @evalbot" in dm.params["text"]


def test_deleted_message_is_refused_clearly(bot, slack):
    parent, reply = thread(slack)
    slack.delete_message(CHANNEL, reply)
    react(slack, reply)
    assert "deleted" in slack.wait_for_call("chat.postEphemeral").params["text"]


def test_mention_in_a_thread_captures_it_with_the_note(bot, slack):
    parent, reply = thread(slack)
    mention_ts = slack.post(CHANNEL, "<@UEVALBOT> policy is 30 days, not 90", user=SECOND, thread_ts=parent)
    slack.send_event({"type": "app_mention", "user": SECOND, "text": "<@UEVALBOT> policy is 30 days, not 90",
                      "ts": mention_ts, "thread_ts": parent, "channel": CHANNEL})
    wait_reply(slack, parent)
    case = bot.runtime.corpus.get(slack_case_id(CHANNEL, reply))
    assert case.source.note == "policy is 30 days, not 90"
    assert case.title == "Policy is 30 days, not 90"
    assert case.conversation[-1].role == "assistant"


def test_mention_outside_the_channel_is_refused(bot, slack):
    ts = slack.post(OTHER_CHANNEL, "<@UEVALBOT> look", user=SECOND)
    slack.send_event({"type": "app_mention", "user": SECOND, "text": "<@UEVALBOT> look", "ts": ts, "channel": OTHER_CHANNEL})
    assert "I only take flags in" in slack.wait_for_call("chat.postEphemeral").params["text"]


def test_message_shortcut_opens_a_note_modal_then_captures(bot, slack):
    parent, reply = thread(slack)
    ack = slack.send_interactive({"type": "message_action", "callback_id": "evalbot_flag", "trigger_id": "T1",
                                  "user": {"id": FLAGGER}, "channel": {"id": CHANNEL}, "message_ts": reply,
                                  "message": slack.message(CHANNEL, reply)})
    assert ack.latency < 1.0
    opened = slack.wait_for_call("views.open")
    view = json.loads(opened.params["view"]) if isinstance(opened.params["view"], str) else opened.params["view"]
    assert view["callback_id"] == "evalbot_flag_note"
    slack.send_interactive({"type": "view_submission", "user": {"id": FLAGGER},
                            "view": {"id": "V1", "type": "modal", "callback_id": "evalbot_flag_note", "private_metadata": view["private_metadata"],
                                     "state": {"values": {"note": {"note": {"type": "plain_text_input", "value": "invents 90 days"}}}}}})
    wait_reply(slack, parent)
    case = bot.runtime.corpus.get(slack_case_id(CHANNEL, reply))
    assert case.source.note == "invents 90 days"
    with session_scope(bot.runtime.engine) as session:
        assert session.exec(select(Flag)).one().trigger == "shortcut"


def test_pasted_transcript_is_the_conversation(bot, slack):
    text = "Customer: can I return a used stove?\nBot: Yes, within 90 days,\nno questions asked.\nCustomer: great"
    ts = slack.post(CHANNEL, text, user=FLAGGER)
    react(slack, ts)
    wait_reply(slack, ts)
    case = bot.runtime.corpus.get(slack_case_id(CHANNEL, ts))
    assert case.source.kind == "transcript"
    assert [(t.role, t.content) for t in case.conversation] == [
        ("user", "can I return a used stove?"), ("assistant", "Yes, within 90 days,\nno questions asked."), ("user", "great")]


class _Files(BaseHTTPRequestHandler):
    content: bytes = b""

    def do_GET(self):  # noqa: N802
        assert self.headers["Authorization"] == "Bearer xoxb-test-token"
        self.send_response(200)
        self.end_headers()
        self.wfile.write(self.content)

    def log_message(self, *args):
        pass


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("chat.json", json.dumps([{"role": "user", "content": "hi"}, {"role": "assistant", "content": [{"type": "text", "text": "Hello! Your key is sk-ant-api03-" + "FakeKey0123456789_" * 5 + "AA"}]}]),
         [("user", "hi"), ("assistant", "Hello! Your key is [REDACTED:anthropic_key]")]),
        ("chat.jsonl", '{"role": "system", "content": "be nice"}\n{"role": "user", "content": "q"}\n{"role": "assistant", "content": "a"}\n',
         [("user", "q"), ("assistant", "a")]),
    ],
)
def test_attached_messages_file_is_the_conversation(bot, slack, name, content, expected):
    _Files.content = content.encode()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()  # shutdown() waits a poll
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/files/{name}"
        ts = slack.post(CHANNEL, "", user=FLAGGER, files=[{"id": "F1", "name": name, "url_private": url, "size": len(content)}], subtype="file_share")
        react(slack, ts)
        wait_reply(slack, ts)
    finally:
        server.shutdown()
    case = bot.runtime.corpus.get(slack_case_id(CHANNEL, ts))
    assert case.source.kind == "file"
    assert [(t.role, t.content) for t in case.conversation] == expected


@pytest.mark.parametrize(
    ("text", "kwargs", "check"),
    [
        ("x" * 40_000, {}, lambda case: len(case.conversation[0].content) == 40_000),
        (":fire: :fire:", {}, lambda case: case.conversation[0].content == ":fire: :fire:"),
        ("", {"files": [{"id": "F2", "name": "screenshot.png"}]}, lambda case: "[attached file: screenshot.png]" in case.conversation[0].content),
        ("You have 90 days.", {"bot_id": ASSISTANT_BOT, "user": None}, lambda case: case.conversation[0].role == "assistant"),
        ("Edited: it is 30 days", {"edited": "1763800000.000900"}, lambda case: case.conversation[0].content == "Edited: it is 30 days"),
    ],
    ids=["40k-chars", "emoji-only", "file-only", "bot-message", "edited"],
)
def test_odd_messages_capture_cleanly(bot, slack, text, kwargs, check):
    kwargs = {"user": FLAGGER, **kwargs}
    ts = slack.post(CHANNEL, text, **kwargs)
    react(slack, ts)
    wait_reply(slack, ts)
    assert check(bot.runtime.corpus.get(slack_case_id(CHANNEL, ts)))


def test_empty_message_is_refused_clearly(bot, slack):
    ts = slack.post(CHANNEL, "", user=FLAGGER)
    react(slack, ts)
    assert "no text or files" in slack.wait_for_call("chat.postEphemeral").params["text"]
    assert bot.runtime.corpus.ids() == {}


def test_secrets_are_redacted_before_writing_and_posting(bot, slack):
    token = "xoxb-" + "123456789012-123456789012-" + "a" * 24
    parent = slack.post(CHANNEL, f"my token is {token}, email me at jo@example.com", user=FLAGGER)
    reply = slack.post(CHANNEL, "Thanks!", bot_id=ASSISTANT_BOT, thread_ts=parent)
    react(slack, reply)
    call = wait_reply(slack, parent)
    path = bot.runtime.corpus.path_for(slack_case_id(CHANNEL, reply), "candidate")
    text = path.read_text()
    assert token not in text and "jo@example.com" not in text
    assert "[REDACTED:slack_token]" in text and "[REDACTED:email]" in text
    assert "2 secrets redacted" in blocks_text(call.params)
    assert token not in bot.runtime.corpus.repo.run("log", "-p")


def test_mention_note_comes_from_the_blocks_not_the_placeholder_text(bot, slack):
    parent, reply = thread(slack)
    blocks = [{"type": "rich_text", "elements": [{"type": "rich_text_section", "elements": [
        {"type": "user", "user_id": "UEVALBOT"}, {"type": "text", "text": " the window is "},
        {"type": "text", "text": "30 days", "style": {"bold": True}}]}]}]
    mention_ts = slack.post(CHANNEL, "This content can't be displayed.", user=SECOND, thread_ts=parent, blocks=blocks)
    slack.send_event({"type": "app_mention", "user": SECOND, "text": "This content can't be displayed.", "blocks": blocks,
                      "ts": mention_ts, "thread_ts": parent, "channel": CHANNEL})
    wait_reply(slack, parent)
    case = bot.runtime.corpus.get(slack_case_id(CHANNEL, reply))
    assert case.source.note == "the window is **30 days**"
    assert all("can't be displayed" not in t.content for t in case.conversation)


def test_an_ai_reply_posted_as_blocks_is_captured_from_its_blocks(bot, slack):
    parent = slack.post(CHANNEL, "Can I return a used stove?", user=FLAGGER)
    reply = slack.post(CHANNEL, "Support AI replied", bot_id=ASSISTANT_BOT, thread_ts=parent, blocks=[
        {"type": "section", "text": {"type": "mrkdwn", "text": "Yes, *within 90 days*, no questions asked."}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "claude-sonnet-4-6 · $0.01"}]}])
    react(slack, reply)
    wait_reply(slack, parent)
    case = bot.runtime.corpus.get(slack_case_id(CHANNEL, reply))
    assert [(t.role, t.content) for t in case.conversation] == [
        ("user", "Can I return a used stove?"),
        ("assistant", "Yes, **within 90 days**, no questions asked.\nclaude-sonnet-4-6 · $0.01")]


def test_flagging_a_system_message_says_it_is_one(bot, slack):
    ts = slack.post(CHANNEL, f"<@{SECOND}> has joined the channel", user=SECOND, subtype="channel_join")
    react(slack, ts)
    text = slack.wait_for_call("chat.postEphemeral").params["text"]
    assert "system message (someone joining the channel)" in text and "no text or files" not in text
    assert bot.runtime.corpus.ids() == {}


def test_two_people_flagging_at_once_get_one_reply_naming_both(bot, slack):
    # A wrong answer collects flags quickly: the second capture finishes while the first one's reply is still on
    # its way to Slack, and must update that reply, not post a second one.
    parent, reply = thread(slack)
    slack.set_latency("chat.postMessage", 0.6)
    react(slack, reply, event_id="EvAtOnce1")
    react(slack, reply, user=SECOND, event_id="EvAtOnce2")
    slack.wait_for_call("chat.update", lambda c: "2 flags" in blocks_text(c.params), timeout=20)
    case_id = slack_case_id(CHANNEL, reply)
    assert bot.runtime.corpus.get(case_id).source.flagged_by in ([FLAGGER, SECOND], [SECOND, FLAGGER])
    posted = [c for c in slack.calls_to("chat.postMessage") if c.params.get("thread_ts") == parent]
    assert len(posted) == 1, [c.params.get("text") for c in posted]


@pytest.mark.parametrize("live_first", [False, True], ids=["caught-up-first", "live-first"])
def test_one_reaction_caught_up_and_delivered_live_is_one_capture_and_says_nothing_twice(bot, slack, live_first):
    # While reconnecting, catch-up reads a reaction from the channel's history that Slack also delivers live:
    # two inbox rows of one flag. One reply in the thread, and no "you already flagged this" to the flagger,
    # whichever row is captured first.
    from bot.capture import inbox
    from bot.slack.deps import build_deps
    from bot.slack.flows import flagging
    from bot.slack.flows.catchup import CatchupScope, catch_up
    from tests.fakes.slack import BOT_ID, BOT_USER_ID

    parent, reply = thread(slack)
    slack.add_reaction(CHANNEL, reply, "triangular_flag_on_post", FLAGGER)
    scope = CatchupScope(channel=CHANNEL, flag_emoji=frozenset({"triangular_flag_on_post"}), bot_user_id=BOT_USER_ID,
                         bot_id=BOT_ID)
    [key] = catch_up(bot.app.client, engine=bot.runtime.engine, corpus=bot.runtime.corpus, scope=scope).keys
    deps = build_deps(bot.runtime, bot.app.client, {"user_id": BOT_USER_ID, "bot_id": BOT_ID})

    def settled(done: set[str]) -> None:
        """Wait until the rows of the steps taken so far are captured (the caught-up row, written at the start,
        stays pending until its step)."""
        left = 0 if "caught-up" in done else 1
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and inbox.pending_count(bot.runtime.engine) > left:
            time.sleep(0.05)
        assert inbox.pending_count(bot.runtime.engine) == left

    done: set[str] = set()
    for step in (["live", "caught-up"] if live_first else ["caught-up", "live"]):
        if step == "live":
            react(slack, reply, event_id="EvLiveToo")  # the same reaction, delivered live
        else:
            flagging.capture_now(deps, bot.app.client, key)
        done.add(step)
        settled(done)
    time.sleep(0.3)  # an ephemeral or a second reply would be on its way by now
    assert len([c for c in slack.calls_to("chat.postMessage") if c.params.get("thread_ts") == parent]) == 1
    assert not [c for c in slack.calls_to("chat.postEphemeral") if "already flagged" in c.params.get("text", "")]
    assert bot.runtime.corpus.get(slack_case_id(CHANNEL, reply)).source.flagged_by == [FLAGGER]

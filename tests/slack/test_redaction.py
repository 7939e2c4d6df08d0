"""Slack's exits pass the redactor: the capture reply, the note and title Claude drafts, the drafting prompt, the
replies and modals of /eval, the digest, and every Web API or response_url post.

Through the real Bolt app over Socket Mode against the fake Slack (and the fake Anthropic API); each test plants a
secret where capture's own redaction never saw it and looks for it in what the fakes received. The secrets are
fake and assembled from pieces, so secret scanners have nothing to flag in this file.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from slack_bolt.context import BoltContext
from slack_sdk import WebClient
from sqlmodel import select

from bot.core.settings import get_settings
from bot.corpus.ids import slack_case_id
from bot.runtime import open_runtime
from bot.slack.client import make_web_client
from bot.slack.flows.digest_post import post_digest
from bot.slack.flows.notify import tell_user
from bot.slack.redaction import RedactingWebClient, _RedactingAck, redacting_middleware
from bot.store.tables import CaseResult, session_scope
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.slack import FakeSlack
from tests.helpers.evalruns import record_run
from tests.helpers.slackbot import ASSISTANT_BOT, CHANNEL, FLAGGER, LEAD, SECOND, configure, running_bot, seed

pytestmark = pytest.mark.migrated_db  # the database starts migrated: each test's first use of it migrates in-process

GITHUB = "ghp_" + "FakeGitHubToken0123456789abcdefghijk"
AWS_ID = "AKIA" + "FAKE0123456789AB"
SLACK_BOT = "xoxb-" + "2400000000001-2400000000002-" + "fAkEtOkEnVaLuE0123456789"
PLANTED = (GITHUB, AWS_ID, SLACK_BOT)


def leaks(value: object) -> list[str]:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return [secret for secret in PLANTED if secret in text or secret[5:-2] in text]


def sent(slack: FakeSlack, start: int = 0) -> str:
    """Everything the bot sent to Slack since call `start`: Web API params and response_url bodies."""
    return json.dumps([call.params for call in slack.calls[start:]], ensure_ascii=False, default=str)


@pytest.fixture
def slack():
    with FakeSlack() as fake:
        seed(fake)
        yield fake


def test_capture_redacts_the_note_the_drafted_title_the_prompt_the_file_and_the_reply(slack, db_url, monkeypatch):
    with FakeAnthropic() as claude:
        configure(monkeypatch, slack, ANTHROPIC_API_KEY="sk-ant-test", ANTHROPIC_BASE_URL=claude.base_url)
        # Claude echoes a secret into the title and the rubric: the drafted text is an exit too.
        claude.queue({"title": f"Leaks {GITHUB} to the user", "rubric": f"Never prints {AWS_ID}."})
        with running_bot(slack) as bot:
            parent = slack.post(CHANNEL, f"my bot token is {SLACK_BOT}, why does it fail?", user=FLAGGER)
            reply = slack.post(CHANNEL, f"Use {GITHUB} instead.", bot_id=ASSISTANT_BOT, thread_ts=parent)
            note = f"<@UEVALBOT> it printed {AWS_ID}"
            mention = slack.post(CHANNEL, note, user=SECOND, thread_ts=parent)
            slack.send_event({"type": "app_mention", "user": SECOND, "text": note, "ts": mention, "thread_ts": parent,
                              "channel": CHANNEL})
            slack.wait_for_call("chat.postMessage", lambda c: c.params.get("thread_ts") == parent, timeout=20)
            case = bot.runtime.corpus.get(slack_case_id(CHANNEL, reply))
            path = bot.runtime.corpus.path_for(case.id, case.status)
            history = bot.runtime.corpus.repo.run("log", "-p", "--all")
            posted = json.dumps([c.params for c in slack.calls if c.method.startswith("chat.")], default=str)
        assert claude.requests and leaks([r.json for r in claude.requests]) == []
    assert case.source.note == "it printed [REDACTED:aws_access_key]"
    assert case.title == "Leaks [REDACTED:github_token] to the user"
    assert leaks(case.model_dump(mode="json")) == [] and leaks(path.read_text(encoding="utf-8")) == []
    assert leaks(history) == [] and leaks(posted) == []


def plant_in_file(corpus_dir, case_id: str) -> None:
    """Edit a case file as someone outside the bot would, and commit it with git itself."""
    path = corpus_dir / "cases" / f"{case_id}.yaml"
    text = path.read_text(encoding="utf-8")
    text = text.replace("title: Refund answer invents a 90-day window", f"title: Refund answer leaks {GITHUB}")
    text = text.replace("content: Great question!", f"content: Great question! My key is {AWS_ID}.")
    path.write_text(text, encoding="utf-8")
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "PATH": "/usr/bin:/bin"}
    subprocess.run(["git", "-C", str(corpus_dir), "commit", "-qam", "made elsewhere"], check=True, env=env)


def test_eval_show_and_edit_redact_a_case_file_made_elsewhere(slack, corpus_dir, monkeypatch):
    plant_in_file(corpus_dir, "tne841s8")
    configure(monkeypatch, slack, EVALBOT_MAINTAINERS=LEAD)
    with running_bot(slack):
        start = len(slack.calls)
        slack.send_slash_command({"command": "/eval", "text": "show tne8", "user_id": LEAD, "channel_id": CHANNEL})
        shown = slack.wait_for_call("response_url", lambda c: "tne841s8" in json.dumps(c.params), start=start)
        assert "[REDACTED:github_token]" in json.dumps(shown.params) and leaks(shown.params) == []
        start = len(slack.calls)
        slack.send_slash_command({"command": "/eval", "text": "edit tne8", "user_id": LEAD, "channel_id": CHANNEL})
        view = slack.wait_for_call("views.open", start=start).params["view"]
        assert "[REDACTED:github_token]" in json.dumps(view) and leaks(view) == []
        assert leaks(sent(slack)) == []


def test_the_digest_redacts_results_stored_without_redaction(slack, corpus_dir, monkeypatch):
    configure(monkeypatch, slack)
    rt = open_runtime()
    run_id = record_run(rt, trigger="nightly", **{"2tj51dm1": "Probably yes."}).run_id
    with session_scope(rt.engine) as session:  # rows written by an older bot, before records were redacted
        for row in session.exec(select(CaseResult).where(CaseResult.run_id == run_id)).all():
            row.title, row.failure = f"{row.title} {GITHUB}", f"output held {AWS_ID}"
            session.add(row)
    post_digest(rt, run_id, client=make_web_client(get_settings()))
    assert slack.calls_to("chat.postMessage") and leaks(sent(slack)) == []
    assert "[REDACTED:github_token]" in sent(slack)


def test_every_posting_call_and_response_url_is_redacted(slack, monkeypatch):
    configure(monkeypatch, slack)
    client = make_web_client(get_settings())
    assert isinstance(client, RedactingWebClient)
    client.chat_postMessage(channel=CHANNEL, text=f"token {GITHUB}",
                            blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": f"key {AWS_ID}"}}])
    tell_user(client, user=FLAGGER, text=f"yours: {SLACK_BOT}", channel=CHANNEL)
    tell_user(client, user=FLAGGER, text=f"yours: {SLACK_BOT}", response_url=f"{slack.base_url}/response/1")
    assert [c.method for c in slack.calls[-3:]] == ["chat.postMessage", "chat.postEphemeral", "response_url"]
    assert leaks(sent(slack)) == []
    message = slack.calls_to("chat.postMessage")[-1].params
    assert message["text"] == "token [REDACTED:github_token]" and message["channel"] == CHANNEL


def test_ack_bodies_are_redacted():
    ack = _RedactingAck()
    response = ack(text=f"see {GITHUB}")
    assert leaks(response.body) == [] and "[REDACTED:github_token]" in response.body
    response = ack(response_action="errors", errors={"title": f"not {AWS_ID}"})
    assert leaks(response.body) == [] and json.loads(response.body) == {
        "response_action": "errors", "errors": {"title": "not [REDACTED:aws_access_key]"}}


def test_the_middleware_swaps_client_respond_and_ack_for_redacting_ones():
    context = BoltContext({"client": WebClient(token="xoxb-test"), "response_url": "http://127.0.0.1:9/response/1"})
    seen = []
    redacting_middleware(context, lambda: seen.append(True))
    assert seen == [True]
    assert isinstance(context.client, RedactingWebClient) and context.client.token == "xoxb-test"
    assert type(context.respond).__name__ == "_RedactingRespond" and isinstance(context.ack, _RedactingAck)
    assert context.say.client is context.client
    bare = BoltContext({"response_url": "http://127.0.0.1:9/response/2"})  # no client (no token yet)
    redacting_middleware(bare, lambda: None)
    assert type(bare.respond).__name__ == "_RedactingRespond"

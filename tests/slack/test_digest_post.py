"""Posting digests through the real WebClient to the fake Slack: the channel message, its thread (full lists,
the chart via files_upload_v2's three calls), 429s, failures kept for the next start, "run failed", and
`/eval run` / `/eval status` through the real Bolt app and the slash command's dispatcher."""

from __future__ import annotations

import json
import threading
import time

import pytest
from sqlmodel import select

from bot.core.errors import CallFailed, DigestPostError
from bot.core.settings import get_settings
from bot.digest.data import pending_digest_runs
from bot.evals.runs import RunOutcome
from bot.runtime import open_runtime
from bot.serve import start_background, stop_background
from bot.slack.blocks import digest as digest_blocks
from bot.slack.client import make_web_client
from bot.slack.flows.digest_post import post_digest, post_pending_digests, publish
from bot.store.tables import EvalRun, session_scope
from tests.fakes.slack import BOT_ID, FakeSlack
from tests.helpers.evalruns import anthropic_corpus, record_run, wait_until
from tests.helpers.evals import GOOD
from tests.helpers.slackbot import CHANNEL, LEAD, configure, running_bot, seed

pytestmark = pytest.mark.migrated_db  # the database starts migrated: each test's first use of it migrates in-process

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def slack(monkeypatch):
    with FakeSlack() as fake:
        seed(fake)
        configure(monkeypatch, fake)
        yield fake


@pytest.fixture
def rt(slack, corpus_dir):
    return open_runtime()


@pytest.fixture
def client(slack):
    return make_web_client(get_settings())


def digests(slack: FakeSlack) -> list[dict]:
    """The bot's top-level messages in the channel."""
    return [m for m in slack.messages_in(CHANNEL) if m.get("bot_id") == BOT_ID]


def digest_ts(rt, run_id: int) -> str | None:
    with session_scope(rt.engine) as session:
        return session.get(EvalRun, run_id).digest_ts


def body(message: dict) -> str:
    return json.dumps(message.get("blocks"), ensure_ascii=False)


def test_one_channel_message_per_run_and_the_chart_in_its_thread(rt, client, slack):
    record_run(rt, trigger="nightly")
    run_id = record_run(rt, trigger="nightly", **{"2tj51dm1": "Probably yes."}).run_id
    ts = post_digest(rt, run_id, client=client)
    [message] = digests(slack)
    assert message["ts"] == ts == digest_ts(rt, run_id)
    assert message["text"] == "Eval run #2: 83% passed (5/6), 1 regression"
    assert "−17 pts since run #1" in body(message) and "`2tj51dm1`" in body(message)
    upload_calls = [c.method for c in slack.calls if c.method in ("files.getUploadURLExternal", "upload",
                                                                  "files.completeUploadExternal")]
    assert upload_calls == ["files.getUploadURLExternal", "upload", "files.completeUploadExternal"]
    complete = slack.calls_to("files.completeUploadExternal")[0].params
    assert (complete["channel_id"], complete["thread_ts"]) == (CHANNEL, ts)
    [chart] = slack.files.values()
    assert chart.content.startswith(PNG) and chart.thread_ts == ts and chart.filename == "evalbot-run-2-trend.png"
    assert post_digest(rt, run_id, client=client) == ts  # posted once, whoever asks again
    assert len(digests(slack)) == 1 and len(slack.calls_to("files.completeUploadExternal")) == 1


def test_lists_cut_in_the_channel_message_follow_in_full_in_the_thread(rt, client, slack, monkeypatch):
    monkeypatch.setattr(digest_blocks, "MAIN_ITEMS", 2)
    record_run(rt)
    bad = {"2tj51dm1": "Probably yes.", "tne841s8": "You have 90 days.", "1breqg51": "not json"}
    run_id = record_run(rt, trigger="nightly", **bad).run_id
    ts = post_digest(rt, run_id, client=client)
    assert "…and 1 more (full list in the thread)" in body(digests(slack)[0])
    replies = [m for m in slack.messages_in(CHANNEL, thread_ts=ts)[1:] if m.get("blocks")]
    assert len(replies) == 1 and all(f"`{case_id}`" in body(replies[0]) for case_id in bad)


@pytest.mark.parametrize("retry_after", [1])
def test_a_429_is_retried_after_retry_after(rt, client, slack, retry_after):
    run_id = record_run(rt, trigger="nightly").run_id
    slack.rate_limit_next("chat.postMessage", retry_after=retry_after)
    started = time.monotonic()
    ts = post_digest(rt, run_id, client=client)
    assert time.monotonic() - started >= retry_after
    assert ts == digest_ts(rt, run_id) and len(digests(slack)) == 1
    assert len([c for c in slack.calls_to("chat.postMessage") if not c.params.get("thread_ts")]) == 2


@pytest.mark.parametrize("fault", ["channel_not_found", "429 every time"])
def test_a_digest_slack_refuses_stays_in_the_database_and_is_posted_at_the_next_start(db_url, rt, client, slack, fault):
    run_id = record_run(rt, trigger="cli").run_id  # a CLI run with --post: owed once a post was attempted
    if fault == "channel_not_found":
        slack.fail_next("chat.postMessage", "channel_not_found")
    else:
        slack.rate_limit_next("chat.postMessage", times=4, retry_after=0)  # the client retries 3 times
    with pytest.raises(DigestPostError, match=f"digest of run {run_id} .* will be posted when evalbot next starts"):
        post_digest(rt, run_id, client=client)
    assert digests(slack) == [] and digest_ts(rt, run_id) is None
    with session_scope(rt.engine) as session:
        assert pending_digest_runs(session) == [run_id]
    assert post_pending_digests(rt, client=client) == [run_id]  # what `serve` does when it starts
    assert len(digests(slack)) == 1 and digest_ts(rt, run_id) == digests(slack)[0]["ts"]
    assert post_pending_digests(rt, client=client) == []


def test_two_processes_posting_the_same_digest_post_it_once(db_url, rt, slack):
    run_id = record_run(rt, trigger="nightly").run_id
    slack.set_latency("chat.postMessage", 0.2)
    results: list[str | None] = []
    barrier = threading.Barrier(2)

    def post():
        barrier.wait()
        results.append(post_digest(rt, run_id, client=make_web_client(get_settings())))

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert rt.settings.database_url == db_url
    assert sorted(results, key=bool) == [None, digest_ts(rt, run_id)] and len(digests(slack)) == 1


def test_a_run_whose_every_case_errored_is_one_run_failed_message(rt, client, slack):
    down = {case_id: CallFailed("Error code: 503 - service unavailable") for case_id in GOOD}
    run_id = record_run(rt, trigger="nightly", **down).run_id
    ts = post_digest(rt, run_id, client=client)
    [message] = digests(slack)
    assert message["text"] == ("Eval run #1: run failed: all 6 cases errored: no reply from the target: "
                               "Error code: 503 - service unavailable")
    assert slack.messages_in(CHANNEL, thread_ts=ts)[1:] == [] and slack.files == {}


def test_a_run_that_stopped_before_it_was_recorded_posts_run_failed(rt, client, slack):
    publish(rt, RunOutcome("nightly", None, error="ANTHROPIC_API_KEY is not set"), client=client)
    [message] = digests(slack)
    assert message["text"] == "Eval run: run failed: ANTHROPIC_API_KEY is not set"


def test_serve_start_posts_pending_digests_and_starts_the_scheduler(rt, slack, monkeypatch):
    run_id = record_run(rt, trigger="nightly").run_id
    with running_bot(slack) as bot:
        nightly = start_background(bot.runtime, bot.app)
        try:
            slack.wait_for_call("files.completeUploadExternal", timeout=20)
            assert nightly.next_run_time() is not None
        finally:
            stop_background(nightly)
    assert digest_ts(rt, run_id) == digests(slack)[0]["ts"]


# ---------------------------------------------------------------- /eval run and /eval status


@pytest.fixture
def bot(slack, corpus_dir, monkeypatch):
    """The bot, whose slash command's table has `run` and `status` (wired by the app factory)."""
    with anthropic_corpus(corpus_dir, monkeypatch) as fake, running_bot(slack) as running:
        running.anthropic = fake
        yield running


def running_run(rt) -> bool:
    with session_scope(rt.engine) as session:
        return len(session.exec(select(EvalRun).where(EvalRun.status == "running")).all()) == 1


def command(slack: FakeSlack, text: str):
    ack = slack.send_slash_command({"command": "/eval", "text": text, "user_id": LEAD, "channel_id": CHANNEL})
    assert ack.latency < 0.5
    return ack


def answer(slack: FakeSlack, containing: str, start: int = 0) -> dict:
    return slack.wait_for_call("response_url", lambda c: containing in json.dumps(c.params, ensure_ascii=False),
                               timeout=10, start=start).params


def test_eval_run_answers_at_once_refuses_a_second_run_and_posts_the_digest(bot, slack):
    bot.anthropic.gate = threading.Event()  # the target holds its replies: the run stays in progress
    started = time.monotonic()
    command(slack, "run")
    reply = answer(slack, "Running 6 cases")
    assert time.monotonic() - started < 2.0
    assert reply["text"].startswith(":hourglass_flowing_sand: Running 6 cases… The digest will be posted in <#C0EVALS01>")
    wait_until(lambda: running_run(bot.runtime), what="the run recorded as running")
    mark = len(slack.calls)
    command(slack, "run")
    refused = answer(slack, "already in progress", start=mark)
    assert refused["text"].startswith(":warning: an eval run is already in progress: run 1, started by /eval run (<@U0LEAD001>)")
    mark = len(slack.calls)
    command(slack, "status")
    status = answer(slack, "Running now", start=mark)
    assert "run #1 (6 cases)" in json.dumps(status["blocks"]) and "Next nightly run" in json.dumps(status["blocks"])
    bot.anthropic.gate.set()
    slack.wait_for_call("files.completeUploadExternal", timeout=30)
    [message] = digests(slack)
    assert message["text"] == "Eval run #1: 100% passed (6/6), 0 regressions"
    with session_scope(bot.runtime.engine) as session:
        assert [(r.trigger, r.digest_ts) for r in session.exec(select(EvalRun))] == [("slack", message["ts"])]
    mark = len(slack.calls)
    command(slack, "status")
    status = json.dumps(answer(slack, "Last run", start=mark)["blocks"])
    assert "run #1: *100%* passed (6 of 6 cases)" in status and "|digest>" in status and "Running now" not in status

"""Flags made while `evalbot serve` is stopped are captured once it starts (catch-up over conversations.history and
conversations.replies), with one reply each; a real process over Socket Mode against the fake Slack."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bot.corpus.ids import slack_case_id
from tests.fakes.slack import BOT_ID, BOT_USER_ID, FakeSlack
from tests.helpers.paths import REPO
from tests.helpers.serving import free_port
from tests.helpers.slackbot import ASSISTANT_BOT, CHANNEL, FLAGGER, SECOND, seed


def serve(slack: FakeSlack, tmp_path: Path, run: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "SLACK_BOT_TOKEN": "xoxb-test-token",
           "SLACK_APP_TOKEN": "xapp-test-token", "SLACK_API_URL": slack.api_url, "EVALBOT_CHANNEL": CHANNEL,
           "EVALBOT_ASSISTANT_IDS": ASSISTANT_BOT}
    log = open(tmp_path / f"serve-{run}.log", "w")  # noqa: SIM115 - the process owns it
    return subprocess.Popen([sys.executable, "-m", "bot", "serve", "--port", str(free_port())], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen, tmp_path: Path, run: int) -> str:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    output = (tmp_path / f"serve-{run}.log").read_text()
    assert proc.returncode == 0, output
    return output


def own_replies(slack: FakeSlack, parent: str) -> list[dict]:
    return [m for m in slack.messages_in(CHANNEL, thread_ts=parent) if m.get("bot_id") == BOT_ID]


@pytest.mark.timeout(180)
def test_flags_made_while_serve_was_stopped_are_captured_after_it_starts(db_url, tmp_path):
    with FakeSlack() as slack:
        seed(slack)
        first = serve(slack, tmp_path, 1)
        try:
            slack.wait_connected(timeout=60)
            slack.wait_for_call("conversations.history", timeout=30)  # the first catch-up: the checkpoint
        finally:
            stop(first, tmp_path, 1)

        # While it is down: a reaction on an assistant reply, and a mention in another thread.
        parent = slack.post(CHANNEL, "How long do I have to return this?", user=FLAGGER)
        reply = slack.post(CHANNEL, "You have 90 days.", bot_id=ASSISTANT_BOT, thread_ts=parent)
        slack.add_reaction(CHANNEL, reply, "triangular_flag_on_post", FLAGGER)
        other = slack.post(CHANNEL, "Can I pay by invoice?", user=SECOND)
        answer = slack.post(CHANNEL, "No, card only.", bot_id=ASSISTANT_BOT, thread_ts=other)
        slack.post(CHANNEL, f"<@{BOT_USER_ID}> we do take invoices", user=SECOND, thread_ts=other)

        second = serve(slack, tmp_path, 2)
        try:
            slack.wait_connected(timeout=60)
            for thread in (parent, other):
                slack.wait_for_call("chat.postMessage", lambda c, t=thread: c.params.get("thread_ts") == t, timeout=60)
        finally:
            output = stop(second, tmp_path, 2)

    corpus = tmp_path / "corpus" / "candidates"
    assert sorted(p.stem for p in corpus.glob("*.yaml")) == sorted([slack_case_id(CHANNEL, reply), slack_case_id(CHANNEL, answer)])
    assert [len(own_replies(slack, t)) for t in (parent, other)] == [1, 1]
    assert "caught up on" in output and "2 flag(s) found" in output

"""`evalbot serve` as a real process: Socket Mode and HTTP (signature verification, health), against the fake Slack."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from bot.corpus.ids import slack_case_id
from tests.fakes.slack import FakeSlack, event_callback, signed_request_headers
from tests.helpers.paths import REPO
from tests.helpers.serving import SECRET, free_port, post, reaction, wait_healthy
from tests.helpers.slackbot import ASSISTANT_BOT, CHANNEL, FLAGGER, seed


@pytest.fixture
def slack():
    with FakeSlack() as fake:
        seed(fake)
        yield fake


def serve(slack: FakeSlack, tmp_path, *args: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "SLACK_BOT_TOKEN": "xoxb-test-token",
        "SLACK_APP_TOKEN": "xapp-test-token",
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": slack.api_url,
        "EVALBOT_CHANNEL": CHANNEL,
        "EVALBOT_ASSISTANT_IDS": ASSISTANT_BOT,
    }
    log = open(tmp_path / "serve.log", "w")
    return subprocess.Popen([sys.executable, "-m", "bot", "serve", *args], env=env, stdout=log, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen, tmp_path) -> str:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=20)
    return (tmp_path / "serve.log").read_text()


def flagged_thread(slack: FakeSlack) -> tuple[str, str]:
    parent = slack.post(CHANNEL, "How long do I have to return this?", user=FLAGGER)
    reply = slack.post(CHANNEL, "You have 90 days.", bot_id=ASSISTANT_BOT, thread_ts=parent)
    return parent, reply


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_serve_over_socket_mode_captures_a_flag_and_stops_cleanly(slack, db_url, tmp_path):
    port = free_port()
    proc = serve(slack, tmp_path, "--port", str(port))
    try:
        slack.wait_connected(timeout=30)
        parent, reply = flagged_thread(slack)
        slack.send_event(reaction(reply))
        call = slack.wait_for_call("chat.postMessage", lambda c: c.params.get("thread_ts") == parent, timeout=20)
        assert slack_case_id(CHANNEL, reply) in json.dumps(call.params)
        wait_healthy(port, proc)
        assert get(port, "/readyz") == (200, '{"ok": true, "problems": {}}')
        # The capture worker reports its outcome just after it has replied in the thread.
        assert wait_for(lambda: 'evalbot_captures_total{outcome="created"} 1.0' in get(port, "/metrics")[1])
        assert post(port, "{}", {}) == 404  # Slack's events come over the socket, never over HTTP here
    finally:
        output = stop(proc, tmp_path)
    assert proc.returncode == 0, output
    assert (tmp_path / "corpus" / "candidates" / f"{slack_case_id(CHANNEL, reply)}.yaml").exists()
    assert "xoxb-test-token" not in output and "xapp-test-token" not in output


def wait_for(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_serve_http_verifies_signatures_and_captures(slack, db_url, tmp_path):
    port = free_port()
    proc = serve(slack, tmp_path, "--http", "--port", str(port))
    try:
        wait_healthy(port, proc)
        parent, reply = flagged_thread(slack)
        body = json.dumps(event_callback(reaction(reply), event_id="EvHttp1"))
        assert post(port, body, signed_request_headers("wrong-secret", body)) == 401
        stale = signed_request_headers(SECRET, body, timestamp=int(time.time()) - 600)
        assert post(port, body, stale) == 401
        assert slack.calls_to("conversations.replies") == []
        assert post(port, body, signed_request_headers(SECRET, body)) == 200
        slack.wait_for_call("chat.postMessage", lambda c: c.params.get("thread_ts") == parent, timeout=20)
        metrics = get(port, "/metrics")[1]
        assert "evalbot_ack_seconds_count 3.0" in metrics  # the two refused requests were timed too
        assert 'evalbot_slack_requests_total{kind="reaction_added"} 1.0' in metrics
    finally:
        output = stop(proc, tmp_path)
    assert proc.returncode == 0, output

"""Two `serve --http` replicas on one PostgreSQL and one bare git remote, as behind a load balancer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import yaml

from tests.fakes.slack import FakeSlack, event_callback, signed_request_headers
from tests.helpers.paths import REPO
from tests.helpers.serving import SECRET, free_port, post, reaction, wait_healthy
from tests.helpers.slackbot import ASSISTANT_BOT, CHANNEL, FLAGGER, SECOND, seed

FLAGS = 6


def replica(slack: FakeSlack, tmp_path, name: str, remote, db_url: str, port: int) -> subprocess.Popen:
    clone = tmp_path / name
    subprocess.run(["git", "clone", "-q", str(remote), str(clone)], check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(REPO), "SLACK_BOT_TOKEN": "xoxb-test-token", "SLACK_SIGNING_SECRET": SECRET,
           "SLACK_API_URL": slack.api_url, "EVALBOT_CHANNEL": CHANNEL, "EVALBOT_ASSISTANT_IDS": ASSISTANT_BOT,
           "EVALBOT_CORPUS_DIR": str(clone / "corpus"), "EVALBOT_GIT_PUSH": str(remote), "EVALBOT_DATABASE_URL": db_url}
    log = open(tmp_path / f"{name}.log", "w")
    return subprocess.Popen([sys.executable, "-m", "bot", "serve", "--http", "--port", str(port)], env=env,
                            stdout=log, stderr=subprocess.STDOUT)


def test_two_replicas_share_dedupe_and_the_corpus(tmp_path, db_url):
    if not db_url.startswith("postgresql"):
        pytest.skip("several replicas need PostgreSQL (its advisory lock serialises their corpus changes)")
    remote = tmp_path / "corpus.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    with FakeSlack() as slack:
        seed(slack)
        replies = []
        for i in range(FLAGS):
            parent = slack.post(CHANNEL, f"Question {i}?", user=FLAGGER)
            replies.append(slack.post(CHANNEL, f"Answer {i}.", bot_id=ASSISTANT_BOT, thread_ts=parent))
        ports = [free_port(), free_port()]
        procs = [replica(slack, tmp_path, f"r{n}", remote, db_url, port) for n, port in enumerate(ports)]
        try:
            for port, proc in zip(ports, procs):
                wait_healthy(port, proc)
            for i, ts in enumerate(replies):
                first = json.dumps(event_callback(reaction(ts), event_id=f"EvR{i}"))
                second = {**reaction(ts), "user": SECOND}
                second_body = json.dumps(event_callback(second, event_id=f"EvS{i}"))
                # The flag lands on one replica, Slack's retry of it on the other, a second flag on either.
                assert post(ports[0], first, signed_request_headers(SECRET, first)) == 200
                assert post(ports[1], first, signed_request_headers(SECRET, first)) == 200
                assert post(ports[i % 2], second_body, signed_request_headers(SECRET, second_body)) == 200
            slack.wait_for_call("chat.postMessage", lambda c: len(slack.calls_to("chat.postMessage")) >= FLAGS, timeout=60)
            slack.wait_for_call("chat.update", lambda c: len(slack.calls_to("chat.update")) >= FLAGS, timeout=60)
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                proc.wait(timeout=30)
        threads = {c.params.get("thread_ts") for c in slack.calls_to("chat.postMessage") if c.params.get("thread_ts")}
        assert len(slack.calls_to("chat.postMessage")) == FLAGS and len(threads) == FLAGS  # one reply per case
    files = subprocess.run(["git", "ls-tree", "-r", "--name-only", "main"], cwd=remote, capture_output=True,
                           text=True, check=True).stdout.split()
    assert len(files) == FLAGS
    for path in files:
        text = subprocess.run(["git", "show", f"main:{path}"], cwd=remote, capture_output=True, text=True, check=True).stdout
        assert sorted(yaml.safe_load(text)["source"]["flagged_by"]) == sorted([FLAGGER, SECOND])
    for proc in procs:
        assert proc.returncode == 0

"""The capture worker process: it dies with its parent (even a SIGKILLed one), and a worker that dies is replaced,
its leased inbox rows returned and captured by the next one. Real processes against the fake Slack."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.capture import inbox
from bot.capture.candidate import FlagRequest
from bot.core.settings import get_settings
from bot.corpus.ids import slack_case_id
from bot.runtime import open_runtime
from bot.slack.flows.capture_worker import CaptureWorker
from tests.fakes.slack import FakeSlack
from tests.helpers.paths import REPO
from tests.helpers.slackbot import ASSISTANT_BOT, CHANNEL, FLAGGER, configure, seed

PARENT = """
import sys, time
from bot.slack.flows.capture_worker import CaptureWorker
worker = CaptureWorker()
worker.start(sys.argv[1])
print(worker.pid, flush=True)
time.sleep(600)
"""


@pytest.fixture
def slack(monkeypatch, db_url):
    with FakeSlack() as fake:
        seed(fake)
        configure(monkeypatch, fake)
        open_runtime()  # migrated before the worker reads the inbox
        yield fake


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie has ended; only its exit status is left


def wait_until(condition, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_the_worker_ends_when_its_parent_is_killed(slack, tmp_path):
    parent = subprocess.Popen([sys.executable, "-c", PARENT, get_settings().database_url], stdout=subprocess.PIPE,
                              text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, start_new_session=True)
    try:
        worker_pid = int(parent.stdout.readline())
        assert wait_until(lambda: len(slack.calls_to("auth.test")) >= 1)  # the worker is up and signed in
        assert running(worker_pid)
        parent.send_signal(signal.SIGKILL)  # the parent alone: the worker is not sent anything
        parent.wait(timeout=10)
        assert wait_until(lambda: not running(worker_pid), timeout=10), "the capture worker outlived its parent"
    finally:
        if parent.poll() is None:
            parent.kill()


def test_a_dead_worker_is_replaced_and_its_leased_flags_captured(slack):
    parent_ts = slack.post(CHANNEL, "How long do I have to return this?", user=FLAGGER)
    reply = slack.post(CHANNEL, "You have 90 days.", bot_id=ASSISTANT_BOT, thread_ts=parent_ts)
    engine = open_runtime().engine
    worker = CaptureWorker()
    worker.start(get_settings().database_url)
    try:
        first = worker.pid
        assert first and wait_until(lambda: len(slack.calls_to("auth.test")) >= 1)
        # A row the worker had taken when it died.
        inbox.enqueue(engine, key="event:EvHeld", flag=FlagRequest(channel=CHANNEL, user_id=FLAGGER, trigger="reaction", ts=reply))
        assert inbox.claim(engine, owner=inbox.owner_id(first), limit=1)
        os.kill(first, signal.SIGKILL)
        call = slack.wait_for_call("chat.postMessage", lambda c: c.params.get("thread_ts") == parent_ts, timeout=30)
        assert slack_case_id(CHANNEL, reply) in call.params["text"]
        assert worker.restarts == 1 and worker.pid != first
    finally:
        worker.stop()

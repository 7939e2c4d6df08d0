"""SIGTERM to `evalbot serve` at any moment of its start (a real process against the fake Slack) stops it within
seconds, exit code 0, leaving no worker process behind and no flag lost: every flag acked before the signal is
captured, once, by the stopped process or the next one."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fakes.slack import BOT_ID, FakeSlack
from tests.helpers.paths import REPO
from tests.helpers.serving import free_port, reaction
from tests.helpers.slackbot import ASSISTANT_BOT, CHANNEL, FLAGGER, seed

STOP_WITHIN_S = 10.0
CONNECTED = "connected to Slack over Socket Mode"
LISTENING = "listening on http://"
PROBE = "EVALBOT_TEST_SHUTDOWN_PROBE"  # in every process serve starts: finds the ones left behind


@pytest.fixture
def slack():
    with FakeSlack() as fake:
        seed(fake)
        yield fake


class Serve:
    """`evalbot serve` (Socket Mode) as a process, with its log."""

    def __init__(self, slack: FakeSlack, log: Path, probe: str):
        self.log = log
        env = {**os.environ, "PYTHONPATH": str(REPO), "SLACK_BOT_TOKEN": "xoxb-test-token",
               "SLACK_APP_TOKEN": "xapp-test-token", "SLACK_API_URL": slack.api_url, "EVALBOT_CHANNEL": CHANNEL,
               "EVALBOT_ASSISTANT_IDS": ASSISTANT_BOT, PROBE: probe}
        with open(log, "w") as out:
            self.proc = subprocess.Popen([sys.executable, "-X", "faulthandler", "-m", "bot", "serve", "--port", str(free_port())],
                                         env=env, stdout=out, stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_logged(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            assert self.proc.poll() is None, f"serve exited before logging {text!r}:\n{self.output()}"
            assert time.monotonic() < deadline, f"serve did not log {text!r}:\n{self.output()}"
            time.sleep(0.002)

    def terminate(self) -> float:
        """SIGTERM, then wait for the exit; the seconds it took (a dump of every thread if it takes too long)."""
        sent = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=STOP_WITHIN_S)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGABRT)  # -X faulthandler: every thread's stack goes to the log
            self.proc.wait(timeout=10)
            pytest.fail(f"serve did not stop within {STOP_WITHIN_S} s of SIGTERM:\n{self.output()}")
        return time.monotonic() - sent


def left_behind(probe: str, grace: float = 5.0) -> list[str]:
    """The command lines of processes started (directly or not) by a serve of this test still alive `grace`
    seconds after it exited (multiprocessing's resource tracker ends once it reads its pipe's end, a moment later)."""
    deadline = time.monotonic() + grace
    while True:
        found = []
        for entry in Path("/proc").iterdir():
            try:
                if entry.name.isdigit() and f"{PROBE}={probe}".encode() in (entry / "environ").read_bytes().split(b"\0"):
                    if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":  # not a zombie
                        found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                continue
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def flag(slack: FakeSlack, flagged: list[tuple[str, str]], *, event: bool = False) -> None:
    """A flag on a new thread: a reaction Slack records while serve is down (its catch-up reads it at connect), or
    with `event` a reaction event serve acks (so it is in the inbox). Either way it must be captured in the end.

    Not both for one flag: a reaction that catch-up reads and that also arrives as an event at the connection
    can become two inbox rows (two keys) and two thread replies, a race of its own that this test is not about."""
    parent = slack.post(CHANNEL, f"Question {len(flagged)}?", user=FLAGGER)
    reply = slack.post(CHANNEL, f"Answer {len(flagged)}.", bot_id=ASSISTANT_BOT, thread_ts=parent)
    if event:
        slack.send_event(reaction(reply), event_id=f"EvStop{len(flagged)}", timeout=10)
    else:
        slack.add_reaction(CHANNEL, reply, "triangular_flag_on_post", FLAGGER)
    flagged.append((parent, reply))


def wait_until(condition: Callable[[], bool], *, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def bot_replies(slack: FakeSlack, parent: str) -> int:
    return sum(1 for m in slack.messages_in(CHANNEL, thread_ts=parent) if m.get("bot_id") == BOT_ID)


@pytest.mark.timeout(300)
def test_sigterm_soon_after_start_stops_serve_cleanly_and_loses_nothing(slack, db_url, tmp_path):
    rng = random.Random(os.environ.get("PYTEST_XDIST_WORKER", "") + str(time.time_ns()))
    probe = uuid.uuid4().hex
    flagged: list[tuple[str, str]] = []

    # Where the signal lands: during the start (once serve's first line is logged: before, the interpreter is still
    # importing and nothing has started), when the socket is up, on the log lines around the handover to uvicorn
    # (its signal handlers replace serve's once its loop runs), and at small random delays after the connection.
    points: list[tuple[str, Callable[[Serve], None]]] = [
        ("while starting", lambda serve: (serve.wait_logged(" INFO "), time.sleep(rng.uniform(0, 0.5)))),
        ("socket connected", lambda serve: slack.wait_connected(timeout=60)),
        ("connected logged", lambda serve: serve.wait_logged(CONNECTED)),
        ("listening logged", lambda serve: serve.wait_logged(LISTENING)),
        ("a flag acked", lambda serve: (slack.wait_connected(timeout=60), flag(slack, flagged, event=True))),
        *((f"connected + {d * 1000:.0f} ms", lambda serve, d=d: (serve.wait_logged(CONNECTED), time.sleep(d)))
          for d in (rng.uniform(0, 0.05), rng.uniform(0.05, 0.3))),
    ]
    took = {}
    for i, (where, wait) in enumerate(points):
        wait_until(lambda: slack.connection_count == 0, what="the last serve's socket to close")
        flag(slack, flagged)  # made while no serve runs
        serve = Serve(slack, tmp_path / f"serve-{i}.log", probe)
        try:
            wait(serve)
        finally:
            if serve.proc.poll() is None:
                took[where] = serve.terminate()
        assert serve.proc.returncode == 0, f"{where}: exit code {serve.proc.returncode}\n{serve.output()}"
        left = left_behind(probe)
        assert not left, f"{where}: processes left behind: {left}\n{serve.output()}"
    assert all(seconds < STOP_WITHIN_S for seconds in took.values()), took

    # The next start captures whatever the stopped ones had not: each flag once.
    wait_until(lambda: slack.connection_count == 0, what="the last serve's socket to close")
    serve = Serve(slack, tmp_path / "serve-last.log", probe)
    try:
        slack.wait_connected(timeout=60)
        wait_until(lambda: all(bot_replies(slack, parent) for parent, _ in flagged), what="every flag captured", timeout=60)
    finally:
        serve.terminate()
    replies = {parent: [m.get("text") for m in slack.messages_in(CHANNEL, thread_ts=parent) if m.get("bot_id") == BOT_ID]
               for parent, _ in flagged}
    assert all(len(texts) == 1 for texts in replies.values()), {p: t for p, t in replies.items() if len(t) != 1}
    assert serve.proc.returncode == 0, serve.output()

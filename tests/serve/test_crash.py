"""No flag is lost: `evalbot serve` (a real process group over Socket Mode) killed with SIGKILL mid-burst, restarted.

200 flags are sent and acked; when about a third of the candidate files exist the whole process group (serve and
its capture worker) is killed; the next `serve` recovers the corpus and captures the rest from the inbox. Every
flag ends as exactly one case with exactly one reply, and the corpus repository is clean and consistent.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.corpus.ids import slack_case_id
from tests.fakes.slack import BOT_ID, FakeSlack, event_callback
from tests.helpers.paths import REPO
from tests.helpers.serving import free_port, reaction
from tests.helpers.slackbot import ASSISTANT_BOT, CHANNEL, FLAGGER, seed

FLAGS = 200
KILL_AT = FLAGS // 3


def serve(slack: FakeSlack, tmp_path: Path, run: int) -> subprocess.Popen:
    """`evalbot serve` in its own process group (so the kill takes the worker too), logging to serve-<run>.log."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "SLACK_BOT_TOKEN": "xoxb-test-token",
           "SLACK_APP_TOKEN": "xapp-test-token", "SLACK_API_URL": slack.api_url, "EVALBOT_CHANNEL": CHANNEL,
           "EVALBOT_ASSISTANT_IDS": ASSISTANT_BOT}
    log = open(tmp_path / f"serve-{run}.log", "w")  # noqa: SIM115 - the process owns it
    return subprocess.Popen([sys.executable, "-m", "bot", "serve", "--port", str(free_port())], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


def wait_until(condition, timeout: float, what: str, every: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(every)


def replied_threads(slack: FakeSlack) -> set[str]:
    """Threads the bot has posted in (cheap to poll: the fake's lock is held briefly)."""
    return {c.params.get("thread_ts") for c in slack.calls_to("chat.postMessage") if c.params.get("thread_ts")}


def git(corpus: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=corpus, capture_output=True, text=True, timeout=60)


def bot_replies(slack: FakeSlack, parent: str) -> int:
    return sum(1 for m in slack.messages_in(CHANNEL, thread_ts=parent) if m.get("bot_id") == BOT_ID)


@pytest.mark.timeout(240)
@pytest.mark.parametrize("stale_lock", [False, True], ids=["kill", "kill-stale-index-lock"])
def test_sigkill_mid_burst_then_restart_loses_and_duplicates_nothing(db_url, tmp_path, stale_lock):
    corpus = tmp_path / "corpus"
    with FakeSlack() as slack:
        seed(slack)
        threads = []
        for i in range(FLAGS):
            parent = slack.post(CHANNEL, f"Question {i}: how long do I have to return item {i}?", user=FLAGGER)
            threads.append((parent, slack.post(CHANNEL, f"You have {90 + i} days.", bot_id=ASSISTANT_BOT, thread_ts=parent)))
        first = serve(slack, tmp_path, 1)
        try:
            slack.wait_connected(timeout=60)
            acks = [slack.send_envelope_nowait("events_api", event_callback(reaction(reply), event_id=f"EvCrash{i:04d}"))
                    for i, (_, reply) in enumerate(threads)]
            candidates = corpus / "candidates"
            wait_until(lambda: candidates.is_dir() and len(list(candidates.glob("*.yaml"))) >= KILL_AT, 120,
                       "a third of the flags were not captured in time")
        finally:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(timeout=10)
        on_disk = len(list(candidates.glob("*.yaml")))
        assert on_disk < FLAGS, "every flag was captured before the kill: the test proves nothing"
        # Slack retries an envelope that was never acked; the ones that were are in the inbox, or nowhere.
        unacked = [i for i, future in enumerate(acks) if not (future.done() and future.exception() is None)]
        if stale_lock:
            git_dir = Path(git(corpus, "rev-parse", "--absolute-git-dir").stdout.strip())
            (git_dir / "index.lock").write_text("")
        wait_until(lambda: slack.connection_count == 0, 20, "the killed bot's socket stayed open")

        second = serve(slack, tmp_path, 2)
        try:
            slack.wait_connected(timeout=60)
            for i in unacked:
                slack.send_envelope("events_api", event_callback(reaction(threads[i][1]), event_id=f"EvCrash{i:04d}"),
                                    retry_attempt=1, retry_reason="timeout", timeout=30)
            parents = {parent for parent, _ in threads}
            wait_until(lambda: parents <= replied_threads(slack), 180, "not every flag was answered after the restart",
                       every=0.1)
            time.sleep(0.5)  # a duplicate reply would come right after the first one
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=30)
        output = (tmp_path / "serve-2.log").read_text()
        assert second.returncode == 0, output

    expected = {slack_case_id(CHANNEL, reply) for _, reply in threads}
    files = sorted(p.stem for p in (corpus / "candidates").glob("*.yaml"))
    assert len(files) == FLAGS and set(files) == expected
    assert [parent for parent, _ in threads if bot_replies(slack, parent) != 1] == []
    log = git(corpus, "log", "--format=%B").stdout
    captured = [m[1] for m in re.finditer(r"^(?:- )?Capture ([a-z0-9]{8}):", log, re.MULTILINE)]
    recovered = log.count("left uncommitted by a crash")
    assert len(set(captured)) == len(captured), "a case was committed twice"
    assert set(captured) <= expected and (len(captured) == FLAGS or recovered)
    fsck = git(corpus, "fsck", "--full")
    assert fsck.returncode == 0 and "error" not in fsck.stderr.lower(), fsck.stderr
    assert git(corpus, "status", "--porcelain").stdout == ""
    assert not list(corpus.rglob(".*.tmp"))
    if stale_lock:
        assert "removed a stale" in output, output

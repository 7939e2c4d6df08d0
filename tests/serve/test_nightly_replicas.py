"""Two real `evalbot serve --http` replicas on one PostgreSQL schema and one fake Slack: one nightly run, one digest.

The slot is real and clock-driven: EVALBOT_NIGHTLY names the current minute (in EVALBOT_TIMEZONE, not UTC), and
the database says a scheduler was waiting for it (what a replica running before the slot leaves behind), so both
replicas start just after their slot, within the grace period, and both try to run it at once. The claim lets
exactly one of them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from bot.core.settings import get_settings
from bot.runtime import open_runtime
from bot.schedule import EXPECTED, JOB, slot_key
from bot.store import claims
from bot.store.tables import EvalRun, JobClaim, session_scope
from tests.fakes.slack import BOT_ID, FakeSlack
from tests.helpers.evalruns import anthropic_corpus, wait_until
from tests.helpers.paths import REPO
from tests.helpers.serving import free_port
from tests.helpers.slackbot import ASSISTANT_BOT, CHANNEL, seed

ZONE = "Asia/Kolkata"  # UTC+05:30: a cron read in UTC would name another slot


def replica(tmp_path, name: str, env: dict[str, str]) -> tuple[subprocess.Popen, object]:
    log_path = tmp_path / f"{name}.log"
    log = open(log_path, "w")
    proc = subprocess.Popen([sys.executable, "-m", "bot", "serve", "--http", "--port", str(free_port())],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    return proc, log_path


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_two_replicas_run_the_nightly_slot_once_and_post_one_digest(db_url, corpus_dir, tmp_path, monkeypatch):
    slot = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    local = slot.astimezone(ZoneInfo(ZONE))
    with FakeSlack() as slack, anthropic_corpus(corpus_dir, monkeypatch):
        seed(slack)
        env = {**os.environ, "PYTHONPATH": str(REPO), "SLACK_BOT_TOKEN": "xoxb-test-token",
               "SLACK_SIGNING_SECRET": "test-signing-secret", "SLACK_API_URL": slack.api_url,
               "EVALBOT_CHANNEL": CHANNEL, "EVALBOT_ASSISTANT_IDS": ASSISTANT_BOT,
               "EVALBOT_NIGHTLY": f"{local.minute} {local.hour} * * *", "EVALBOT_TIMEZONE": ZONE}
        for name in ("EVALBOT_NIGHTLY", "EVALBOT_TIMEZONE"):
            monkeypatch.setenv(name, env[name])
        get_settings.cache_clear()
        rt = open_runtime()  # migrated once here, as a deployment's `evalbot db upgrade` would
        with session_scope(rt.engine) as session:
            claims.claim(session, job=EXPECTED, slot=slot_key(slot), holder="replica-before-restart")
        replicas = [replica(tmp_path, name, env) for name in ("a", "b")]
        def settled() -> bool:
            for proc, log in replicas:
                assert proc.poll() is None, f"a replica exited early:\n{log.read_text()}"
            decided = all("nightly run " in log.read_text() for _, log in replicas)
            return decided and bool(slack.calls_to("files.completeUploadExternal"))

        try:
            wait_until(settled, timeout=60, what="both replicas deciding about the slot, and a digest")
            time.sleep(0.5)  # room for a second digest, were there one
        finally:
            for proc, _ in replicas:
                proc.send_signal(signal.SIGTERM)
            codes = [proc.wait(timeout=20) for proc, _ in replicas]
        logs = [p.read_text() for _, p in replicas]
        assert codes == [0, 0], logs
        assert sorted("claimed by" in log for log in logs) == [False, True], logs
        assert sum("another process claimed this slot" in log for log in logs) == 1, logs
        with session_scope(rt.engine) as session:
            rows = session.exec(select(EvalRun)).all()
            assert [(r.trigger, r.status, r.passed) for r in rows] == [("nightly", "finished", 6)]
            assert session.exec(select(JobClaim.slot).where(JobClaim.job == JOB)).all() == [slot_key(slot)]
        digests = [m for m in slack.messages_in(CHANNEL) if m.get("bot_id") == BOT_ID]
        assert [m["text"] for m in digests] == ["Eval run #1: 100% passed (6/6), 0 regressions"]
        assert rows[0].digest_ts == digests[0]["ts"]
        assert len(slack.files) == 1 and len(slack.calls_to("files.completeUploadExternal")) == 1

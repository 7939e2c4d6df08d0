"""`evalbot serve` (a real process over Socket Mode) resumes the nightly run a stop interrupted, and posts one digest.

The nightly run was stopped half-way (Ctrl-C in its target, which records it "interrupted" with the cases graded
until then); the next `serve` grades only the cases it had not graded, against the fake Anthropic as evalbot.toml
says, finishes that same run and posts its digest: no "run failed" message first, no second run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from sqlmodel import select

from bot.evals.evaluate import run_eval
from bot.runtime import open_runtime
from bot.store.tables import CaseResult, EvalRun, session_scope
from tests.conftest import REPO
from tests.fakes.anthropic import forced_tool
from tests.fakes.slack import FakeSlack
from tests.helpers.evalruns import anthropic_corpus, wait_until
from tests.helpers.evals import GOOD, FakeTarget, PassingJudge
from tests.helpers.serving import free_port
from tests.helpers.slackbot import ASSISTANT_BOT, CHANNEL, seed

STOP_AT = "2tj51dm1"


def ctrl_c_at(case):
    if case.id == STOP_AT:
        raise KeyboardInterrupt
    return GOOD[case.id]


def test_serve_resumes_the_interrupted_nightly_run_and_posts_its_digest(db_url, corpus_dir, tmp_path, monkeypatch):
    with FakeSlack() as slack, anthropic_corpus(corpus_dir, monkeypatch) as fake:
        seed(slack)
        rt = open_runtime()
        with pytest.raises(KeyboardInterrupt):
            run_eval(rt, trigger="nightly", target=FakeTarget(default=ctrl_c_at), judge=PassingJudge(), concurrency=1)
        with session_scope(rt.engine) as session:
            graded_before = set(session.exec(select(CaseResult.case_id)))
            [run] = session.exec(select(EvalRun)).all()
            assert run.status == "failed" and run.error.startswith("interrupted")
        assert 0 < len(graded_before) < len(GOOD)

        env = {**os.environ, "PYTHONPATH": str(REPO), "SLACK_BOT_TOKEN": "xoxb-test-token",
               "SLACK_APP_TOKEN": "xapp-test-token", "SLACK_API_URL": slack.api_url, "EVALBOT_CHANNEL": CHANNEL,
               "EVALBOT_ASSISTANT_IDS": ASSISTANT_BOT}
        log = tmp_path / "serve.log"
        with open(log, "w") as out:
            serve = subprocess.Popen([sys.executable, "-m", "bot", "serve", "--port", str(free_port())], env=env,
                                     stdout=out, stderr=subprocess.STDOUT)
        try:
            def posted() -> bool:
                assert serve.poll() is None, log.read_text()
                with session_scope(rt.engine) as session:
                    resumed = session.get(EvalRun, run.id)
                    return resumed is not None and resumed.digest_ts is not None
            wait_until(posted, timeout=90, interval=0.1, what="the resumed run's digest")
        finally:
            serve.send_signal(signal.SIGTERM)
            serve.wait(timeout=30)
        asked = [r for r in fake.requests if forced_tool(r.json) is None]  # the target's calls, not the judge's
        channel_posts = [c.params.get("text") or "" for c in slack.calls_to("chat.postMessage")
                         if c.params.get("channel") == CHANNEL and not c.params.get("thread_ts")]

    with session_scope(rt.engine) as session:
        runs = session.exec(select(EvalRun)).all()
        rows = list(session.exec(select(CaseResult.case_id).where(CaseResult.run_id == run.id)))
    assert [(r.id, r.status, r.passed) for r in runs] == [(run.id, "finished", len(GOOD))], log.read_text()
    assert sorted(rows) == sorted(GOOD)
    assert len(asked) == len(GOOD) - len(graded_before)  # only the cases not graded before the stop
    assert len(channel_posts) == 1 and "failed" not in channel_posts[0].lower(), channel_posts
    assert f"resuming run {run.id}" in log.read_text()

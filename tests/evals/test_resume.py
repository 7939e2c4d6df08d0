"""A run that stopped half-way is taken up again: one run, each case graded once.

In process, on both databases: a run that breaks after some cases keeps what it graded and `resume_eval` grades the
rest; the nightly run a stop interrupted is found and resumed by `runs.resume_interrupted`. As processes: `evalbot
eval run` killed with SIGKILL mid-run against the fake Anthropic, then `evalbot eval run --resume RUN`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlmodel import func, select

from bot.core.errors import ConfigError
from bot.corpus.casefile import dump_case
from bot.corpus.files import Corpus
from bot.corpus.gitrepo import SYSTEM
from bot.corpus.schema import Case
from bot.evals import runs
from bot.evals.evaluate import resume_eval, run_eval
from bot.evals.sync_run import flip_candidates
from bot.runtime import open_runtime
from bot.store.tables import CaseResult, EvalRun, TrialResult, session_scope
from tests.conftest import REPO
from tests.fakes.anthropic import FakeAnthropic
from tests.helpers.evals import GOOD, FakeTarget, PassingJudge, replies

pytestmark = pytest.mark.migrated_db  # the database starts migrated: each test's first use of it migrates in-process


@pytest.fixture
def rt(db_url, corpus_dir):
    return open_runtime()


def case_rows(rt, run_id: int) -> list[str]:
    with session_scope(rt.engine) as session:
        return list(session.exec(select(CaseResult.case_id).where(CaseResult.run_id == run_id)))


def run_row(rt, run_id: int) -> EvalRun:
    with session_scope(rt.engine) as session:
        run = session.get(EvalRun, run_id)
        session.expunge(run)
        return run


def test_a_run_that_breaks_keeps_what_it_graded_and_resume_grades_only_the_rest(rt):
    broken = replies({**GOOD, "2tj51dm1": RuntimeError("the model host went away")})
    with pytest.raises(RuntimeError):
        run_eval(rt, target=broken, concurrency=1, judge=PassingJudge())
    with session_scope(rt.engine) as session:
        [run_id] = session.exec(select(EvalRun.id)).all()
    stopped = run_row(rt, run_id)
    graded_first = case_rows(rt, run_id)
    assert stopped.status == "failed" and "the model host went away" in stopped.error
    assert 0 < len(graded_first) < len(GOOD) and "2tj51dm1" not in graded_first

    again = replies(GOOD)
    report = resume_eval(rt, run_id, target=again, judge=PassingJudge())
    finished = run_row(rt, run_id)
    assert report.run_id == run_id and finished.status == "finished" and finished.error is None
    assert sorted(case_rows(rt, run_id)) == sorted(GOOD)  # every case once, in the one run
    assert sorted(case_id for case_id, _ in again.calls) == sorted(set(GOOD) - set(graded_first))
    assert (finished.cases_total, finished.passed) == (len(GOOD), len(GOOD))
    with session_scope(rt.engine) as session:
        assert session.exec(select(func.count()).select_from(EvalRun)).one() == 1
        assert session.exec(select(func.count()).select_from(TrialResult)).one() == len(GOOD)
    assert "plan" not in finished.target  # the resume state goes when the run finishes


def test_resume_refuses_what_it_cannot_take_up(rt, corpus_dir):
    report = run_eval(rt, target=replies(GOOD), judge=PassingJudge())
    with pytest.raises(ConfigError, match=f"run {report.run_id} finished already"):
        resume_eval(rt, report.run_id, target=replies(GOOD), judge=PassingJudge())
    with pytest.raises(ConfigError, match="there is no run 99"):
        resume_eval(rt, 99, target=replies(GOOD), judge=PassingJudge())
    with pytest.raises(RuntimeError):
        run_eval(rt, target=replies({**GOOD, "2tj51dm1": RuntimeError("down")}), concurrency=1, judge=PassingJudge())
    toml = corpus_dir / "evalbot.toml"
    toml.write_text(toml.read_text() + "\n# a change\n")
    with pytest.raises(ConfigError, match="evalbot.toml or a prompt it names changed since the run started"):
        resume_eval(rt, report.run_id + 1, target=replies(GOOD), judge=PassingJudge())


def ctrl_c_at(stop_at: str):
    def answer(case):
        if case.id == stop_at:
            raise KeyboardInterrupt
        return GOOD[case.id]

    return answer


def test_an_interrupted_nightly_run_is_resumed_and_other_failures_are_not(rt):
    with pytest.raises(KeyboardInterrupt):
        run_eval(rt, trigger="nightly", target=FakeTarget(default=ctrl_c_at("2tj51dm1")), concurrency=1,
                 judge=PassingJudge())
    interrupted = run_row(rt, 1)
    assert interrupted.error.startswith("interrupted: stopped before the end")
    assert "--resume 1" in interrupted.error
    with pytest.raises(RuntimeError):
        run_eval(rt, trigger="cli", target=replies({**GOOD, "2tj51dm1": RuntimeError("down")}), concurrency=1, judge=PassingJudge())

    assert runs.resume_interrupted(rt, trigger="cli") is None  # a failure of its own is not an interruption
    assert run_row(rt, 2).status == "failed"
    outcome = runs.resume_interrupted(rt, trigger="nightly", target=replies(GOOD), judge=PassingJudge())
    assert outcome is not None and outcome.run_id == 1 and outcome.report is not None and outcome.error is None
    assert run_row(rt, 1).status == "finished" and sorted(case_rows(rt, 1)) == sorted(GOOD)
    assert runs.resume_interrupted(rt, trigger="nightly", target=replies(GOOD)) is None  # nothing left to resume


def test_a_resumed_run_re_runs_its_flips_once(rt):
    first = run_eval(rt, target=replies(GOOD), judge=PassingJudge())
    assert first.comparison.run.passed == len(GOOD)
    with pytest.raises(RuntimeError):
        run_eval(rt, target=replies({**GOOD, "tne841s8": "No.", "2tj51dm1": RuntimeError("down")}), concurrency=1, judge=PassingJudge())
    second = replies({**GOOD, "tne841s8": "No."})
    report = resume_eval(rt, 2, target=second, judge=PassingJudge())
    assert [c.case_id for c in report.comparison.regressions] == ["tne841s8"]
    assert sum(case_id == "tne841s8" for case_id, _ in second.calls) > 1  # re-run, as any flip is
    assert sorted(case_rows(rt, 2)) == sorted(GOOD)


def test_flip_candidates_are_status_changes_and_open_regressions():
    now = {"a": "fail", "b": "pass", "c": "fail", "d": "error", "e": "fail"}
    before = {"a": "pass", "b": "fail", "c": "fail", "d": "pass"}
    assert flip_candidates(now, before, pending={"c"}) == ["a", "b", "c"]


# ---------------------------------------------------------------- as processes: SIGKILL, then --resume

CASES = 120


def many_cases(folder: Path) -> list[str]:
    """A corpus of CASES promoted cases the fake's echo passes, committed."""
    (folder / "cases").mkdir(parents=True)
    (folder / "prompts").mkdir()
    (folder / "prompts" / "system.md").write_text("You are a support assistant.\n")
    (folder / "evalbot.toml").write_text('[target]\nkind = "anthropic"\nmodel = "claude-haiku-4-5"\n'
                                         'system_prompt = "prompts/system.md"\n\n[run]\nretries = 0\n')
    flagged = datetime(2026, 1, 1, tzinfo=timezone.utc)
    ids = []
    for n in range(CASES):
        case = Case.model_validate({
            "id": f"k{n:07d}", "title": f"Question {n}", "status": "promoted",
            "source": {"kind": "slack", "channel": "C0RESUME", "ts": f"{1767225600 + n}.000100",
                       "flagged_by": ["U0FLAGGER"], "flagged_at": flagged + timedelta(minutes=n)},
            "conversation": [{"role": "user", "content": f"How long do I have to return item {n}?"},
                             {"role": "assistant", "content": "30 days."}],
            "expect": [{"contains": "Fake reply"}], "promoted_by": "U0LEAD", "promoted_at": flagged,
        })
        (folder / "cases" / f"{case.id}.yaml").write_text(dump_case(case))
        ids.append(case.id)
    Corpus(folder).repo.commit([folder], message="cases", author=SYSTEM)
    return ids


@pytest.mark.migrated_db(False)  # starts on an empty database
def test_a_run_killed_half_way_and_resumed_grades_each_case_once_and_records_one_run(db_url, tmp_path):
    corpus = tmp_path / "many"
    ids = many_cases(corpus)
    with FakeAnthropic(latency=0.05) as fake:
        env = {**os.environ, **fake.env(), "PYTHONPATH": str(REPO), "EVALBOT_CORPUS_DIR": str(corpus),
               "EVALBOT_DATABASE_URL": db_url}
        argv = [sys.executable, "-m", "bot", "eval", "run", "--concurrency", "2"]
        first = subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 start_new_session=True)
        rt = open_runtime()
        try:
            deadline = time.monotonic() + 60
            while not (run_exists(rt) and case_rows(rt, 1)):
                assert first.poll() is None, first.communicate()
                assert time.monotonic() < deadline, "no case was saved in time"
                time.sleep(0.05)
        finally:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(timeout=10)
        saved = case_rows(rt, 1)
        asked_before = len(fake.requests)
        assert 0 < len(saved) < CASES and run_row(rt, 1).status == "running"

        resumed = subprocess.run([*argv, "--resume", "1"], env=env, cwd=tmp_path, capture_output=True, text=True,
                                 timeout=120)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        asked_after = len(fake.requests) - asked_before

    run = run_row(rt, 1)
    rows = case_rows(rt, 1)
    assert run.status == "finished" and (run.cases_total, run.passed) == (CASES, CASES)
    assert len(rows) == len(set(rows)) == CASES and set(rows) == set(ids)
    assert asked_after == CASES - len(saved)  # the cases saved before the kill were not asked again
    with session_scope(rt.engine) as session:
        assert session.exec(select(func.count()).select_from(EvalRun)).one() == 1
    assert "Traceback" not in resumed.stderr


def run_exists(rt) -> bool:
    with session_scope(rt.engine) as session:
        return session.get(EvalRun, 1) is not None


@pytest.mark.migrated_db(False)  # starts on an empty database
def test_ctrl_c_keeps_the_run_and_says_how_to_resume_it(db_url, tmp_path):
    corpus = tmp_path / "many"
    many_cases(corpus)
    with FakeAnthropic(latency=0.05) as fake:
        env = {**os.environ, **fake.env(), "PYTHONPATH": str(REPO), "EVALBOT_CORPUS_DIR": str(corpus),
               "EVALBOT_DATABASE_URL": db_url}
        first = subprocess.Popen([sys.executable, "-m", "bot", "eval", "run", "--concurrency", "2"], env=env,
                                 cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        rt = open_runtime()
        deadline = time.monotonic() + 60
        while len(fake.requests) < 10:
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.02)
        first.send_signal(signal.SIGINT)
        out, err = first.communicate(timeout=60)
    assert first.returncode == 130, out + err
    assert err.strip().splitlines()[-1] == "stopped: run 1 is kept; resume it with `evalbot eval run --resume 1`", err
    assert "Traceback" not in err
    stopped = run_row(rt, 1)
    assert stopped.status == "failed" and stopped.error.startswith("interrupted: stopped before the end")
    assert 0 < len(case_rows(rt, 1)) < CASES  # what was graded before Ctrl-C is saved

"""run_eval's records and compare_runs, on SQLite and PostgreSQL (the `db_url` fixture)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from sqlmodel import select

from bot.core.errors import CallFailed, ConfigError
from bot.evals import records
from bot.evals.compare import compare_runs
from bot.evals.config import fingerprint, load_eval_config
from bot.evals.evaluate import run_eval
from bot.runtime import open_runtime
from bot.store.tables import CaseResult, EvalRun, TrialResult, session_scope
from tests.helpers.evals import GOOD, PassingJudge, replies

pytestmark = pytest.mark.migrated_db  # the database starts migrated: each test's first use of it migrates in-process


@pytest.fixture
def rt(db_url, corpus_dir):
    return open_runtime()


def test_a_run_is_recorded_with_its_cases_and_trials(rt, corpus_dir):
    report = run_eval(rt, trials=2, target=replies(GOOD), judge=PassingJudge())
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=corpus_dir, capture_output=True, text=True).stdout.strip()
    with session_scope(rt.engine) as session:
        run = session.get(EvalRun, report.run_id)
        cases = session.exec(select(CaseResult).where(CaseResult.run_id == run.id)).all()
        trials = session.exec(select(TrialResult).where(TrialResult.run_id == run.id)).all()
    assert run.status == "finished" and run.trigger == "cli" and run.mode == "sync" and run.finished_at is not None
    assert run.corpus_commit == head
    assert run.config_fingerprint == fingerprint(corpus_dir, load_eval_config(corpus_dir))
    assert (run.cases_total, run.passed, run.failed, run.errored, run.flaky, run.trials) == (6, 6, 0, 0, 0, 2)
    # tokens: 12 target calls of (10 in, 5 out) + 8 rubric judgements of (50, 10)
    assert (run.input_tokens, run.output_tokens) == (12 * 10 + 8 * 50, 12 * 5 + 8 * 10)
    assert run.cost_usd == pytest.approx((120 * 1 + 60 * 5 + 400 * 3 + 80 * 15) / 1e6)
    assert run.latency_p50_ms is not None and run.latency_p95_ms is not None
    info = records.target_info(run)
    assert info["label"] == "fake:target" and info["judge"] == "claude-sonnet-4-6" and info["cost_note"] is None
    assert set(info["models"]) == {"claude-haiku-4-5", "claude-sonnet-4-6"}
    assert len(cases) == 6 and all(c.status == "pass" and c.pass_rate == 1.0 and c.trials == 2 for c in cases)
    assert {c.permalink for c in cases if c.case_id == "tne841s8"} == {"https://acme-outdoor.slack.com/archives/C07SUPPORT/p1763600000000100"}
    assert len(trials) == 12
    trial = next(t for t in trials if t.case_id == "tne841s8" and t.trial == 1)
    assert trial.output == GOOD["tne841s8"] and trial.status == "pass"
    assert [v["kind"] for v in trial.verdicts] == ["rubric", "not_contains", "regex"]
    assert trial.verdicts[2] == {"kind": "regex", "passed": True, "message": "matches /\\b30[- ]day/ at '30 day'", "error": False}
    assert (trial.input_tokens, trial.output_tokens) == (60, 15)


def test_failures_and_errors_are_recorded_with_their_messages(rt):
    table = {**GOOD, "tne841s8": "You have 90 days.", "2tj51dm1": CallFailed("HTTP 529 OverloadedError")}
    report = run_eval(rt, target=replies(table), judge=PassingJudge())
    with session_scope(rt.engine) as session:
        rows = {c.case_id: c for c in records.case_results(session, report.run_id)}
        [errored] = records.trial_results(session, report.run_id, case_id="2tj51dm1")
    assert rows["tne841s8"].status == "fail"
    assert "not_contains: expected no '90 days'; found it at char 9" in rows["tne841s8"].failure
    assert "regex: expected a match for /\\b30[- ]day/; got 'You have 90 days.'" in rows["tne841s8"].failure
    assert rows["2tj51dm1"].status == "error" and "HTTP 529" in rows["2tj51dm1"].failure
    assert errored.status == "error" and errored.output is None and errored.verdicts == []
    assert (report.comparison.run.failed, report.comparison.run.errored) == (1, 1)


def test_unknown_model_prices_leave_a_note(rt):
    target = replies(GOOD)
    target.model = "house-model-7"
    report = run_eval(rt, target=target, judge=PassingJudge())
    assert report.comparison.run.cost_note == "cost unknown for house-model-7 (not in the price table; counted as $0)"
    assert report.comparison.run.cost_usd == pytest.approx((200 * 3 + 40 * 15) / 1e6)  # the judge's tokens only


def test_a_run_that_breaks_is_recorded_as_failed_and_never_a_baseline(rt):
    with pytest.raises(RuntimeError):
        run_eval(rt, target=replies({**GOOD, "a1zrnt4i": RuntimeError("bug")}), judge=PassingJudge())
    with session_scope(rt.engine) as session:
        [run] = records.recent_runs(session)
        assert run.status == "failed" and "RuntimeError: bug" in run.error
        assert records.latest_finished_run(session) is None


def write_case(corpus: Path, case_id: str, expect: list[dict]) -> None:
    data = yaml.safe_load((corpus / "cases" / "tne841s8.yaml").read_text())
    data.update(id=case_id, title=f"Added case {case_id}", expect=expect)
    (corpus / "cases" / f"{case_id}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


def test_compare_finds_regressions_fixes_new_removed_failing_errors_and_flaky(rt, corpus_dir):
    first = {**GOOD, "2tj51dm1": "no", "ewjirjst": "I've cancelled it.", "rfsv4ymg": CallFailed("down")}
    run1 = run_eval(rt, target=replies(first), judge=PassingJudge())
    assert run1.comparison.baseline is None and len(run1.comparison.new) == 6 and not run1.comparison.regressions

    write_case(corpus_dir, "newc0001", [{"contains": "30 days"}])
    second = {
        **GOOD,
        "tne841s8": "You have 90 days.",  # pass -> fail: regression
        "2tj51dm1": "YES",  # fail -> pass: fix
        "ewjirjst": "I've cancelled it.",  # fail -> fail: still failing
        "rfsv4ymg": "BAD " * 3 + "$75",  # error -> fail: still failing (did not pass before)
        "1breqg51": CallFailed("timeout"),  # pass -> error
        "a1zrnt4i": ["I cannot see payment details.", "BAD"],  # flaky: pass then fail
        "newc0001": "30 days",  # new
    }
    run2 = run_eval(rt, trials=2, target=replies(second), judge=PassingJudge())
    cmp = run2.comparison
    ids = lambda items: sorted(c.case_id for c in items)  # noqa: E731
    assert cmp.baseline.id == run1.run_id
    assert ids(cmp.regressions) == ["tne841s8"]  # re-run: 0/5, confirmed
    assert ids(cmp.unconfirmed) == ["a1zrnt4i"]  # a flaky case that misses the threshold: its re-run did not confirm
    assert ids(cmp.fixes) == ["2tj51dm1"]
    assert ids(cmp.new) == ["newc0001"]
    assert cmp.removed == []
    assert ids(cmp.still_failing) == ["ewjirjst", "rfsv4ymg"]
    assert ids(cmp.errors) == ["1breqg51"]
    assert ids(cmp.flaky) == ["a1zrnt4i"]
    assert cmp.has_regressions and cmp.pass_rate_change == pytest.approx(2 / 7 - 3 / 6)  # passed: 3 of 6, then 2 of 7
    flaky = next(c for c in cmp.cases if c.case_id == "a1zrnt4i")
    # its two trials (pass, fail) and one re-run trial (the fake cycles its replies: the third is a pass, and a pass ends this re-run)
    assert (flaky.trials, flaky.baseline_status, flaky.baseline_pass_rate) == (3, "pass", 1.0)
    assert flaky.confirmation.rerun == 1 and flaky.confirmation.decision == "unconfirmed"

    # a run of a subset: the rest is "removed" (not run this time); the baseline is the previous finished run
    run3 = run_eval(rt, case_ids=["tne8"], target=replies(GOOD), judge=PassingJudge())
    assert run3.comparison.baseline.id == run2.run_id
    assert ids(run3.comparison.fixes) == ["tne841s8"]
    assert [r.case_id for r in run3.comparison.removed] == sorted(set(second) - {"tne841s8"})

    # an explicit baseline, and compare_runs on its own (what `eval report` and the digest use)
    with session_scope(rt.engine) as session:
        again = compare_runs(session, run3.run_id, baseline_id=run1.run_id)
        stored = session.get(EvalRun, run3.run_id)
    assert again.baseline.id == run1.run_id and ids(again.fixes) == []
    assert stored.baseline_run_id == run2.run_id


def test_selection_by_tag_and_id(rt):
    report = run_eval(rt, tags=["format"], case_ids=["ewji"], target=replies(GOOD), judge=PassingJudge())
    assert [c.case_id for c in report.comparison.cases] == ["1breqg51", "2tj51dm1", "ewjirjst"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"case_ids": ["zzzz"]}, "--case zzzz: no promoted case has an id starting with 'zzzz'"),
        ({"tags": ["nope"]}, "no promoted case has the tag(s) nope"),
        ({"baseline_id": 42}, "--baseline: there is no run 42"),
        ({"trials": 0}, "trials must be at least 1"),
    ],
)
def test_configuration_mistakes_are_refused_before_a_run_is_recorded(rt, kwargs, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run_eval(rt, target=replies(GOOD), judge=PassingJudge(), **kwargs)
    with session_scope(rt.engine) as session:
        assert records.recent_runs(session) == []


def test_rubric_cases_need_the_api_key_for_the_judge(rt):
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY is not set: the judge of rubric expectations"):
        run_eval(rt, target=replies(GOOD))


def test_the_run_record_holds_json_target_info(rt):
    report = run_eval(rt, case_ids=["2tj5"], target=replies(GOOD))  # no rubric: no judge needed
    with session_scope(rt.engine) as session:
        run = session.get(EvalRun, report.run_id)
    info = json.loads(run.target)
    assert info.pop("confirm") == {} and info.pop("quarantined") == [] and "evalbot" in info.pop("system")
    assert info == {
        "label": "fake:target", "judge": None, "cost_note": None,
        "models": {"claude-haiku-4-5": {"input_tokens": 10, "output_tokens": 5, "cost_usd": pytest.approx(3.5e-05)}},
    }

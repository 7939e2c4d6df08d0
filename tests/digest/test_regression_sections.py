"""The digest's issue-17 parts: confirmed regressions with their re-run, unconfirmed flips, flaky across runs, and
what changed since the baseline — from real runs (run_eval with a fake target) to Block Kit."""

from __future__ import annotations

import json
import subprocess

import pytest

from bot.digest.data import load_digest
from bot.evals.evaluate import run_eval
from bot.evals.render.report import format_comparison
from bot.runtime import open_runtime
from bot.slack.blocks import digest as db
from bot.store.tables import session_scope
from tests.helpers.evals import GOOD, PassingJudge, replies

pytestmark = pytest.mark.migrated_db  # the database starts migrated: each test's first use of it migrates in-process


@pytest.fixture
def rt(db_url, corpus_dir):
    return open_runtime()


def commit_prompt_change(corpus_dir) -> str:
    prompt = corpus_dir / "prompts" / "system.md"
    prompt.write_text(prompt.read_text() + "Answer in one short paragraph.\n")
    git = ["git", "-c", "user.name=Test", "-c", "user.email=test@example.invalid"]
    subprocess.run([*git, "commit", "-qam", "shorter answers"], cwd=corpus_dir, check=True)
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=corpus_dir, capture_output=True, text=True).stdout.strip()


def test_the_digest_separates_confirmed_regressions_from_unconfirmed_flips_and_names_the_change(rt, corpus_dir):
    first = run_eval(rt, target=replies(GOOD), judge=PassingJudge())
    head = commit_prompt_change(corpus_dir)
    second = {**GOOD, "2tj51dm1": "Probably yes.",  # a real regression: fails every re-run
              "a1zrnt4i": ["BAD", GOOD["a1zrnt4i"]]}  # fails once, passes on re-run: noise
    run = run_eval(rt, target=replies(second), judge=PassingJudge())
    with session_scope(rt.engine) as session:
        digest = load_digest(session, run.run_id)
    assert [i.case_id for i in digest.regressions] == ["2tj51dm1"]
    assert digest.regressions[0].detail.startswith("0/5 on re-run (1/1 before): trial 1: equals: expected exactly 'YES'")
    assert [(i.case_id, i.detail) for i in digest.unconfirmed] == [("a1zrnt4i", "1/1 on re-run (1/1 before)")]
    assert digest.changes == (f"system prompt changed in {head[:7]}: +1 −0 lines",)
    message = db.digest_message(digest)
    text = json.dumps(message.blocks, ensure_ascii=False)
    assert db.HEADINGS["unconfirmed"] in text and db.HEADINGS["regressions"] in text
    assert f":mag: *Since run #{first.run_id}:* system prompt changed in {head[:7]}: +1 −0 lines" in text
    assert "1 regression · 1 unconfirmed flip" in text
    report = format_comparison(run.comparison)
    assert f"changed since run {first.run_id}: system prompt changed in {head[:7]}: +1 −0 lines" in report
    assert "Unconfirmed flips (the re-run did not confirm them: likely noise): 1" in report


def test_a_case_flipping_across_runs_is_flaky_with_its_history(rt):
    answers = [GOOD["tne841s8"], "You have 90 days."]
    for night in range(4):  # pass, fail, pass, fail: three flips
        table = {**GOOD, "tne841s8": answers[night % 2]}
        run = run_eval(rt, case_ids=["tne8"], target=replies(table), judge=PassingJudge(), trials=1)
    with session_scope(rt.engine) as session:
        digest = load_digest(session, run.run_id)
    flaky = {i.case_id: i.detail for i in digest.flaky}
    assert list(flaky) == ["tne841s8"]
    assert "over the last 4 runs" in flaky["tne841s8"] and "3 flips" in flaky["tne841s8"]
    assert "Flaky (passed and failed across trials or recent runs): 1" in format_comparison(run.comparison)


def test_eval_status_shows_judge_agreement_when_verdicts_were_reviewed():
    agreement = "judge agrees with people on 5 of 6 reviewed verdicts (83%); least: 'Is polite' 1/2"
    message = db.status_message(last=None, last_regressions=None, digest_link=None, running=None, running_by=None,
                                next_run=None, schedule="0 2 * * * UTC", judge_agreement=agreement)
    text = message.blocks[0]["text"]["text"]
    assert text.endswith(":scales: *Judge:* judge agrees with people on 5 of 6 reviewed verdicts (83%); least: 'Is polite' 1/2")
    plain = db.status_message(last=None, last_regressions=None, digest_link=None, running=None, running_by=None,
                              next_run=None, schedule="0 2 * * * UTC")
    assert "Judge" not in plain.blocks[0]["text"]["text"]

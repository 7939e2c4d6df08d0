"""Batch mode end to end: run_eval and resume_batch_runs with the real SDK against the fake Message Batches API.

Every test runs on SQLite and PostgreSQL (`db_url`). Polling is made fast (`FAST`); nothing sleeps for real
beyond a few hundredths of a second per poll.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from datetime import timedelta

import pytest

from bot.core.usage import Usage, estimate_cost
from bot.evals import records
from bot.evals.batch.api import PollPolicy, answer_of, custom_id, split_requests
from bot.evals.batch.resume import resumable_run_ids, resume_batch_runs
from bot.evals.evaluate import run_eval, run_eval_async
from bot.evals.judge import escape_data
from bot.evals.render.report import format_comparison
from bot.runtime import open_runtime
from bot.store.tables import EvalRun, session_scope
from tests.fakes.anthropic import FakeAnthropic, flatten_text, forced_tool
from tests.helpers.evalruns import anthropic_corpus, anthropic_toml
from tests.helpers.evals import GOOD, PassingJudge, replies

pytestmark = pytest.mark.migrated_db  # the database starts migrated: each test's first use of it migrates in-process

FAST = PollPolicy(initial=0.01, factor=2, maximum=0.05)
TOML = anthropic_toml(mode="batch", retries=1)
RUBRIC_INDEX = {"a1zrnt4i": 2, "ewjirjst": 2, "rfsv4ymg": 2, "tne841s8": 0}  # where each case's rubric is


def responder(questions: dict[str, str], answers: dict[str, str], failing_replies: tuple[str, ...]):
    """The target answers `answers[case id]`; the judge fails a reply containing one of `failing_replies`."""

    def respond(request):
        content = flatten_text(request["messages"][-1]["content"])
        if forced_tool(request) is not None:
            failed = any(escape_data(text) in content for text in failing_replies)
            return {"reasoning": "Judged by the fake.", "verdict": "fail" if failed else "pass"}
        return answers[questions[content]]

    return respond


@pytest.fixture
def fake(db_url, corpus_dir, monkeypatch):
    with anthropic_corpus(corpus_dir, monkeypatch, toml=TOML) as server:
        server.rt = open_runtime()
        server.answers.update(GOOD)
        server.responder = responder(server.questions, server.answers, ())
        yield server


def creates(fake: FakeAnthropic) -> list[list[str]]:
    """The custom_ids of each batch the fake was asked to create, in order."""
    return [[r["custom_id"] for r in req.json["requests"]] for req in fake.requests
            if req.method == "POST" and req.path == "/v1/messages/batches"]


def stored(rt, run_id: int) -> EvalRun:
    with session_scope(rt.engine) as session:
        return session.get(EvalRun, run_id)


def statuses(report) -> dict[str, str]:
    return {c.case_id: c.status for c in report.comparison.cases}


def batch_cost(fake: FakeAnthropic) -> tuple[float, float]:
    """What the fake's batch results cost at batch price, and at the synchronous price."""
    half = full = 0.0
    for batch in fake.batches.values():
        for line in batch.results:
            if line["result"]["type"] == "succeeded":
                message = line["result"]["message"]
                half += estimate_cost(message["model"], Usage.of(message), batch=True)
                full += estimate_cost(message["model"], Usage.of(message))
    return half, full


def test_a_batch_run_end_to_end(fake):
    fake.batch_processing_seconds = 0.1  # polled `in_progress` a few times before it ends
    fake.answers["tne841s8"] = "You have 90 days."  # fails its deterministic expectations
    fake.responder = responder(fake.questions, fake.answers, failing_replies=(GOOD["rfsv4ymg"],))
    fake.batch_outcomes["2tj51dm1-0-t"] = "errored"

    report = run_eval(fake.rt, poll=FAST)

    assert statuses(report) == {"1breqg51": "pass", "2tj51dm1": "error", "a1zrnt4i": "pass", "ewjirjst": "pass",
                                "rfsv4ymg": "fail", "tne841s8": "fail"}
    assert not [r for r in fake.requests if r.path == "/v1/messages"]  # no synchronous call at all
    target_ids, judge_ids = creates(fake)
    assert sorted(target_ids) == sorted(f"{case}-0-t" for case in GOOD)
    assert sorted(judge_ids) == sorted(f"{case}-0-j{i}" for case, i in RUBRIC_INDEX.items())
    polls = [r for r in fake.requests if r.method == "GET" and re.fullmatch(r"/v1/messages/batches/[^/]+", r.path)]
    assert len(polls) >= 4  # each batch was seen in progress before it ended
    # the results came back in reverse order and were matched by custom_id
    assert next(iter(fake.batches.values())).results[0]["custom_id"] == target_ids[-1]

    run = stored(fake.rt, report.run_id)
    assert run.mode == "batch" and run.status == "finished"
    assert [entry.split(":")[0] for entry in run.batch_ids] == ["target", "judge"]
    assert [entry.split(":")[1] for entry in run.batch_ids] == list(fake.batches)
    half, full = batch_cost(fake)
    assert run.cost_usd == pytest.approx(half, abs=1e-6) and run.cost_usd == pytest.approx(full / 2, abs=1e-6)
    assert run.cost_saved_usd == pytest.approx(full - half, abs=1e-6) and run.cost_saved_usd > 0
    assert run.cache_read_tokens > 0  # the system prompts were cached inside the batches too
    assert "batch" not in records.target_info(run)  # the resume state is gone once the run is finished
    with session_scope(fake.rt.engine) as session:
        trials = {t.case_id: t for t in records.trial_results(session, report.run_id)}
    assert {t.status for t in trials.values()} == {"pass", "fail", "error"}  # no `pending` row left
    assert trials["2tj51dm1"].error.startswith("no reply from the target: the batch request errored (api_error")
    assert trials["rfsv4ymg"].verdicts[2]["kind"] == "rubric" and not trials["rfsv4ymg"].verdicts[2]["passed"]
    assert trials["tne841s8"].input_tokens > 0 and trials["tne841s8"].latency_ms is None  # no latency in a batch
    assert f"(batch: saved ${run.cost_saved_usd:.4f})" in format_comparison(report.comparison)


def test_eval_report_shows_the_batch_and_what_it_saved(fake):
    from typer.testing import CliRunner

    from bot.cli import app

    report = run_eval(fake.rt, poll=FAST)
    run = stored(fake.rt, report.run_id)
    result = CliRunner().invoke(app, ["eval", "report"])
    assert result.exit_code == 0, result.output
    assert f"Run {run.id} (finished, cli, batch, " in result.output
    assert f"cost ${run.cost_usd:.4f} (batch: saved ${run.cost_saved_usd:.4f})" in result.output
    assert f"cache {run.cache_read_tokens:,} read / {run.cache_write_tokens:,} written" in result.output


def test_a_batch_run_without_rubrics_needs_no_judge_batch(fake):
    report = run_eval(fake.rt, case_ids=["2tj5", "1bre"], poll=FAST)
    assert creates(fake) == [["1breqg51-0-t", "2tj51dm1-0-t"]]
    assert statuses(report) == {"1breqg51": "pass", "2tj51dm1": "pass"}
    assert report.comparison.run.judge_model is None


@pytest.mark.parametrize("outcome", ["errored", "expired", "canceled"])
@pytest.mark.parametrize("phase", ["target", "judge"])
def test_requests_that_did_not_succeed_make_their_trial_an_error(fake, outcome, phase):
    request = "tne841s8-0-t" if phase == "target" else "tne841s8-0-j0"
    fake.batch_outcomes[request] = outcome
    report = run_eval(fake.rt, poll=FAST)
    assert statuses(report) == {**{case: "pass" for case in GOOD}, "tne841s8": "error"}
    [case] = report.comparison.errors
    expected = {"errored": "errored (api_error: Injected batch error)", "expired": "expired",
                "canceled": "was canceled"}[outcome]
    prefix = "no reply from the target" if phase == "target" else "rubric: the judge could not be asked"
    assert case.failure.startswith(f"{prefix}: the batch request {expected}")
    assert report.comparison.run.failed == 0  # never a failure


def test_batches_are_split_past_the_request_limit(fake, monkeypatch):
    from bot.evals.batch import api as batchapi

    monkeypatch.setattr(batchapi, "MAX_REQUESTS", 5)
    report = run_eval(fake.rt, trials=2, poll=FAST)
    sizes = [len(ids) for ids in creates(fake)]
    assert sizes == [5, 5, 2, 5, 3]  # 12 target requests, then 8 judge requests
    assert statuses(report) == {case: "pass" for case in GOOD}
    run = stored(fake.rt, report.run_id)
    assert [entry.split(":")[0] for entry in run.batch_ids] == ["target"] * 3 + ["judge"] * 2


def test_a_target_that_is_not_anthropic_is_called_synchronously_and_the_judge_batched(fake):
    report = run_eval(fake.rt, target=replies(GOOD), poll=FAST)
    assert statuses(report) == {case: "pass" for case in GOOD}
    assert ("[run] mode = 'batch': the fake:target target is called synchronously (the Message Batches API runs "
            "Claude models only); the judge's calls go through batches") in report.warnings
    [judge_ids] = creates(fake)
    assert len(judge_ids) == 4 and all(i.endswith(("-j0", "-j2")) for i in judge_ids)
    run = stored(fake.rt, report.run_id)
    half, full = batch_cost(fake)
    target_cost = estimate_cost("claude-haiku-4-5", Usage(6 * 10, 6 * 5))  # the fake target's usage, full price
    assert run.cost_usd == pytest.approx(target_cost + half, abs=1e-6)
    assert run.cost_saved_usd == pytest.approx(full - half, abs=1e-6)
    assert run.latency_p50_ms is not None  # the synchronous target calls have latencies


def test_a_judge_that_is_not_the_llm_judge_is_asked_synchronously(fake):
    report = run_eval(fake.rt, judge=PassingJudge(), poll=FAST)
    assert statuses(report) == {case: "pass" for case in GOOD}
    [target_ids] = creates(fake)
    assert len(target_ids) == 6
    run = stored(fake.rt, report.run_id)
    half, full = batch_cost(fake)
    judge_cost = estimate_cost("claude-sonnet-4-6", Usage(4 * 50, 4 * 10))  # PassingJudge's usage, full price
    assert run.cost_usd == pytest.approx(half + judge_cost, abs=1e-6)
    assert run.cost_saved_usd == pytest.approx(full - half, abs=1e-6)


def test_an_abandoned_run_is_failed_and_its_batch_canceled(fake):
    fake.batch_processing_seconds = None  # never ends on its own

    async def go():
        task = asyncio.create_task(run_eval_async(fake.rt, poll=FAST))
        while not fake.batches:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        task.cancel()  # what Ctrl-C does to `evalbot eval run`
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(go())
    [batch] = fake.batches.values()
    assert batch.status == "canceling"
    with session_scope(fake.rt.engine) as session:
        [run] = records.recent_runs(session)
    assert run.status == "failed" and run.batch_ids == [f"target:{batch.id}"]
    assert resumable_run_ids(fake.rt.engine) == []


# ---------------------------------------------------------------- resuming after a restart

EVAL_IN_A_PROCESS = """
from bot.evals.batch.api import PollPolicy
from bot.evals.evaluate import run_eval
from bot.runtime import open_runtime

run_eval(open_runtime(), poll=PollPolicy(initial=0.02, factor=2, maximum=0.1))
"""


def wait_for(condition, what: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def batch_ids(rt) -> list[str]:
    with session_scope(rt.engine) as session:
        runs = records.recent_runs(session)
        return runs[0].batch_ids if runs else []


@pytest.mark.parametrize("phase", ["target", "judge"])
def test_a_run_killed_mid_batch_is_finished_by_resume_without_creating_its_batches_again(fake, tmp_path, phase):
    fake.batch_processing_seconds = None  # batches end only when the test says so
    fake.answers["tne841s8"] = "You have 90 days."
    process = subprocess.Popen([sys.executable, "-c", EVAL_IN_A_PROCESS], cwd=tmp_path, env=os.environ.copy(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        [target_entry] = wait_for(lambda: batch_ids(fake.rt), "the target batch")
        if phase == "judge":
            fake.end_batch(target_entry.split(":")[1])
            wait_for(lambda: len(batch_ids(fake.rt)) == 2, "the judge batch")
        process.kill()  # a crash: nothing is cleaned up, the run stays `running`
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    with session_scope(fake.rt.engine) as session:
        [run] = records.recent_runs(session)
    assert run.status == "running" and resumable_run_ids(fake.rt.engine) == [run.id]
    created_before = creates(fake)

    fake.batch_processing_seconds = 0.0
    assert resume_batch_runs(fake.rt, poll=FAST, take_over_after=timedelta(0)) == [run.id]

    after = creates(fake)
    assert len([ids for ids in after if ids[0].endswith("-t")]) == 1  # the target batch was created exactly once
    assert len(after) == 2 and after[: len(created_before)] == created_before
    finished = stored(fake.rt, run.id)
    assert finished.status == "finished" and finished.mode == "batch" and finished.error is None
    assert (finished.passed, finished.failed, finished.errored) == (5, 1, 0)
    assert finished.batch_ids == [f"target:{i}" for i in list(fake.batches)[:1]] + [f"judge:{list(fake.batches)[1]}"]
    half, full = batch_cost(fake)
    assert finished.cost_usd == pytest.approx(half, abs=1e-6) and finished.cost_saved_usd == pytest.approx(full - half, abs=1e-6)
    assert resume_batch_runs(fake.rt, poll=FAST) == []  # nothing left to resume


def test_resume_leaves_alone_runs_another_process_is_driving(fake):
    from bot.core.clock import utcnow
    from bot.evals.batch.run import CLAIM_JOB
    from bot.store.claims import claim, refresh

    fake.batch_processing_seconds = None
    with session_scope(fake.rt.engine) as session:
        run = records.create_run(session, trigger="nightly", mode="batch", corpus_commit=None, config_fingerprint="x",
                                 target_label="anthropic:claude-haiku-4-5", judge_model=None, trials=1, cases_total=1,
                                 batch_cases=["2tj51dm1"])
        run.batch_ids = ["target:msgbatch_elsewhere"]
        claim(session, job=CLAIM_JOB, slot=str(run.id), holder="other-host:1:abcd")
    ticks = []

    async def sleep(seconds):  # the other process refreshes its claim between our checks (a minute later)
        ticks.append(seconds)
        with session_scope(fake.rt.engine) as session:
            refresh(session, job=CLAIM_JOB, slot=str(run.id), holder="other-host:1:abcd",
                    at=utcnow() + timedelta(seconds=60))

    assert resume_batch_runs(fake.rt, sleep=sleep, take_over_after=timedelta(minutes=5)) == []
    assert ticks == [60.0] and not [r for r in fake.requests if "msgbatch_elsewhere" in r.path]
    assert stored(fake.rt, run.id).status == "running"


def test_resume_fails_a_run_whose_cases_are_gone(fake):
    with session_scope(fake.rt.engine) as session:
        run = records.create_run(session, trigger="cli", mode="batch", corpus_commit=None, config_fingerprint="x",
                                 target_label="anthropic:claude-haiku-4-5", judge_model=None, trials=1, cases_total=1,
                                 batch_cases=["zzzz9999"])
        run.batch_ids = ["target:msgbatch_gone"]
    assert resume_batch_runs(fake.rt, poll=FAST, take_over_after=timedelta(0)) == []
    failed = stored(fake.rt, run.id)
    assert failed.status == "failed" and "zzzz9999 are no longer in the corpus" in failed.error


# ---------------------------------------------------------------- pure helpers


@pytest.mark.parametrize("case_id", ["tne841s8", "a" * 32])
def test_custom_ids_of_corpus_cases_are_readable(case_id):
    assert custom_id(case_id, 2, "j0") == f"{case_id}-2-j0"


def test_custom_ids_are_made_safe_and_stay_distinct():
    ids = {custom_id(case_id, 0, "t") for case_id in ["a.b", "a:b", "a b", "x" * 80, "x" * 81]}
    assert len(ids) == 5
    assert all(re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", i) for i in ids)


def test_split_requests_by_count_and_by_bytes():
    requests = [{"custom_id": f"r{i}", "params": {"text": "x" * 100}} for i in range(10)]
    assert [len(b) for b in split_requests(requests, max_requests=4)] == [4, 4, 2]
    size = len(json.dumps(requests[0]).encode()) + 2  # as the SDK sends it, with the comma between requests
    by_bytes = split_requests(requests, max_bytes=3 * size)
    assert [len(b) for b in by_bytes] == [3, 3, 3, 1]
    assert [r for b in by_bytes for r in b] == requests  # order kept


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ({"result": {"type": "errored", "error": {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}}},
         "the batch request errored (overloaded_error: busy)"),
        ({"result": {"type": "expired"}}, "the batch request expired (the batch did not reach it within 24 hours)"),
        ({"result": {"type": "canceled"}}, "the batch request was canceled"),
        ({"result": {"type": "succeeded"}}, "the batch returned a result of unknown type 'succeeded'"),
    ],
)
def test_answers_that_carry_no_message(line, problem):
    answer = answer_of(line)
    assert answer.message is None and answer.problem == problem

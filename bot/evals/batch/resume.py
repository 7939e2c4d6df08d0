"""Batch mode, after a restart: `resume_batch_runs(runtime)` finishes every `running` run that has batch ids.

`[run] mode = "batch"` sends a run's model calls through the Message Batches API at half price, in two phases
(target replies, then judge verdicts); `bot.evals.batch.run` drives them and `bot.evals.batch.api` talks to the API.
Each batch id is stored in `EvalRun.batch_ids` (`target:msgbatch_…` / `judge:msgbatch_…`) the moment the batch
exists, so a run whose process stopped can be finished by another: call `resume_batch_runs` once at start-up, in a
background thread (it blocks until those runs' batches have ended, up to 24 hours). No batch is created twice.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from bot.core.errors import ConfigError, RunTakenOverError
from bot.core.llm import LLM, RetryPolicy
from bot.evals import records
from bot.evals.batch.api import PollPolicy, Sleep
from bot.evals.batch.run import TAKE_OVER_AFTER, BatchRun, Claim, holder_name
from bot.evals.config import AnthropicTarget, load_eval_config
from bot.evals.judge import Judge
from bot.evals.targets import build_target
from bot.runtime import Runtime
from bot.store.tables import EvalRun, session_scope

log = logging.getLogger(__name__)


def resumable_run_ids(engine: Engine) -> list[int]:
    """The runs `resume_batch_runs` would take up: `running`, with at least one batch id."""
    with session_scope(engine) as session:
        running = session.exec(select(EvalRun).where(EvalRun.status == "running").order_by(col(EvalRun.id)))
        return [run.id for run in running if run.batch_ids and run.id is not None]


def _resumable(engine: Engine, run_id: int) -> bool:
    with session_scope(engine) as session:
        run = session.get(EvalRun, run_id)
        return run is not None and run.status == "running" and bool(run.batch_ids)


def _resume_flow(rt: Runtime, run_id: int, claim: Claim, poll: PollPolicy | None, sleep: Sleep | None) -> BatchRun:
    """A BatchRun for a stored run: its cases and trials as recorded, the rest from evalbot.toml."""
    with session_scope(rt.engine) as session:
        run = records.get_run(session, run_id)
        assert run is not None
        state, judge_model, trials = records.batch_state(run), records.target_info(run).get("judge"), run.trials
    config = load_eval_config(rt.corpus.root)
    case_ids = state.get("cases") or []
    cases = [rt.corpus.find(case_id) for case_id in case_ids]
    missing = [case_id for case_id, case in zip(case_ids, cases) if case is None]
    if not case_ids or missing:
        raise ConfigError(f"run {run_id} cannot be resumed: case(s) {', '.join(missing) or '(none recorded)'} "
                          "are no longer in the corpus")
    policy = RetryPolicy(retries=config.run.retries)
    target = None
    if isinstance(config.target, AnthropicTarget):
        target = build_target(config, corpus_root=rt.corpus.root, settings=rt.settings, policy=policy,
                              concurrency=config.run.concurrency)
    judge = None
    if judge_model:
        llm = LLM.from_settings(rt.settings, policy=policy, timeout=config.judge.timeout,
                                needed_for="the judge of rubric expectations")
        judge = Judge(llm, model=judge_model, max_tokens=config.judge.max_tokens, timeout=config.judge.timeout)
    return BatchRun(rt, run_id, cases=[c for c in cases if c is not None], trials=trials, target=target, judge=judge,
                    pass_threshold=config.run.pass_threshold, concurrency=config.run.concurrency, claim=claim,
                    poll=poll, sleep=sleep)


async def _resume(rt: Runtime, run_id: int, claim: Claim, poll: PollPolicy | None, sleep: Sleep | None) -> bool:
    """Finish one claimed run; False when it failed or another process took it over."""
    log.info("resuming batch run %d", run_id, extra={"run_id": run_id})
    flow: BatchRun | None = None
    try:
        flow = _resume_flow(rt, run_id, claim, poll, sleep)
        await flow.drive()
        log.info("batch run %d resumed and finished", run_id, extra={"run_id": run_id})
        return True
    except RunTakenOverError as exc:
        log.warning("%s", exc, extra={"run_id": run_id})
        return False
    except Exception as exc:  # noqa: BLE001 - recorded on the run; the other runs still get resumed
        if flow is None:  # it failed before driving: drive() records its own failures
            with session_scope(rt.engine) as session:
                records.fail_run(session, run_id, error=f"resuming after a restart failed: {exc}")
            claim.release()
        log.exception("resuming batch run %d failed", run_id, extra={"run_id": run_id})
        return False
    finally:
        for closable in (flow.target if flow else None, flow.judge if flow else None):
            if closable is not None:
                await closable.aclose()


async def resume_batch_runs_async(runtime: Runtime, *, poll: PollPolicy | None = None, sleep: Sleep | None = None,
                                  take_over_after: timedelta = TAKE_OVER_AFTER) -> list[int]:
    """`resume_batch_runs` for callers that already run an event loop."""
    sleep = sleep or asyncio.sleep
    holder = holder_name()
    finished: list[int] = []
    waiting: dict[int, datetime | None] = {run_id: None for run_id in resumable_run_ids(runtime.engine)}
    recheck = max(min((poll or PollPolicy()).maximum, take_over_after.total_seconds() / 4), 0.01)
    while waiting:
        for run_id in list(waiting):
            if not _resumable(runtime.engine, run_id):
                waiting.pop(run_id)
                continue
            claim = Claim(runtime.engine, run_id, holder)
            if claim.take(take_over_after=take_over_after):
                waiting.pop(run_id)
                if await _resume(runtime, run_id, claim, poll, sleep):
                    finished.append(run_id)
                continue
            held_at = claim.held_at()
            if waiting[run_id] is not None and held_at != waiting[run_id]:  # refreshed meanwhile: its driver lives
                log.info("batch run %d is being driven by another process", run_id, extra={"run_id": run_id})
                waiting.pop(run_id)
            else:
                waiting[run_id] = held_at
        if waiting:
            await sleep(recheck)
    return finished


def resume_batch_runs(runtime: Runtime, *, poll: PollPolicy | None = None, sleep: Sleep | None = None,
                      take_over_after: timedelta = TAKE_OVER_AFTER) -> list[int]:
    """Finish every `running` run that has batch ids (a restart interrupted it); the ids of the runs it finished.

    Call it once at start-up, in a background thread: it blocks until those runs' batches have ended (up to 24 h).
    A run whose claim another process keeps refreshing is left to that process; a claim not refreshed for
    `take_over_after` is taken over. A run that cannot be finished (a case deleted, the API key gone) is marked
    failed. `poll` and `sleep` set the polling (tests make them fast).
    """
    return asyncio.run(resume_batch_runs_async(runtime, poll=poll, sleep=sleep, take_over_after=take_over_after))

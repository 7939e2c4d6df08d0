"""`run_eval`: the one domain function that evaluates the corpus, records the run and compares it.

With `[run] mode = "batch"` the model calls go through the Message Batches API (`bot.evals.batch.run`); otherwise
through the Messages API, streamed and saved case by case (`bot.evals.sync_run`), so a run that stopped half-way is
taken up again by `resume_eval` (`evalbot eval run --resume RUN`, and `serve` at start for the nightly run).

The CLI (`evalbot eval run`), the nightly job and Slack's `/eval run` all call it. Everything a person can get
wrong (evalbot.toml, a missing API key or env var, an unknown --case, a bad --baseline) raises ConfigError
before the run is recorded; a run that breaks half-way is recorded as `failed` and the error re-raised.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bot.core.errors import ConfigError, CorpusError, RunNotFoundError
from bot.core.kinds import RunTrigger
from bot.core.llm import LLM, RetryPolicy
from bot.corpus.files import Corpus
from bot.evals import records, reviews
from bot.evals.against import materialize
from bot.evals.batch.api import PollPolicy
from bot.evals.batch.run import batch_notes, run_batch
from bot.evals.changes import SYSTEM_KEY, snapshot
from bot.evals.compare import QUARANTINE_KEY, Comparison, compare_runs, resolve_baseline
from bot.evals.config import EvalConfig, fingerprint, load_eval_config
from bot.evals.confirm import ConfirmPolicy
from bot.evals.judge import Grader, Judge
from bot.evals.runner import Progress, Runner
from bot.evals.sync_run import Plan, plan_cases, run_sync
from bot.evals.targets import Target, build_target
from bot.runtime import Runtime
from bot.store.tables import EvalRun, session_scope

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunReport:
    """The recorded run compared with its baseline, and what the person running it should know."""

    run_id: int
    comparison: Comparison
    warnings: list[str] = field(default_factory=list)


def select_cases(rt: Runtime, *, case_ids: Sequence[str] = (), tags: Sequence[str] = ()) -> Plan:
    """The promoted cases a run would grade (all, or those matching any --case prefix or any --tag), from the index;
    ConfigError when there is none."""
    with session_scope(rt.engine) as session:
        return plan_cases(rt.corpus, session, case_ids=case_ids, tags=tags)


def _corpus_commit(corpus: Corpus, warnings: list[str]) -> str | None:
    try:
        commit = corpus.repo.head()
        if corpus.repo.is_dirty(corpus.root):
            warnings.append("the corpus folder has uncommitted changes: the recorded commit does not include them")
        return commit
    except CorpusError as exc:
        warnings.append(f"corpus commit unknown: {exc}")
        return None


def _check_numbers(trials: int, concurrency: int) -> None:
    if trials < 1:
        raise ConfigError(f"trials must be at least 1, not {trials}")
    if concurrency < 1:
        raise ConfigError(f"concurrency must be at least 1, not {concurrency}")


def _make_judge(rt: Runtime, config: EvalConfig, policy: RetryPolicy, concurrency: int) -> Judge:
    llm = LLM.from_settings(rt.settings, policy=policy, timeout=config.judge.timeout, max_connections=max(concurrency, 10),
                            needed_for="the judge of rubric expectations")
    with session_scope(rt.engine) as session:
        examples = reviews.few_shot(session)  # verdicts people corrected, shown to the judge
    return Judge(llm, model=config.judge.model, max_tokens=config.judge.max_tokens, timeout=config.judge.timeout,
                 examples=examples)


def _start_run(rt: Runtime, config: EvalConfig, *, trigger: RunTrigger, target: Target, judge: Grader | None, trials: int,
               plan: Plan, warnings: list[str], batch: bool, against: str | None, baseline_id: int | None) -> int:
    commit = _corpus_commit(rt.corpus, warnings)
    with session_scope(rt.engine) as session:
        run = records.create_run(
            session, trigger=trigger, mode="batch" if batch else "sync", corpus_commit=commit,
            config_fingerprint=fingerprint(rt.corpus.root, config), target_label=target.label,
            judge_model=judge.model if judge else None, trials=trials, cases_total=len(plan.case_ids),
            batch_cases=plan.case_ids if batch else None, plan_cases=None if batch else plan.case_ids,
        )
        records.update_info(session, run, **{SYSTEM_KEY: snapshot(rt.corpus.root, config, corpus_commit=commit),
                                             QUARANTINE_KEY: sorted(plan.quarantined)})
        if not batch:  # what a resumed run needs besides its cases (with --against, the other column: not resumed)
            records.update_info(session, run, **{records.PLAN: {**records.plan_state(run), "baseline": baseline_id,
                                                                "against": against}})
        assert run.id is not None
        return run.id


async def run_eval_async(
    rt: Runtime, *, trials: int | None = None, concurrency: int | None = None, case_ids: Sequence[str] = (),
    tags: Sequence[str] = (), baseline_id: int | None = None, trigger: RunTrigger = "cli", progress: Progress | None = None,
    target: Target | None = None, judge: Grader | None = None, poll: PollPolicy | None = None,
    against: str | None = None, against_target: Target | None = None, plan: Plan | None = None,
) -> RunReport:
    """`run_eval` for callers that already run an event loop."""
    config = load_eval_config(rt.corpus.root)
    trials = trials if trials is not None else config.run.trials
    concurrency = concurrency if concurrency is not None else config.run.concurrency
    _check_numbers(trials, concurrency)
    plan = plan or select_cases(rt, case_ids=case_ids, tags=tags)
    warnings = list(plan.warnings)
    if baseline_id is not None:
        with session_scope(rt.engine) as session:
            try:
                resolve_baseline(session, 0, baseline_id)
            except RunNotFoundError as exc:
                raise ConfigError(f"--baseline: {exc}") from None
    if "temperature" in getattr(config.target, "model_fields_set", ()):
        warnings.append("[target] temperature is ignored: the Anthropic API version that SDK 2.x uses (2026-10-21) "
                        "rejects sampling parameters")
    batch = config.run.mode == "batch"
    if against is not None and batch:
        raise ConfigError("--against runs through the Messages API: set [run] mode = \"sync\" for it")
    scratch = tempfile.TemporaryDirectory(prefix="evalbot-against-") if against is not None else None
    other = materialize(rt.corpus, against, Path(scratch.name)) if against is not None and scratch else None
    policy = RetryPolicy(retries=config.run.retries)
    target = target or build_target(config, corpus_root=rt.corpus.root, settings=rt.settings, policy=policy,
                                    concurrency=concurrency)
    try:
        if other is not None and against_target is None:
            against_target = build_target(other.config, corpus_root=other.corpus_root_for_target(rt.corpus.root),
                                          settings=rt.settings, policy=policy, concurrency=concurrency)
        if judge is None and plan.judged:
            judge = _make_judge(rt, config, policy, concurrency)
        if batch:
            warnings += batch_notes(target, judge)
        run_id = _start_run(rt, config, trigger=trigger, target=target, judge=judge, trials=trials,
                            plan=plan, warnings=warnings, batch=batch, against=against, baseline_id=baseline_id)
        log.info("eval run %d (%s): %d case(s) x %d trial(s) against %s, concurrency %d", run_id,
                 "batch" if batch else "sync", len(plan.case_ids), trials, target.label, concurrency,
                 extra={"run_id": run_id})
        if batch:  # records its own failure, and cancels its open batches
            cases = [rt.corpus.load(case_id, "promoted") for case_id in plan.case_ids]  # batches hold them anyway
            await run_batch(rt, run_id, cases=cases, trials=trials, target=target, judge=judge,
                            pass_threshold=config.run.pass_threshold, concurrency=concurrency, progress=progress,
                            poll=poll, baseline_id=baseline_id)
        else:
            warnings += await run_sync(
                rt, run_id, Runner(target, judge=judge, trials=trials, concurrency=concurrency,
                                   pass_threshold=config.run.pass_threshold, progress=progress),
                baseline_id=baseline_id, policy=ConfirmPolicy(trials=config.run.confirm_trials),
                history_runs=config.run.history_runs,
                against=(other, Runner(against_target, judge=judge, trials=trials, concurrency=concurrency,
                                       pass_threshold=config.run.pass_threshold))
                if other is not None and against_target is not None else None)
    finally:
        await target.aclose()
        if against_target is not None:
            await against_target.aclose()
        if scratch is not None:
            scratch.cleanup()
        if judge is not None:
            await judge.aclose()
    with session_scope(rt.engine) as session:
        comparison = compare_runs(session, run_id, baseline_id)
    log.info("eval run %d finished: %d passed, %d failed, %d error(s), %d regression(s)", run_id,
             comparison.run.passed, comparison.run.failed, comparison.run.errored, len(comparison.regressions),
             extra={"run_id": run_id})
    return RunReport(run_id, comparison, warnings)


async def resume_eval_async(rt: Runtime, run_id: int, *, concurrency: int | None = None,
                            progress: Progress | None = None, target: Target | None = None,
                            judge: Grader | None = None) -> RunReport:
    """`resume_eval` for callers that already run an event loop."""
    config = load_eval_config(rt.corpus.root)
    concurrency = concurrency if concurrency is not None else config.run.concurrency
    _check_numbers(1, concurrency)
    warnings: list[str] = []
    with session_scope(rt.engine) as session:
        run = records.get_run(session, run_id)
        if run is None:
            raise ConfigError(f"--resume {run_id}: there is no run {run_id}")
        problem = why_not_resumable(run)
        if problem is not None:
            raise ConfigError(f"--resume {run_id}: {problem}")
        if run.config_fingerprint != fingerprint(rt.corpus.root, config):
            raise ConfigError(f"--resume {run_id}: evalbot.toml or a prompt it names changed since the run started, so "
                              "its cases would be graded against two systems: start a new run (`evalbot eval run`)")
        commit = _corpus_commit(rt.corpus, warnings)
        if commit and run.corpus_commit and commit != run.corpus_commit:
            warnings.append(f"the corpus changed since run {run_id} started ({run.corpus_commit[:8]} -> {commit[:8]}): "
                            "the cases not graded yet are graded as they are now")
        trials, needs_judge = run.trials, records.target_info(run).get("judge") is not None
        baseline_id = records.plan_state(run).get("baseline")
        run.status, run.error, run.finished_at = "running", None, None
        session.add(run)
    policy = RetryPolicy(retries=config.run.retries)
    target = target or build_target(config, corpus_root=rt.corpus.root, settings=rt.settings, policy=policy,
                                    concurrency=concurrency)
    try:
        if judge is None and needs_judge:
            judge = _make_judge(rt, config, policy, concurrency)
        log.info("eval run %d resumed against %s, concurrency %d", run_id, target.label, concurrency,
                 extra={"run_id": run_id})
        warnings += await run_sync(rt, run_id, Runner(target, judge=judge, trials=trials, concurrency=concurrency,
                                                      pass_threshold=config.run.pass_threshold, progress=progress),
                                   baseline_id=baseline_id, policy=ConfirmPolicy(trials=config.run.confirm_trials),
                                   history_runs=config.run.history_runs)
    finally:
        await target.aclose()
        if judge is not None:
            await judge.aclose()
    with session_scope(rt.engine) as session:
        comparison = compare_runs(session, run_id, baseline_id)
    return RunReport(run_id, comparison, warnings)


def why_not_resumable(run: EvalRun) -> str | None:
    """Why `resume_eval` cannot take up this run, or None when it can."""
    if run.status == "finished":
        return f"run {run.id} finished already (`evalbot eval report {run.id}` shows it)"
    if run.mode == "batch":
        return f"run {run.id} is a batch run: `evalbot serve` finishes it at start, from its Message Batches"
    plan = records.plan_state(run)
    if not plan.get("cases"):
        return f"run {run.id} did not record its plan (an older evalbot started it): start a new run"
    if plan.get("against"):
        return f"run {run.id} was made with --against {plan['against']}: start a new run"
    return None


def resume_eval(rt: Runtime, run_id: int, *, concurrency: int | None = None, progress: Progress | None = None,
                target: Target | None = None, judge: Grader | None = None) -> RunReport:
    """Take up a synchronous run that stopped half-way (a crash, a deploy, Ctrl-C): grade the planned cases it had not
    graded, with its trials, against the same configuration (ConfigError if evalbot.toml changed), re-run its flips,
    finish and compare it, as one run. `target`/`judge` replace the configured ones (tests)."""
    return asyncio.run(resume_eval_async(rt, run_id, concurrency=concurrency, progress=progress, target=target,
                                         judge=judge))


def run_eval(
    rt: Runtime, *, trials: int | None = None, concurrency: int | None = None, case_ids: Sequence[str] = (),
    tags: Sequence[str] = (), baseline_id: int | None = None, trigger: RunTrigger = "cli", progress: Progress | None = None,
    target: Target | None = None, judge: Grader | None = None, poll: PollPolicy | None = None,
    against: str | None = None, against_target: Target | None = None, plan: Plan | None = None,
) -> RunReport:
    """Evaluate the promoted cases (all, or those picked by `case_ids`/`tags`), record the run and compare it.

    `trials`/`concurrency` override `[run]` in evalbot.toml; the baseline is `baseline_id` or the previous finished
    run; `trigger` (cli | slack | nightly) is recorded; `progress(done, total)` is called after each trial;
    `target`/`judge` replace the ones evalbot.toml describes (tests, benchmarks); `against` (a git ref) also runs
    the target as configured at that ref, side by side (`against_target` replaces it, for tests); `plan` is the
    selection already made from `case_ids`/`tags` (`select_cases`), so it is not made twice. Blocks until the run ends: with
    `[run] mode = "batch"` until its Message Batches have ended (polled as `poll` says), which can take hours.
    """
    return asyncio.run(run_eval_async(
        rt, trials=trials, concurrency=concurrency, case_ids=case_ids, tags=tags, baseline_id=baseline_id,
        trigger=trigger, progress=progress, target=target, judge=judge, poll=poll, against=against,
        against_target=against_target, plan=plan,
    ))

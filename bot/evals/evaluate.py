"""`run_eval`: the one domain function that evaluates the corpus, records the run and compares it.

With `[run] mode = "batch"` the model calls go through the Message Batches API (`bot.evals.batch.run`).

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

from bot.core.errors import CaseRefError, ConfigError, CorpusError, RunNotFoundError
from bot.core.kinds import RunTrigger
from bot.core.llm import LLM, RetryPolicy
from bot.corpus.files import Corpus
from bot.corpus.schema import Case, Rubric
from bot.evals import records, reviews
from bot.evals.against import AGAINST_KEY, Materialized, materialize
from bot.evals.against import record as against_record
from bot.evals.batch.api import PollPolicy
from bot.evals.batch.run import batch_notes, run_batch
from bot.evals.changes import SYSTEM_KEY, describe, snapshot
from bot.evals.compare import QUARANTINE_KEY, Comparison, compare_runs, resolve_baseline
from bot.evals.config import EvalConfig, fingerprint, load_eval_config
from bot.evals.confirm import ConfirmPolicy
from bot.evals.judge import Judge
from bot.evals.rerun import CONFIRM_KEY, pending_flips, reference_tallies, rerun_flips
from bot.evals.runner import Progress, Runner
from bot.evals.targets import Target, build_target
from bot.runtime import Runtime
from bot.store.tables import session_scope

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunReport:
    """The recorded run compared with its baseline, and what the person running it should know."""

    run_id: int
    comparison: Comparison
    warnings: list[str] = field(default_factory=list)


def select_cases(corpus: Corpus, *, case_ids: Sequence[str] = (), tags: Sequence[str] = ()) -> tuple[list[Case], list[str]]:
    """The promoted cases to run (all, or those matching any --case prefix or any --tag) and warnings."""
    cases, problems = corpus.scan("promoted")
    warnings = [f"skipped an invalid case file: {problem}" for problem in problems]
    if not cases:
        raise ConfigError(f"no promoted case to run in {corpus.root}: promote a candidate first (`evalbot corpus promote`)")
    if not case_ids and not tags:
        return cases, warnings
    valid = {case.id for case in cases}
    wanted: set[str] = set()
    for ref in case_ids:
        try:
            case_id = corpus.resolve(ref, status="promoted")[0]
        except CaseRefError as exc:
            raise ConfigError(f"--case {ref}: {exc}") from None
        if case_id not in valid:
            problem = next((p for p in problems if f"{case_id}.yaml" in p), f"cases/{case_id}.yaml")
            raise ConfigError(f"--case {ref}: the case file is invalid ({problem}): fix it, then check with "
                              "`evalbot corpus validate`")
        wanted.add(case_id)
    chosen = [c for c in cases if c.id in wanted or set(c.tags) & set(tags)]
    if not chosen:
        raise ConfigError(f"no promoted case has the tag(s) {', '.join(tags)} (`evalbot corpus list` shows the tags)")
    return chosen, warnings


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


def _make_judge(rt: Runtime, config: EvalConfig, policy: RetryPolicy, concurrency: int, cases: Sequence[Case]) -> Judge:
    llm = LLM.from_settings(rt.settings, policy=policy, timeout=config.judge.timeout, max_connections=max(concurrency, 10),
                            needed_for="the judge of rubric expectations")
    rubrics = [e.rubric for case in cases for e in case.expect if isinstance(e, Rubric)]
    with session_scope(rt.engine) as session:
        examples = reviews.few_shot(session, rubrics)  # verdicts people corrected, shown to the judge
    return Judge(llm, model=config.judge.model, max_tokens=config.judge.max_tokens, timeout=config.judge.timeout,
                 examples=examples)


def _start_run(rt: Runtime, config: EvalConfig, *, trigger: RunTrigger, target: Target, judge: Judge | None, trials: int,
               cases: Sequence[Case], warnings: list[str], batch: bool) -> int:
    commit = _corpus_commit(rt.corpus, warnings)
    with session_scope(rt.engine) as session:
        run = records.create_run(
            session, trigger=trigger, mode="batch" if batch else "sync", corpus_commit=commit,
            config_fingerprint=fingerprint(rt.corpus.root, config), target_label=target.label,
            judge_model=judge.model if judge else None, trials=trials, cases_total=len(cases),
            batch_cases=[case.id for case in cases] if batch else None,
        )
        records.update_info(session, run, **{SYSTEM_KEY: snapshot(rt.corpus.root, config, corpus_commit=commit),
                                             QUARANTINE_KEY: sorted(c.id for c in cases if c.quarantined)})
        assert run.id is not None
        return run.id


async def run_eval_async(
    rt: Runtime, *, trials: int | None = None, concurrency: int | None = None, case_ids: Sequence[str] = (),
    tags: Sequence[str] = (), baseline_id: int | None = None, trigger: RunTrigger = "cli", progress: Progress | None = None,
    target: Target | None = None, judge: Judge | None = None, poll: PollPolicy | None = None,
    against: str | None = None, against_target: Target | None = None,
) -> RunReport:
    """`run_eval` for callers that already run an event loop."""
    config = load_eval_config(rt.corpus.root)
    trials = trials if trials is not None else config.run.trials
    concurrency = concurrency if concurrency is not None else config.run.concurrency
    _check_numbers(trials, concurrency)
    cases, warnings = select_cases(rt.corpus, case_ids=case_ids, tags=tags)
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
    needs_judge = any(isinstance(e, Rubric) for case in cases for e in case.expect)
    target = target or build_target(config, corpus_root=rt.corpus.root, settings=rt.settings, policy=policy,
                                    concurrency=concurrency)
    try:
        if other is not None and against_target is None:
            against_target = build_target(other.config, corpus_root=other.corpus_root_for_target(rt.corpus.root),
                                          settings=rt.settings, policy=policy, concurrency=concurrency)
        if judge is None and needs_judge:
            judge = _make_judge(rt, config, policy, concurrency, cases)
        if batch:
            warnings += batch_notes(target, judge)
        run_id = _start_run(rt, config, trigger=trigger, target=target, judge=judge, trials=trials,
                            cases=cases, warnings=warnings, batch=batch)
        log.info("eval run %d (%s): %d case(s) x %d trial(s) against %s, concurrency %d", run_id,
                 "batch" if batch else "sync", len(cases), trials, target.label, concurrency, extra={"run_id": run_id})
        if batch:  # records its own failure, and cancels its open batches
            await run_batch(rt, run_id, cases=cases, trials=trials, target=target, judge=judge,
                            pass_threshold=config.run.pass_threshold, concurrency=concurrency, progress=progress,
                            poll=poll, baseline_id=baseline_id)
        else:
            await _run_sync(rt, run_id, cases, Runner(target, judge=judge, trials=trials, concurrency=concurrency,
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


async def _run_sync(rt: Runtime, run_id: int, cases: Sequence[Case], runner: Runner, *, baseline_id: int | None,
                    policy: ConfirmPolicy | None = None, history_runs: int = 10,
                    against: tuple[Materialized, Runner] | None = None) -> None:
    """Run every call through the Messages API, re-run the flips, run the --against column, and record the run
    (failed, if it breaks)."""
    try:
        outcomes = await runner.run(cases)
        other = await against[1].run(cases) if against is not None else None
        with session_scope(rt.engine) as session:
            baseline = resolve_baseline(session, run_id, baseline_id)
            base_id = baseline.id if baseline else None
            statuses = {r.case_id: r.status for r in records.case_results(session, base_id)} if base_id else {}
            references = reference_tallies(session, baseline_id=base_id, case_ids=[c.id for c in cases],
                                           runs=history_runs) if base_id else {}
            pending = pending_flips(records.target_info(baseline).get(CONFIRM_KEY) or {}) if baseline else {}
        outcomes, confirmations = await rerun_flips(runner, outcomes, baseline_status=statuses, references=references,
                                                    policy=policy or ConfirmPolicy(), pending=pending)
        with session_scope(rt.engine) as session:
            run = records.get_run(session, run_id)
            assert run is not None
            meter = runner.meter if against is None else records.merged_meter(runner.meter, against[1].meter)
            records.finish_run(session, run, outcomes, meter=meter, baseline_run_id=base_id)
            records.update_info(session, run, **{CONFIRM_KEY: {k: c.as_dict() for k, c in confirmations.items()}})
            if against is not None and other is not None:
                materialized, other_runner = against
                changes = describe(snapshot(materialized.folder, materialized.config, corpus_commit=materialized.commit),
                                   records.target_info(run).get(SYSTEM_KEY))
                records.update_info(session, run, **{AGAINST_KEY: against_record(
                    materialized, other_runner.target.label, other, changes)})
    except BaseException as exc:
        with session_scope(rt.engine) as session:
            records.fail_run(session, run_id, error=f"{type(exc).__name__}: {exc}")
        raise


def run_eval(
    rt: Runtime, *, trials: int | None = None, concurrency: int | None = None, case_ids: Sequence[str] = (),
    tags: Sequence[str] = (), baseline_id: int | None = None, trigger: RunTrigger = "cli", progress: Progress | None = None,
    target: Target | None = None, judge: Judge | None = None, poll: PollPolicy | None = None,
    against: str | None = None, against_target: Target | None = None,
) -> RunReport:
    """Evaluate the promoted cases (all, or those picked by `case_ids`/`tags`), record the run and compare it.

    `trials`/`concurrency` override `[run]` in evalbot.toml; the baseline is `baseline_id` or the previous finished
    run; `trigger` (cli | slack | nightly) is recorded; `progress(done, total)` is called after each trial;
    `target`/`judge` replace the ones evalbot.toml describes (tests, benchmarks); `against` (a git ref) also runs
    the target as configured at that ref, side by side (`against_target` replaces it, for tests). Blocks until the run ends: with
    `[run] mode = "batch"` until its Message Batches have ended (polled as `poll` says), which can take hours.
    """
    return asyncio.run(run_eval_async(
        rt, trials=trials, concurrency=concurrency, case_ids=case_ids, tags=tags, baseline_id=baseline_id,
        trigger=trigger, progress=progress, target=target, judge=judge, poll=poll, against=against,
        against_target=against_target,
    ))

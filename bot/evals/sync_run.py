"""A synchronous run (the Messages API), streamed and resumable.

The run's plan (its case ids, read from the case index) is recorded when the run starts. Cases are then read from
their files one at a time as the runner's workers need them, each case's outcome is saved as soon as its last trial
is graded (in batches of FLUSH_CASES, or every FLUSH_SECONDS), with the usage metered so far in the same transaction.
When every case is graded, the flips since the baseline are re-run (`bot.evals.rerun`) and the run is finished
from its saved rows. What stays in memory is flat in the corpus size: the plan's ids, the baseline's status of each
case and the outcomes not yet saved.

A run that stopped half-way (a crash, a deploy, Ctrl-C) is resumed by `run_sync` on the same run id: the cases
already saved are skipped, the flips are re-run once (their confirmations are saved with their rows), and the
run is finished as if it had never stopped: one run, each case graded once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import col, select

from bot.core.errors import CaseRefError, ConfigError
from bot.core.usage import UsageMeter
from bot.corpus.files import Corpus
from bot.corpus.prefetch import read_ahead
from bot.corpus.refresh import refresh
from bot.corpus.schema import Case
from bot.evals import records
from bot.evals.against import AGAINST_KEY, Materialized, summary
from bot.evals.against import record as against_record
from bot.evals.changes import SYSTEM_KEY, describe, snapshot
from bot.evals.compare import resolve_baseline
from bot.evals.confirm import ConfirmPolicy
from bot.evals.rerun import CONFIRM_KEY, flip_direction, pending_flips, reference_tallies, rerun_flips
from bot.evals.runner import CaseOutcome, Runner, summarize
from bot.runtime import Runtime
from bot.store.tables import CaseIndex, EvalRun, session_scope

log = logging.getLogger(__name__)

FLUSH_CASES = 200  # outcomes saved per transaction
FLUSH_SECONDS = 1.0  # and at least this often, so a crash loses little of a slow run


@dataclass(frozen=True)
class Plan:
    """The promoted cases a run will grade, as the case index knows them."""

    case_ids: list[str]
    quarantined: list[str]
    judged: bool  # some case has a rubric expectation: the run needs the judge
    warnings: list[str] = field(default_factory=list)


def plan_cases(corpus: Corpus, session: Any, *, case_ids: Sequence[str] = (), tags: Sequence[str] = ()) -> Plan:
    """The promoted cases to run (all, or those matching any --case prefix or any --tag), from the index brought up
    to date with the files first; ConfigError when there is none or a --case names nothing runnable."""
    problems = refresh(session, corpus).problems
    warnings = [f"skipped an invalid case file: {problem}" for problem in problems]
    rows = session.exec(select(CaseIndex.id, CaseIndex.tags, CaseIndex.quarantined, CaseIndex.judged)
                        .where(col(CaseIndex.status) == "promoted").order_by(col(CaseIndex.id))).all()
    if not rows:
        raise ConfigError(f"no promoted case to run in {corpus.root}: promote a candidate first (`evalbot corpus promote`)")
    wanted: set[str] = set()
    valid = {row[0] for row in rows}
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
    if case_ids or tags:
        rows = [row for row in rows if row[0] in wanted or set(row[1]) & set(tags)]
        if not rows:
            raise ConfigError(f"no promoted case has the tag(s) {', '.join(tags)} (`evalbot corpus list` shows the tags)")
    return Plan([row[0] for row in rows], [row[0] for row in rows if row[2]], any(row[3] for row in rows), warnings)


def iter_cases(corpus: Corpus, case_ids: Sequence[str], skipped: list[str]) -> Iterator[Case]:
    """The cases of `case_ids`, read from their files as the run goes (a worker process reads ahead on a long
    list); a file gone or broken since the plan was made is noted in `skipped` and left out."""
    return read_ahead(corpus, case_ids, "promoted", skipped)


class _Saver:
    """Collects outcomes and saves them in batches, with the usage metered so far."""

    def __init__(self, rt: Runtime, run_id: int, meter: UsageMeter):
        self.rt, self.run_id, self.meter = rt, run_id, meter
        self.waiting: list[CaseOutcome] = []
        self.saved_at = time.monotonic()
        self.saved = 0

    def add(self, outcome: CaseOutcome) -> None:
        self.waiting.append(outcome)
        if len(self.waiting) >= FLUSH_CASES or time.monotonic() - self.saved_at >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        if self.waiting:
            with session_scope(self.rt.engine) as session:
                run = records.get_run(session, self.run_id)
                assert run is not None
                records.save_progress(session, run, self.waiting, self.meter)
            self.saved += len(self.waiting)
            self.waiting = []
        self.saved_at = time.monotonic()


async def run_sync(rt: Runtime, run_id: int, runner: Runner, *, baseline_id: int | None,
                   policy: ConfirmPolicy | None = None, history_runs: int = 10,
                   against: tuple[Materialized, Runner] | None = None) -> list[str]:
    """Grade the run's planned cases not graded yet, re-run the flips, run the --against column and finish the run
    (failed, if it breaks: it can be resumed). Returns warnings (cases whose file went away meanwhile)."""
    skipped: list[str] = []
    saver: _Saver | None = None
    try:
        with session_scope(rt.engine) as session:
            run = records.get_run(session, run_id)
            assert run is not None
            state = records.plan_state(run)
            planned: list[str] = list(state.get("cases") or [])
            graded = records.graded_case_ids(session, run_id)
        runner.meter = UsageMeter.load(state.get("usage"))  # a resumed run goes on from what it had saved
        todo = [case_id for case_id in planned if case_id not in graded]
        if graded:
            log.info("eval run %d resumed: %d of %d case(s) already graded", run_id, len(graded), len(planned),
                     extra={"run_id": run_id})
        saver = _Saver(rt, run_id, runner.meter)
        await runner.stream(iter_cases(rt.corpus, todo, skipped), saver.add, total=len(todo))
        saver.flush()
        other = await _against_column(rt, planned, against) if against is not None else None
        base_id = await _confirm_flips(rt, run_id, runner, baseline_id=baseline_id, policy=policy or ConfirmPolicy(),
                                       history_runs=history_runs)
        with session_scope(rt.engine) as session:
            run = records.get_run(session, run_id)
            assert run is not None
            meter = runner.meter if against is None else records.merged_meter(runner.meter, against[1].meter)
            if other is not None and against is not None:
                materialized, other_runner = against
                changes = describe(snapshot(materialized.folder, materialized.config, corpus_commit=materialized.commit),
                                   records.target_info(run).get(SYSTEM_KEY))
                records.update_info(session, run, **{AGAINST_KEY: against_record(
                    materialized, other_runner.target.label, other, changes)})
            records.finish_run(session, run, meter=meter, baseline_run_id=base_id)
    except BaseException as exc:
        if saver is not None:  # what was graded before the stop is kept: a resumed run skips it
            try:
                saver.flush()
            except Exception:  # noqa: BLE001 - the database may be what failed; those cases are graded again
                log.warning("could not save the outcomes graded before run %d stopped", run_id, exc_info=True)
        stopped = isinstance(exc, KeyboardInterrupt | SystemExit | asyncio.CancelledError)
        error = f"interrupted: stopped before the end; resume it with `evalbot eval run --resume {run_id}`" \
            if stopped else f"{type(exc).__name__}: {exc}"
        with session_scope(rt.engine) as session:
            records.fail_run(session, run_id, error=error)
        raise
    return [f"skipped a case that changed during the run: {problem}" for problem in skipped]


async def _against_column(rt: Runtime, planned: Sequence[str], against: tuple[Materialized, Runner]) -> dict[str, Any]:
    column: dict[str, Any] = {}

    def keep(outcome: CaseOutcome) -> None:
        column[outcome.case.id] = summary(outcome)

    await against[1].stream(iter_cases(rt.corpus, planned, []), keep, total=len(planned))
    return column


def flip_candidates(statuses: dict[str, str], baseline: dict[str, str], pending: set[str]) -> list[str]:
    """Cases whose status flipped since the baseline, or that fail again after a regression the baseline left
    unconfirmed."""
    return sorted(case_id for case_id, status in statuses.items()
                  if flip_direction(baseline.get(case_id), status) or (case_id in pending and status == "fail"))


async def _confirm_flips(rt: Runtime, run_id: int, runner: Runner, *, baseline_id: int | None, policy: ConfirmPolicy,
                         history_runs: int) -> int | None:
    """Re-run the run's flipped cases and save them again with their re-run trials and confirmations (once: a
    resumed run whose flips were re-run before it stopped skips this). Returns the baseline's id."""
    with session_scope(rt.engine) as session:
        run = records.get_run(session, run_id)
        assert run is not None
        baseline = resolve_baseline(session, run_id, baseline_id)
        if baseline is None or baseline.id is None:
            records.update_info(session, run, **{CONFIRM_KEY: {}})
            return None
        if CONFIRM_KEY in records.target_info(run):
            return baseline.id
        pending = pending_flips(records.target_info(baseline).get(CONFIRM_KEY) or {})
        base_status = records.statuses(session, baseline.id)
        candidates = flip_candidates(records.statuses(session, run_id), base_status, set(pending))
        references = reference_tallies(session, baseline_id=baseline.id, case_ids=candidates, runs=history_runs) \
            if candidates else {}
        rows = {case_id: records.trial_results(session, run_id, case_id=case_id) for case_id in candidates}
    outcomes = []
    for case_id in candidates:
        case = rt.corpus.find(case_id)
        if case is not None:
            trials = [records.trial_outcome(row) for row in rows[case_id]]
            outcomes.append(summarize(case, trials, pass_threshold=runner.pass_threshold))
    redone, confirmations = await rerun_flips(runner, outcomes, baseline_status={o.case.id: base_status.get(o.case.id, "")
                                                                                for o in outcomes},
                                              references=references, policy=policy, pending=pending)
    changed = [new for new, old in zip(redone, outcomes) if len(new.trials) != len(old.trials)]
    with session_scope(rt.engine) as session:
        run = records.get_run(session, run_id)
        assert run is not None
        records.forget_cases(session, run_id, [o.case.id for o in changed])
        records.save_progress(session, run, changed, runner.meter)
        records.update_info(session, run, **{CONFIRM_KEY: {k: c.as_dict() for k, c in confirmations.items()}})
    return baseline.id


def resumable(run: EvalRun) -> bool:
    """A synchronous run that did not finish and recorded its plan: `run_sync` can take it up again."""
    return run.mode == "sync" and run.status in ("running", "failed") and bool(records.plan_state(run).get("cases"))

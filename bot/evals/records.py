"""Run records in the database: EvalRun, CaseResult and TrialResult rows. Every function takes a session.

`EvalRun.target` holds a small JSON document describing what was evaluated and what it cost per model:
`{"label": "anthropic:claude-haiku-4-5", "judge": "claude-sonnet-4-5" | null,
  "models": {"<model>": {"input_tokens": N, "output_tokens": N, "cost_usd": X | null}}, "cost_note": "…" | null}`
(read it with `target_info`); a model's entry also has `cache_read_tokens`/`cache_write_tokens` when the run used
prompt caching. A run's cost is the sum over models with a known price; `cost_note` names the models whose price
is unknown. While a run is in progress the document also holds what is needed to resume it after a restart:
`"batch": {"cases": [...], "usage": {...}}` for a batch run (`bot.evals.batch.run`), `"plan": {"cases": [...],
"usage": {...}}` for a synchronous one (`bot.evals.sync_run`: the usage metered by the outcomes saved so far);
`finish_run` removes both. A synchronous run saves its case results as they finish, so the run's totals are always
counted from its rows in the database.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

from sqlalchemy import delete, insert
from sqlalchemy import select as columns_of
from sqlmodel import Session, col, func, select

from bot.core import metrics
from bot.core.clock import utcnow
from bot.core.kinds import Outcome, RunMode, RunTrigger
from bot.core.redaction_exits import redact_payload, redact_text
from bot.core.usage import Usage, UsageMeter, estimate_cost
from bot.evals.graders import Verdict
from bot.evals.runner import CaseOutcome, TrialOutcome
from bot.store.tables import CaseResult, EvalRun, TrialResult

BATCH_STATE = "batch"  # key in EvalRun.target of a batch run's resume state, removed when the run finishes
PLAN = "plan"  # key in EvalRun.target of a synchronous run's resume state, removed when the run finishes


def create_run(session: Session, *, trigger: RunTrigger, mode: RunMode, corpus_commit: str | None, config_fingerprint: str,
               target_label: str, judge_model: str | None, trials: int, cases_total: int,
               batch_cases: Sequence[str] | None = None, plan_cases: Sequence[str] | None = None) -> EvalRun:
    """Insert a `running` EvalRun and flush it so it has an id (recording the case ids of a batch run, or of the
    plan of a synchronous one)."""
    info: dict[str, Any] = {"label": target_label, "judge": judge_model, "models": {}, "cost_note": None}
    if batch_cases is not None:
        info[BATCH_STATE] = {"cases": list(batch_cases), "usage": None}
    if plan_cases is not None:
        info[PLAN] = {"cases": list(plan_cases), "usage": None}
    run = EvalRun(
        status="running", trigger=trigger, mode=mode, corpus_commit=corpus_commit, config_fingerprint=config_fingerprint,
        target=json.dumps(info), trials=trials, cases_total=cases_total,
    )
    session.add(run)
    session.flush()
    return run


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """The nearest-rank percentile of `values` (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


@dataclass(frozen=True)
class RunTotals:
    """What a run's row records besides its cases."""

    passed: int
    failed: int
    errored: int
    flaky: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None


def totals(session: Session, run_id: int) -> RunTotals:
    """Counts per status and target latency percentiles over all of a run's saved case and trial rows."""
    counts = dict(session.exec(select(CaseResult.status, func.count()).where(CaseResult.run_id == run_id)
                               .group_by(CaseResult.status)).all())
    flaky = session.exec(select(func.count()).where(CaseResult.run_id == run_id, col(CaseResult.flaky))).one()
    latencies = [v for v in session.exec(select(TrialResult.latency_ms).where(
        TrialResult.run_id == run_id, col(TrialResult.latency_ms).is_not(None))) if v is not None]
    return RunTotals(
        passed=counts.get("pass", 0), failed=counts.get("fail", 0), errored=counts.get("error", 0), flaky=flaky,
        latency_p50_ms=percentile(latencies, 0.50), latency_p95_ms=percentile(latencies, 0.95),
    )


def save_outcomes(session: Session, run: EvalRun, outcomes: Sequence[CaseOutcome]) -> None:
    """Insert one CaseResult per case and one TrialResult per trial of `run` (bulk inserts: runs can be large)."""
    cases: list[dict[str, Any]] = []
    trials: list[dict[str, Any]] = []
    for outcome in outcomes:
        case = outcome.case
        cases.append({
            "run_id": run.id, "case_id": case.id, "title": redact_text(case.title), "status": outcome.status,
            "pass_rate": outcome.pass_rate, "flaky": outcome.flaky, "trials": len(outcome.trials),
            "failure": redact_text(outcome.failure), "permalink": case.source.permalink,
        })
        trials += [
            {
                "run_id": run.id, "case_id": case.id, "trial": trial.trial, "status": trial.status, "output": redact_text(trial.output),
                "verdicts": redact_payload([v.as_dict() for v in trial.verdicts]), "latency_ms": trial.latency_ms,
                "input_tokens": trial.usage.input_tokens, "output_tokens": trial.usage.output_tokens,
                "error": redact_text(trial.error),
            }
            for trial in outcome.trials
        ]
    if cases:
        session.execute(insert(CaseResult), cases)
    if trials:
        session.execute(insert(TrialResult), trials)


def _model_costs(meter: UsageMeter, batch_meter: UsageMeter) -> dict[str, dict[str, Any]]:
    """Tokens and cost per model over both meters (a model's cost is None when its price is unknown)."""
    models: dict[str, dict[str, Any]] = {}
    for model in sorted({*meter.by_model, *batch_meter.by_model}):
        sync_usage, batch_usage = meter.by_model.get(model, Usage()), batch_meter.by_model.get(model, Usage())
        usage = sync_usage + batch_usage
        costs = [estimate_cost(model, sync_usage), estimate_cost(model, batch_usage, batch=True)]
        entry: dict[str, Any] = {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
                                 "cost_usd": None if None in costs else sum(c for c in costs if c is not None)}
        if usage.cache_read_tokens or usage.cache_write_tokens:
            entry |= {"cache_read_tokens": usage.cache_read_tokens, "cache_write_tokens": usage.cache_write_tokens}
        models[model] = entry
    return models


def finish_run(session: Session, run: EvalRun, outcomes: Sequence[CaseOutcome] = (), *, meter: UsageMeter,
               baseline_run_id: int | None, batch: bool = False, batch_meter: UsageMeter | None = None) -> EvalRun:
    """Save `outcomes` (if not saved already) and close the run as `finished` with the totals of all its saved
    rows, tokens, cost and latencies.

    `meter` holds the synchronous calls' usage (priced at batch rates when `batch`), `batch_meter` the Message
    Batches calls' usage: priced at half, and `cost_saved_usd` is what those tokens would have cost synchronously.
    """
    if batch:
        meter, batch_meter = UsageMeter(), _merged(meter, batch_meter or UsageMeter())
    batch_meter = batch_meter or UsageMeter()
    save_outcomes(session, run, outcomes)
    assert run.id is not None
    session.flush()
    counts = totals(session, run.id)
    usage = meter.total + batch_meter.total
    sync_cost, unknown = meter.cost()
    batch_cost, batch_unknown = batch_meter.cost(batch=True)
    full_batch_cost, _ = batch_meter.cost()
    unknown = sorted({*unknown, *batch_unknown})
    info = target_info(run)
    info.pop(BATCH_STATE, None)
    info.pop(PLAN, None)
    info["models"] = _model_costs(meter, batch_meter)
    info["cost_note"] = f"cost unknown for {', '.join(unknown)} (not in the price table; counted as $0)" if unknown else None
    run.target = json.dumps(info)
    run.status = "finished"
    metrics.RUNS.labels("finished").inc()
    run.finished_at = utcnow()
    run.cases_total = counts.passed + counts.failed + counts.errored
    run.passed, run.failed, run.errored, run.flaky = counts.passed, counts.failed, counts.errored, counts.flaky
    run.input_tokens, run.output_tokens = usage.input_tokens, usage.output_tokens
    run.cache_read_tokens, run.cache_write_tokens = usage.cache_read_tokens, usage.cache_write_tokens
    run.cost_usd = round(sync_cost + batch_cost, 6)
    run.cost_saved_usd = round(full_batch_cost - batch_cost, 6)
    run.latency_p50_ms, run.latency_p95_ms = counts.latency_p50_ms, counts.latency_p95_ms
    run.baseline_run_id = baseline_run_id
    session.add(run)
    session.flush()
    return run


def _merged(*meters: UsageMeter) -> UsageMeter:
    merged = UsageMeter()
    for meter in meters:
        for model, usage in meter.by_model.items():
            merged.add(model, usage)
    return merged


def add_batch_id(session: Session, run_id: int, entry: str) -> None:
    """Append `entry` (`target:<batch id>` or `judge:<batch id>`) to the run's batch_ids."""
    run = session.get(EvalRun, run_id)
    if run is None:
        raise ValueError(f"there is no run {run_id}")
    run.batch_ids = [*run.batch_ids, entry]  # a new list: SQLAlchemy does not see in-place changes to JSON
    session.add(run)


def batch_state(run: EvalRun) -> dict[str, Any]:
    """A batch run's resume state in `EvalRun.target` (`{"cases": [...], "usage": {...} | None}`), or {}."""
    state = target_info(run).get(BATCH_STATE)
    return state if isinstance(state, dict) else {}


def set_batch_usage(session: Session, run: EvalRun, usage: dict[str, Any]) -> None:
    """Store the usage metered so far in the run's batch state (`{"sync": {...}, "batch": {...}}`)."""
    info = target_info(run)
    info[BATCH_STATE] = {**batch_state(run), "usage": usage}
    run.target = json.dumps(info)
    session.add(run)


def plan_state(run: EvalRun) -> dict[str, Any]:
    """A synchronous run's resume state in `EvalRun.target` (`{"cases": [...], "usage": {...} | None}`), or {}."""
    state = target_info(run).get(PLAN)
    return state if isinstance(state, dict) else {}


def save_progress(session: Session, run: EvalRun, outcomes: Sequence[CaseOutcome], meter: UsageMeter) -> None:
    """Save outcomes of a run in progress and, in the same transaction, the usage metered by everything saved."""
    save_outcomes(session, run, outcomes)
    info = target_info(run)
    info[PLAN] = {**plan_state(run), "usage": meter.dump()}
    run.target = json.dumps(info)
    session.add(run)


def graded_case_ids(session: Session, run_id: int) -> set[str]:
    """The ids of the cases of a run whose result is saved."""
    return set(session.exec(select(CaseResult.case_id).where(CaseResult.run_id == run_id)))


def forget_cases(session: Session, run_id: int, case_ids: Sequence[str]) -> None:
    """Delete the case and trial rows of these cases of a run (a re-run case is saved again with all its trials)."""
    for table in (CaseResult, TrialResult):
        session.execute(delete(table).where(col(table.run_id) == run_id, col(table.case_id).in_(list(case_ids))))


def trial_outcome(row: TrialResult) -> TrialOutcome:
    """A saved trial as the runner made it (its text as saved: redacted)."""
    verdicts = [Verdict.from_dict(v) for v in row.verdicts]
    return TrialOutcome(row.case_id, row.trial, row.status, row.output, verdicts, row.latency_ms,
                        Usage(row.input_tokens, row.output_tokens), row.error)


def delete_trials(session: Session, run_id: int) -> None:
    """Delete a run's trial rows (a batch run replaces its pending rows when it finishes)."""
    session.execute(delete(TrialResult).where(col(TrialResult.run_id) == run_id))


def fail_run(session: Session, run_id: int, *, error: str) -> None:
    """Mark a run `failed` with the reason (it stays out of comparisons)."""
    run = session.get(EvalRun, run_id)
    if run is not None:
        run.status, run.error, run.finished_at = "failed", redact_text(error), utcnow()
        metrics.RUNS.labels("failed").inc()
        session.add(run)


def target_info(run: EvalRun) -> dict[str, Any]:
    """The JSON document in `EvalRun.target` (a bare label from elsewhere is wrapped)."""
    try:
        info = json.loads(run.target or "")
    except ValueError:
        return {"label": run.target, "judge": None, "models": {}, "cost_note": None}
    return info if isinstance(info, dict) else {"label": str(info), "judge": None, "models": {}, "cost_note": None}


def get_run(session: Session, run_id: int) -> EvalRun | None:
    """The run with this id, or None."""
    return session.get(EvalRun, run_id)


def latest_finished_run(session: Session, *, before: int | None = None) -> EvalRun | None:
    """The newest finished run (with an id below `before`, when given), or None."""
    query = select(EvalRun).where(EvalRun.status == "finished")
    if before is not None:
        query = query.where(col(EvalRun.id) < before)
    return session.exec(query.order_by(col(EvalRun.id).desc()).limit(1)).first()


class ResultRow(Protocol):
    """A case result as read for reports: its columns only (a tuple, not an ORM object, so that the 200,000 rows of
    ten runs of a large corpus stay a few tens of MB)."""

    run_id: int
    case_id: str
    title: str
    status: Outcome
    pass_rate: float
    flaky: bool
    trials: int
    failure: str | None
    permalink: str | None


_RESULT_COLUMNS = [col(column) for column in (CaseResult.run_id, CaseResult.case_id, CaseResult.title, CaseResult.status,
                                               CaseResult.pass_rate, CaseResult.flaky, CaseResult.trials,
                                               CaseResult.failure, CaseResult.permalink)]


def case_results(session: Session, run_id: int) -> list[ResultRow]:
    """A run's case results, ordered by case id."""
    query = columns_of(*_RESULT_COLUMNS).where(col(CaseResult.run_id) == run_id).order_by(col(CaseResult.case_id))
    return cast("list[ResultRow]", list(session.execute(query)))


def statuses(session: Session, run_id: int) -> dict[str, str]:
    """{case id: status} of a run's saved case results."""
    query = select(CaseResult.case_id, CaseResult.status).where(CaseResult.run_id == run_id)
    return {case_id: status for case_id, status in session.exec(query)}


def trial_results(session: Session, run_id: int, *, case_id: str | None = None) -> list[TrialResult]:
    """A run's trial results (of one case, when given), ordered by case and trial."""
    query = select(TrialResult).where(TrialResult.run_id == run_id)
    if case_id is not None:
        query = query.where(TrialResult.case_id == case_id)
    return list(session.exec(query.order_by(col(TrialResult.case_id), col(TrialResult.trial))))


def recent_runs(session: Session, *, limit: int = 20) -> list[EvalRun]:
    """The newest runs of any status, newest first."""
    return list(session.exec(select(EvalRun).order_by(col(EvalRun.id).desc()).limit(limit)))


# ---------------------------------------------------------------- history, for confirmation and flakiness (issue 17)


def recent_finished_ids(session: Session, *, up_to: int, limit: int) -> list[int]:
    """The ids of the newest `limit` finished runs with an id up to `up_to`, newest first."""
    query = select(EvalRun.id).where(EvalRun.status == "finished", col(EvalRun.id) <= up_to)
    return [i for i in session.exec(query.order_by(col(EvalRun.id).desc()).limit(limit)) if i is not None]


def scheduled_trials(session: Session, *, up_to: int, limit: int) -> dict[int, int]:
    """{run id: trials per case it scheduled} of the newest `limit` finished runs up to `up_to`, newest first."""
    query = select(EvalRun.id, EvalRun.trials).where(EvalRun.status == "finished", col(EvalRun.id) <= up_to)
    return {run_id: trials for run_id, trials in session.exec(query.order_by(col(EvalRun.id).desc()).limit(limit))
            if run_id is not None}


def case_history(session: Session, run_ids: Sequence[int], case_ids: Sequence[str] | None = None) -> list[ResultRow]:
    """The case results of `run_ids` (of `case_ids` only, when given), oldest run first."""
    if not run_ids:
        return []
    query = columns_of(*_RESULT_COLUMNS).where(col(CaseResult.run_id).in_(list(run_ids)))
    if case_ids is not None:
        query = query.where(col(CaseResult.case_id).in_(list(case_ids)))
    return cast("list[ResultRow]", list(session.execute(query.order_by(col(CaseResult.run_id), col(CaseResult.case_id)))))


def graded_counts(row: ResultRow) -> tuple[int, int] | None:
    """(passed, graded) trials of a case result, or None for an errored one (its graded count is not recorded)."""
    if row.status == "error":
        return None
    return round(row.pass_rate * row.trials), row.trials


def merged_meter(*meters: UsageMeter) -> UsageMeter:
    """One meter holding the usage of all `meters` (a run's two targets with --against)."""
    return _merged(*meters)


def update_info(session: Session, run: EvalRun, **items: Any) -> None:
    """Set top-level keys of the run's JSON document (`EvalRun.target`)."""
    info = target_info(run)
    info.update(items)
    run.target = json.dumps(info)
    session.add(run)

"""Run records in the database: EvalRun, CaseResult and TrialResult rows. Every function takes a session.

`EvalRun.target` holds a small JSON document describing what was evaluated and what it cost per model:
`{"label": "anthropic:claude-haiku-4-5", "judge": "claude-sonnet-4-5" | null,
  "models": {"<model>": {"input_tokens": N, "output_tokens": N, "cost_usd": X | null}}, "cost_note": "…" | null}`
(read it with `target_info`). A run's cost is the sum over models with a known price; `cost_note` names the
models whose price is unknown.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session, col, select

from bot.cases import utcnow
from bot.evals.runner import CaseOutcome
from bot.llm import UsageMeter, estimate_cost
from bot.store import CaseResult, EvalRun, TrialResult


def create_run(session: Session, *, trigger: str, mode: str, corpus_commit: str | None, config_fingerprint: str,
               target_label: str, judge_model: str | None, trials: int, cases_total: int) -> EvalRun:
    """Insert a `running` EvalRun and flush it so it has an id."""
    run = EvalRun(
        status="running", trigger=trigger, mode=mode, corpus_commit=corpus_commit, config_fingerprint=config_fingerprint,
        target=json.dumps({"label": target_label, "judge": judge_model, "models": {}, "cost_note": None}),
        trials=trials, cases_total=cases_total,
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


def totals(outcomes: Sequence[CaseOutcome]) -> RunTotals:
    """Counts per status and target latency percentiles over all trials."""
    latencies = [t.latency_ms for o in outcomes for t in o.trials if t.latency_ms is not None]
    return RunTotals(
        passed=sum(o.status == "pass" for o in outcomes),
        failed=sum(o.status == "fail" for o in outcomes),
        errored=sum(o.status == "error" for o in outcomes),
        flaky=sum(o.flaky for o in outcomes),
        latency_p50_ms=percentile(latencies, 0.50),
        latency_p95_ms=percentile(latencies, 0.95),
    )


def save_outcomes(session: Session, run: EvalRun, outcomes: Sequence[CaseOutcome]) -> None:
    """Insert one CaseResult per case and one TrialResult per trial of `run` (bulk inserts: runs can be large)."""
    cases: list[dict[str, Any]] = []
    trials: list[dict[str, Any]] = []
    for outcome in outcomes:
        case = outcome.case
        cases.append({
            "run_id": run.id, "case_id": case.id, "title": case.title, "status": outcome.status,
            "pass_rate": outcome.pass_rate, "flaky": outcome.flaky, "trials": len(outcome.trials),
            "failure": outcome.failure, "permalink": case.source.permalink,
        })
        trials += [
            {
                "run_id": run.id, "case_id": case.id, "trial": trial.trial, "status": trial.status, "output": trial.output,
                "verdicts": [v.as_dict() for v in trial.verdicts], "latency_ms": trial.latency_ms,
                "input_tokens": trial.usage.input_tokens, "output_tokens": trial.usage.output_tokens, "error": trial.error,
            }
            for trial in outcome.trials
        ]
    if cases:
        session.execute(insert(CaseResult), cases)
    if trials:
        session.execute(insert(TrialResult), trials)


def finish_run(session: Session, run: EvalRun, outcomes: Sequence[CaseOutcome], *, meter: UsageMeter,
               baseline_run_id: int | None, batch: bool = False) -> EvalRun:
    """Save the outcomes and close the run as `finished` with its totals, tokens, cost and latencies."""
    save_outcomes(session, run, outcomes)
    counts = totals(outcomes)
    usage = meter.total
    cost, unknown = meter.cost(batch=batch)
    info = target_info(run)
    info["models"] = {
        model: {"input_tokens": u.input_tokens, "output_tokens": u.output_tokens,
                "cost_usd": estimate_cost(model, u, batch=batch)}
        for model, u in sorted(meter.by_model.items())
    }
    info["cost_note"] = f"cost unknown for {', '.join(unknown)} (not in the price table; counted as $0)" if unknown else None
    run.target = json.dumps(info)
    run.status = "finished"
    run.finished_at = utcnow()
    run.cases_total = len(outcomes)
    run.passed, run.failed, run.errored, run.flaky = counts.passed, counts.failed, counts.errored, counts.flaky
    run.input_tokens, run.output_tokens = usage.input_tokens, usage.output_tokens
    run.cache_read_tokens, run.cache_write_tokens = usage.cache_read_tokens, usage.cache_write_tokens
    run.cost_usd = round(cost, 6)
    run.latency_p50_ms, run.latency_p95_ms = counts.latency_p50_ms, counts.latency_p95_ms
    run.baseline_run_id = baseline_run_id
    session.add(run)
    session.flush()
    return run


def fail_run(session: Session, run_id: int, *, error: str) -> None:
    """Mark a run `failed` with the reason (it stays out of comparisons)."""
    run = session.get(EvalRun, run_id)
    if run is not None:
        run.status, run.error, run.finished_at = "failed", error, utcnow()
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


def case_results(session: Session, run_id: int) -> list[CaseResult]:
    """A run's case results, ordered by case id."""
    return list(session.exec(select(CaseResult).where(CaseResult.run_id == run_id).order_by(col(CaseResult.case_id))))


def trial_results(session: Session, run_id: int, *, case_id: str | None = None) -> list[TrialResult]:
    """A run's trial results (of one case, when given), ordered by case and trial."""
    query = select(TrialResult).where(TrialResult.run_id == run_id)
    if case_id is not None:
        query = query.where(TrialResult.case_id == case_id)
    return list(session.exec(query.order_by(col(TrialResult.case_id), col(TrialResult.trial))))


def recent_runs(session: Session, *, limit: int = 20) -> list[EvalRun]:
    """The newest runs of any status, newest first."""
    return list(session.exec(select(EvalRun).order_by(col(EvalRun.id).desc()).limit(limit)))

"""Plain-text rendering of a Comparison, for `evalbot eval run` and `evalbot eval report`."""

from __future__ import annotations

import dataclasses
import json

from bot.evals.compare import CaseStatus, Comparison, RunSummary

_INDENT = "      "
PAGE = 20  # cases shown per section unless asked for all: a 20,000-case run stays one screen of report


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f} ms"


def run_header(run: RunSummary) -> list[str]:
    """The run's identity and totals, three or four lines."""
    when = run.started_at.strftime("%Y-%m-%d %H:%M UTC")
    commit = (run.corpus_commit or "unknown")[:10]
    mode = ", batch" if run.mode == "batch" else ""
    cache = ""
    if run.cache_read_tokens or run.cache_write_tokens:
        cache = f" · cache {run.cache_read_tokens:,} read / {run.cache_write_tokens:,} written"
    saved = f" (batch: saved ${run.cost_saved_usd:.4f})" if run.mode == "batch" else ""
    lines = [
        f"Run {run.id} ({run.status}, {run.trigger}{mode}, {when}) · {run.target or 'unknown target'}"
        f" · corpus {commit} · config {run.config_fingerprint or 'unknown'}",
        f"{run.cases_total} case(s) x {run.trials} trial(s): {run.passed} passed, {run.failed} failed, "
        f"{run.errored} error(s), {run.flaky} flaky · pass rate {_rate(run.pass_rate)}",
        f"tokens {run.input_tokens:,} in / {run.output_tokens:,} out{cache} · cost ${run.cost_usd:.4f}{saved}"
        f" · latency p50 {_ms(run.latency_p50_ms)}, p95 {_ms(run.latency_p95_ms)}",
    ]
    if run.cost_note:
        lines.append(f"note: {run.cost_note}")
    if run.error:
        lines.append(f"error: {run.error}")
    return lines


def _case_lines(case: CaseStatus, *, details: bool) -> list[str]:
    rate = f" ({case.pass_rate:.0%} of {case.trials})" if case.trials > 1 else ""
    lines = [f"  {case.case_id}  {case.status}{rate}  {case.title}"]
    if details and case.failure:
        lines += [_INDENT + line for line in case.failure.splitlines()]
    return lines


def _section(title: str, cases: list[CaseStatus], *, details: bool, page: int | None) -> list[str]:
    shown = cases if page is None else cases[:page]
    lines = ["", f"{title}: {len(cases)}"]
    for case in shown:
        lines += _case_lines(case, details=details and case.status != "pass")
    if len(shown) < len(cases):
        lines.append(f"  … and {len(cases) - len(shown)} more (--all shows every case)")
    return lines


def format_comparison(comparison: Comparison, *, page: int | None = PAGE) -> str:
    """The report: header, change against the baseline, then each non-empty category, `page` cases at most each.

    New cases that pass are counted, not listed: on a first run that would be the whole corpus.
    """
    run, base = comparison.run, comparison.baseline
    lines = run_header(run)
    if base is None:
        lines.append("baseline: none (first finished run): every case is new")
    else:
        change = comparison.pass_rate_change
        delta = "" if change is None else f", {change * 100:+.0f} pts"
        lines.append(f"baseline: run {base.id} (pass rate {_rate(base.pass_rate)}{delta})")
    new_failing = [case for case in comparison.new if case.status != "pass"]
    new_passing = len(comparison.new) - len(new_failing)
    sections: list[tuple[str, list[CaseStatus], bool]] = [
        ("Regressions (passed before, fail now)", comparison.regressions, True),
        ("Fixes (failed before, pass now)", comparison.fixes, False),
        (f"New cases that do not pass (of {len(comparison.new)} new)", new_failing, True),
        ("Still failing", comparison.still_failing, True),
        ("Errors (could not be graded)", comparison.errors, True),
        ("Flaky (passed and failed across trials)", comparison.flaky, False),
    ]
    for title, cases, details in sections:
        if cases:
            lines += _section(title, cases, details=details, page=page)
    if new_passing:
        lines += ["", f"New cases that pass: {new_passing}"]
    if comparison.removed:
        removed = comparison.removed if page is None else comparison.removed[:page]
        lines += ["", f"Removed or not run this time: {len(comparison.removed)}"]
        lines += [f"  {r.case_id}  (was {r.baseline_status})  {r.title}" for r in removed]
        if len(removed) < len(comparison.removed):
            lines.append(f"  … and {len(comparison.removed) - len(removed)} more (--all shows every case)")
    if not comparison.regressions:
        lines += ["", "No regressions."]
    return "\n".join(lines)


def comparison_json(comparison: Comparison) -> str:
    """The whole comparison as JSON, every case included, for tools (`evalbot eval report --format json`)."""
    data = dataclasses.asdict(comparison)
    data["run"]["pass_rate"] = comparison.run.pass_rate
    if comparison.baseline is not None:
        data["baseline"]["pass_rate"] = comparison.baseline.pass_rate
    data["pass_rate_change"] = comparison.pass_rate_change
    return json.dumps(data, indent=2, default=str)

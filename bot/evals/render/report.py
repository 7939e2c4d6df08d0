"""Plain-text rendering of a Comparison, for `evalbot eval run` and `evalbot eval report`."""

from __future__ import annotations

from bot.evals.compare import CaseStatus, Comparison, RunSummary

_INDENT = "      "


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


def format_comparison(comparison: Comparison) -> str:
    """The whole report: header, change against the baseline, then each non-empty category."""
    run, base = comparison.run, comparison.baseline
    lines = run_header(run)
    if base is None:
        lines.append("baseline: none (first finished run): every case is new")
    else:
        change = comparison.pass_rate_change
        delta = "" if change is None else f", {change * 100:+.0f} pts"
        lines.append(f"baseline: run {base.id} (pass rate {_rate(base.pass_rate)}{delta})")
    sections: list[tuple[str, list[CaseStatus], bool]] = [
        ("Regressions (passed before, fail now)", comparison.regressions, True),
        ("Fixes (failed before, pass now)", comparison.fixes, False),
        ("New cases", comparison.new, True),
        ("Still failing", comparison.still_failing, True),
        ("Errors (could not be graded)", comparison.errors, True),
        ("Flaky (passed and failed across trials)", comparison.flaky, False),
    ]
    for title, cases, details in sections:
        if cases:
            lines += ["", f"{title}: {len(cases)}"]
            for case in cases:
                lines += _case_lines(case, details=details and case.status != "pass")
    if comparison.removed:
        lines += ["", f"Removed or not run this time: {len(comparison.removed)}"]
        lines += [f"  {r.case_id}  (was {r.baseline_status})  {r.title}" for r in comparison.removed]
    if not comparison.regressions:
        lines += ["", "No regressions."]
    return "\n".join(lines)

"""Plain-text rendering of a Comparison, for `evalbot eval run` and `evalbot eval report`."""

from __future__ import annotations

import dataclasses
import json
import re

from bot.evals.compare import CaseStatus, Comparison, RunSummary
from bot.evals.confirm import ConfirmPolicy

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


def interval_text(bounds: tuple[float, float]) -> str:
    """'95% CI 12–64%'."""
    return f"95% CI {bounds[0] * 100:.0f}–{bounds[1] * 100:.0f}%"


def confirmation_text(case: CaseStatus) -> str | None:
    """What the re-run of a flipped case found: 'confirmed: re-run 0/5 against 10/10 before (p 0.0003)'."""
    c = case.confirmation
    if c is None:
        return None
    rerun = c.rerun_tally
    ran = f"re-run {rerun.passed}/{rerun.total} passed" if rerun.total else "no re-run"
    why = f"one-sided Fisher p {c.p_value:.2g}"
    if c.decision == "confirmed" and c.p_value > ConfirmPolicy().alpha:
        why += "; every re-run trial went the same way and the case never did before"
    return (f"{c.decision} {c.direction}: {ran}; {c.current.passed}/{c.current.total} now against "
            f"{c.reference.passed}/{c.reference.total} before ({why})")


def history_text(case: CaseStatus) -> str | None:
    """The case over recent runs: 'over 10 runs: passed 17/20 (95% CI 64–95%), 4 flips'."""
    h = case.history
    if h is None or h.runs < 2:
        return None
    rate = f"{h.tally.rate:.0%}" if h.tally.rate is not None else "n/a"
    return (f"over {h.runs} runs: passed {h.tally.passed}/{h.tally.total} ({rate}, {interval_text(h.interval)}), "
            f"{h.flips} flip(s)")


def _case_lines(case: CaseStatus, *, details: bool) -> list[str]:
    rate = f" ({case.pass_rate:.0%} of {case.trials}, {interval_text(case.interval)})" if case.trials > 1 else ""
    mark = " [quarantined]" if case.quarantined else ""
    lines = [f"  {case.case_id}  {case.status}{rate}{mark}  {case.title}"]
    confirmed = confirmation_text(case)
    if confirmed:
        lines.append(_INDENT + confirmed)
    if details and case.failure:
        lines += [_INDENT + line for line in collapse_trials(case.failure)]
    return lines


_TRIAL = re.compile(r"^trial (\d+): (.*)$")


def collapse_trials(failure: str) -> list[str]:
    """The failure's lines with the same problem in several trials said once: 'trials 1-6: equals: …'."""
    order: list[str] = []
    trials: dict[str, list[int]] = {}
    for line in failure.splitlines():
        match = _TRIAL.match(line)
        problem, trial = (match.group(2), int(match.group(1))) if match else (line, None)
        if problem not in trials:
            order.append(problem)
            trials[problem] = []
        if trial is not None:
            trials[problem].append(trial)
    lines = []
    for problem in order:
        numbers = trials[problem]
        if not numbers:
            lines.append(problem)
        elif len(numbers) == 1:
            lines.append(f"trial {numbers[0]}: {problem}")
        elif numbers == list(range(numbers[0], numbers[-1] + 1)):
            lines.append(f"trials {numbers[0]}-{numbers[-1]}: {problem}")
        else:
            lines.append(f"trials {', '.join(map(str, numbers))}: {problem}")
    return lines


def _flaky_lines(case: CaseStatus) -> list[str]:
    lines = _case_lines(case, details=False)
    history = history_text(case)
    return lines + ([_INDENT + history] if history else [])


def _section(title: str, cases: list[CaseStatus], *, details: bool, page: int | None) -> list[str]:
    shown = cases if page is None else cases[:page]
    lines = ["", f"{title}: {len(cases)}"]
    for case in shown:
        lines += _case_lines(case, details=details and case.status != "pass")
    return lines + _more(len(cases) - len(shown))


def _more(hidden: int) -> list[str]:
    return [f"  … and {hidden} more (--all shows every case)"] if hidden > 0 else []


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
        if comparison.changes:
            lines.append(f"changed since run {base.id}: " + "; ".join(comparison.changes))
    new_failing = [case for case in comparison.new if case.status != "pass"]
    new_passing = len(comparison.new) - len(new_failing)
    sections: list[tuple[str, list[CaseStatus], bool]] = [
        ("Regressions (passed before, fail now; confirmed by re-running)", comparison.regressions, True),
        ("Fixes (failed before, pass now)", comparison.fixes, False),
        ("Unconfirmed flips (the re-run did not confirm them: likely noise)", comparison.unconfirmed, False),
        (f"New cases that do not pass (of {len(comparison.new)} new)", new_failing, True),
        ("Still failing", comparison.still_failing, True),
        ("Errors (could not be graded)", comparison.errors, True),
    ]
    for title, cases, details in sections:
        if cases:
            lines += _section(title, cases, details=details, page=page)
    if new_passing:
        lines += ["", f"New cases that pass: {new_passing}"]
    if comparison.flaky:
        flaky = comparison.flaky if page is None else comparison.flaky[:page]
        lines += ["", f"Flaky (passed and failed across trials or recent runs): {len(comparison.flaky)}"]
        for case in flaky:
            lines += _flaky_lines(case)
        lines += _more(len(comparison.flaky) - len(flaky))
    if comparison.quarantined:
        quarantined = comparison.quarantined if page is None else comparison.quarantined[:page]
        lines += ["", f"Quarantined (run, never fail the gate): {len(comparison.quarantined)}"]
        lines += [f"  {c.case_id}  {c.status}  {c.title}" for c in quarantined]
        lines += _more(len(comparison.quarantined) - len(quarantined))
    lines += against_lines(comparison)
    if comparison.removed:
        removed = comparison.removed if page is None else comparison.removed[:page]
        lines += ["", f"Removed or not run this time: {len(comparison.removed)}"]
        lines += [f"  {r.case_id}  (was {r.baseline_status})  {r.title}" for r in removed]
        lines += _more(len(comparison.removed) - len(removed))
    if comparison.judge_agreement:
        lines += ["", comparison.judge_agreement[0].upper() + comparison.judge_agreement[1:] + "."]
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


def against_lines(comparison: Comparison) -> list[str]:
    """The --against column: both totals, what differs between the configurations, and each case that differs."""
    other = comparison.against
    if other is None:
        return []
    total = len(comparison.cases)
    here = sum(c.status == "pass" for c in comparison.cases)
    lines = ["", f"Side by side with {other.ref} ({other.commit[:7]}, {other.label or 'unknown target'}): "
                 f"{here}/{total} pass here, {other.passed}/{total} at {other.ref}"]
    lines.append("  this config vs " + other.ref + ": " + ("; ".join(other.changes) if other.changes else "no difference"))
    differ = [c for c in comparison.cases if other.cases.get(c.case_id, {}).get("status") != c.status]
    for case in differ:
        there = other.cases.get(case.case_id, {})
        lines.append(f"  {case.case_id}  here {case.status} ({case.pass_rate:.0%})  at {other.ref} "
                     f"{there.get('status', 'not run')} ({float(there.get('pass_rate') or 0):.0%})  {case.title}")
    if not differ:
        lines.append("  every case has the same status in both columns")
    return lines

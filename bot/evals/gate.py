"""The CI gate: which exit code a finished run earns, and the one line that says which rule decided it.

0  every graded case passed, or nothing regressed (as the flags ask);
1  a regression (with --fail-on-regression) or any failing case (with --fail-on-failure);
3  a case could not be graded (model down, 529s, a target that crashed), beyond --allow-errors N.
Quarantined cases (`quarantined: true` in their file) are run and reported but never counted here, and only
confirmed regressions count (a flip the re-run did not confirm is noise; see bot/evals/confirm.py).
Errors outrank failures: a run whose cases could not be graded says nothing about regressions, so it must not
pass a gate that only asked about them. Exit 2 (configuration) is raised before any run starts.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.evals.compare import Comparison

OK, FAILED, UNGRADED = 0, 1, 3


@dataclass(frozen=True)
class GateRules:
    """What the caller asked the gate to enforce."""

    fail_on_regression: bool = False
    fail_on_failure: bool = False
    allow_errors: int = 0


@dataclass(frozen=True)
class Verdict:
    """The exit code and the reason, worded for the last line of a report."""

    exit_code: int
    reason: str


def _ids(cases: list, limit: int = 5) -> str:
    shown = ", ".join(c.case_id for c in cases[:limit])
    return shown + (f" and {len(cases) - limit} more" if len(cases) > limit else "")


def decide(comparison: Comparison, rules: GateRules) -> Verdict:
    """The gate's verdict on `comparison` under `rules`."""
    counted = [c for c in comparison.cases if not c.quarantined]
    errors = [c for c in counted if c.status == "error"]
    graded = [c for c in counted if c.status != "error"]
    regressions = [c for c in comparison.regressions if not c.quarantined]
    if len(errors) > rules.allow_errors:
        allowed = f" (--allow-errors {rules.allow_errors})" if rules.allow_errors else ""
        return Verdict(UNGRADED, f"exit 3: {len(errors)} of {len(comparison.cases)} cases could not be graded"
                                 f"{allowed}: {_ids(errors)}")
    if rules.fail_on_regression and regressions:
        return Verdict(FAILED, f"exit 1: {len(regressions)} regression(s) (--fail-on-regression): {_ids(regressions)}")
    failing = [c for c in graded if c.status == "fail"]
    if rules.fail_on_failure and failing:
        return Verdict(FAILED, f"exit 1: {len(failing)} failing case(s) (--fail-on-failure): {_ids(failing)}")
    tolerated = f"; {len(errors)} ungraded case(s) tolerated by --allow-errors {rules.allow_errors}" if errors else ""
    if len(counted) < len(comparison.cases):
        tolerated += f"; {len(comparison.cases) - len(counted)} quarantined case(s) not counted"
    if not comparison.cases:
        return Verdict(OK, "exit 0: no case was run")
    if rules.fail_on_failure:
        return Verdict(OK, f"exit 0: all {len(graded)} graded case(s) passed{tolerated}")
    if rules.fail_on_regression:
        return Verdict(OK, f"exit 0: nothing regressed{tolerated}")
    return Verdict(OK, f"exit 0: no gate asked for (--fail-on-regression, --fail-on-failure){tolerated}")

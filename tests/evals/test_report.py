"""The plain-text report: readable at any corpus size, its helpers; the JSON report carries every case."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from bot.evals.compare import CaseStatus, Comparison, RunSummary
from bot.evals.render.report import PAGE, collapse_trials, comparison_json, format_comparison


def summary(run_id: int, *, cases: int, passed: int) -> RunSummary:
    return RunSummary(
        id=run_id, status="finished", trigger="cli", mode="sync", started_at=datetime(2026, 5, 1, tzinfo=timezone.utc),
        finished_at=None, corpus_commit="abc1234", config_fingerprint="f00", target="python:t", judge_model=None,
        trials=1, cases_total=cases, passed=passed, failed=cases - passed, errored=0, flaky=0, input_tokens=0,
        output_tokens=0, cost_usd=0.0, cost_note=None, latency_p50_ms=None, latency_p95_ms=None, error=None,
    )


def status(n: int, value: str, *, before: str | None) -> CaseStatus:
    return CaseStatus(case_id=f"case{n:04d}", title=f"Case {n}", status=value, pass_rate=1.0 if value == "pass" else 0.0,
                      flaky=False, trials=1, failure=None if value == "pass" else "contains: expected 'ok'",
                      permalink=None, baseline_status=before, baseline_pass_rate=None)


def first_run(passing: int, failing: int) -> Comparison:
    cases = [status(n, "pass", before=None) for n in range(passing)]
    cases += [status(passing + n, "fail", before=None) for n in range(failing)]
    return Comparison(run=summary(1, cases=len(cases), passed=passing), baseline=None, cases=cases, regressions=[],
                      fixes=[], new=cases, removed=[], still_failing=[c for c in cases if c.status == "fail"],
                      errors=[], flaky=[])


def test_a_large_first_run_counts_passing_cases_and_pages_failures():
    text = format_comparison(first_run(5000, 300))
    assert "New cases that pass: 5000" in text
    assert "New cases that do not pass (of 5300 new): 300" in text
    assert text.count("  … and 280 more (--all shows every case)") == 2  # new failures and still failing
    assert "case0000" not in text  # a passing new case is counted, not listed
    assert len(text.splitlines()) < 120


def test_all_lists_every_case():
    text = format_comparison(first_run(10, 300), page=None)
    assert "more (--all" not in text
    assert text.count("  case") == 600  # each failing case in both of its sections


def test_a_small_run_is_shown_whole():
    text = format_comparison(first_run(3, PAGE))
    assert "more (--all" not in text and "case0003  fail" in text


def test_json_carries_every_case_and_the_rates():
    data = json.loads(comparison_json(first_run(40, 10)))
    assert len(data["cases"]) == 50 and len(data["still_failing"]) == 10
    assert data["run"]["pass_rate"] == 0.8 and data["baseline"] is None
    assert data["run"]["started_at"].startswith("2026-05-01")


@pytest.mark.parametrize(
    ("failure", "lines"),
    [
        ("equals: expected 'YES'", ["equals: expected 'YES'"]),
        ("trial 1: a\ntrial 2: a\ntrial 3: a", ["trials 1-3: a"]),
        ("trial 1: a\ntrial 2: b\ntrial 4: a", ["trials 1, 4: a", "trial 2: b"]),
        ("trial 2: no reply from the target: timeout", ["trial 2: no reply from the target: timeout"]),
    ],
)
def test_the_same_problem_in_several_trials_is_said_once(failure, lines):
    assert collapse_trials(failure) == lines


def test_a_comparison_reprs_as_a_summary_whatever_its_size():
    # asyncio.run on Python 3.11 reprs the main task's result (signal.getsignal of its SIGINT handler): a full
    # repr of 20,000 cases was 50 MB of text at the end of every run, the run's peak memory.
    small, large = repr(first_run(3, 2)), repr(first_run(5000, 300))
    assert large == "Comparison(run=1, baseline=None, cases=5300, regressions=0, fixes=0, errors=0)"
    assert len(small) == len(large) - 3

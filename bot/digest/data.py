"""The digest of an eval run as plain data: what to tell the channel, built from a Comparison and the run history.

`build_digest(comparison, history)` is pure; `load_digest(session, run_id)` reads what it needs. Renderers (Slack
Block Kit in bot/slack/blocks/digest.py, the trend chart in bot/digest/chart.py) take a `Digest` and nothing else.

A run whose every case errored, or that failed outright, is a *failed* digest (`failure` set): one line saying
why, instead of a list of identical errors. `pending_digest_runs` lists the runs whose digest is still owed.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlmodel import Session, col, or_, select

from bot.core.clock import utcnow
from bot.core.kinds import Outcome, RunStatus, RunTrigger
from bot.evals.compare import CaseStatus, Comparison, RunSummary, compare_runs
from bot.store.tables import EvalRun, JobClaim

if TYPE_CHECKING:
    from bot.corpus.files import Corpus
    from bot.digest.people import Growth

TREND_RUNS = 30  # runs in the trend chart
DIGEST_JOB = "digest"  # JobClaim job of a digest being (or wanting to be) posted; slot = run id
PENDING_WINDOW = timedelta(days=7)  # an older unposted run is left alone
DETAIL_CHARS = 240
_TRIAL_PREFIX = re.compile(r"^trial \d+: ")


@dataclass(frozen=True)
class Item:
    """One case in a digest list."""

    case_id: str
    title: str
    detail: str | None  # the failing expectation, the judge's reason or the error; flaky: how often it passed
    permalink: str | None  # the Slack thread it was captured from
    status: Outcome  # now
    flaggers: tuple[str, ...] = ()  # who flagged it (regressions and fixes, filled by bot.digest.people)
    judged: bool = False  # a rubric verdict of the judge failed it (the digest offers "the judge was wrong")


@dataclass(frozen=True)
class TrendPoint:
    """One finished run in the trend chart."""

    run_id: int
    when: datetime
    pass_rate: float | None
    cost_usd: float


@dataclass(frozen=True)
class Digest:
    """Everything a digest says about one run."""

    run_id: int
    when: datetime  # when the run started (UTC)
    trigger: RunTrigger
    status: RunStatus  # finished or failed
    corpus_commit: str | None
    target: str | None
    failure: str | None  # set when the whole run failed: the reason, said once
    cases_total: int
    passed: int
    failed: int
    errored: int
    pass_rate: float | None
    pass_rate_change: float | None  # since the baseline, in [-1, 1]
    baseline_run_id: int | None
    regressions: tuple[Item, ...]
    fixes: tuple[Item, ...]
    new: tuple[Item, ...]
    errors: tuple[Item, ...]
    flaky: tuple[Item, ...]
    still_failing: int
    removed: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    cost_note: str | None
    cost_saved_usd: float  # saved by Message Batches (batch mode) against the synchronous price
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    trend: tuple[TrendPoint, ...] = ()  # oldest first, this run last when it finished
    growth: Growth | None = None  # the week's contributors and corpus growth (bot.digest.people), on a week's first run
    # issue 17: flips the re-run did not confirm, what changed since the baseline, quarantined cases
    unconfirmed: tuple[Item, ...] = ()
    changes: tuple[str, ...] = ()
    quarantined: int = 0
    judge_agreement: str | None = None

    def lists(self) -> list[tuple[str, tuple[Item, ...]]]:
        """The case lists in the order the digest shows them: regressions first."""
        return [("regressions", self.regressions), ("fixes", self.fixes), ("unconfirmed", self.unconfirmed),
                ("new", self.new), ("errors", self.errors), ("flaky", self.flaky)]


def first_line(text: str | None, limit: int = DETAIL_CHARS) -> str | None:
    """The first problem of a failure text (one per line), shortened, with a count of the others."""
    if not text:
        return None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return None
    line = lines[0] if len(lines[0]) <= limit else lines[0][: limit - 1] + "…"
    return line + (f" (+{len(lines) - 1} more)" if len(lines) > 1 else "")


def _item(case: CaseStatus, detail: str | None) -> Item:
    return Item(case.case_id, case.title, detail, case.permalink, case.status)


def _flaky_detail(case: CaseStatus) -> str:
    history = case.history
    if history is not None and history.flaky and history.tally.total:
        low, high = history.interval
        detail = (f"passed {history.tally.passed}/{history.tally.total} over the last {history.runs} runs "
                  f"({low * 100:.0f}–{high * 100:.0f}%), {history.flips} flips")
    else:
        detail = f"passed {case.pass_rate:.0%} of {case.trials} trials"
    return detail + (" · quarantined" if case.quarantined else "")


def _judged(case: CaseStatus) -> bool:
    """A failed rubric verdict among the case's problems (graders write 'kind: message', one a line)."""
    return any(_TRIAL_PREFIX.sub("", line).startswith("rubric: ") for line in (case.failure or "").splitlines())


def _rerun_detail(case: CaseStatus, failure: str | None) -> str | None:
    """'0/5 on re-run (10/10 before)' ahead of the failure, for a case the run re-ran."""
    c = case.confirmation
    if c is None:
        return failure
    rerun = c.rerun_tally
    said = f"{rerun.passed}/{rerun.total} on re-run" if rerun.total else f"{c.current.passed}/{c.current.total} now"
    text = f"{said} ({c.reference.passed}/{c.reference.total} before)"
    return f"{text}: {failure}" if failure else text


def _new_detail(case: CaseStatus) -> str | None:
    if case.status == "pass":
        return "passes"
    return first_line(case.failure) or case.status


def run_failure(run: RunSummary, errors: Sequence[CaseStatus]) -> str | None:
    """Why the whole run failed, or None: the run's own error, or the most common error when every case errored."""
    if run.status == "failed":
        return run.error or "the run stopped without saying why"
    if run.cases_total and run.errored >= run.cases_total and errors:
        reasons = Counter(_TRIAL_PREFIX.sub("", (c.failure or "unknown error").splitlines()[0]) for c in errors)
        reason, _ = reasons.most_common(1)[0]
        return f"all {run.cases_total} cases errored: {first_line(reason)}"
    return None


def build_digest(comparison: Comparison, history: Sequence[RunSummary] = ()) -> Digest:
    """The digest of `comparison.run`; `history` holds earlier finished runs (any order) for the trend."""
    run = comparison.run
    points = {r.id: r for r in history if r.status == "finished" and r.id <= run.id}
    if run.status == "finished":
        points[run.id] = run
    trend = tuple(TrendPoint(r.id, r.started_at, r.pass_rate, r.cost_usd) for _, r in sorted(points.items()))[-TREND_RUNS:]
    return Digest(
        run_id=run.id, when=run.started_at, trigger=run.trigger, status=run.status, corpus_commit=run.corpus_commit,
        target=run.target, failure=run_failure(run, comparison.errors), cases_total=run.cases_total,
        passed=run.passed, failed=run.failed, errored=run.errored, pass_rate=run.pass_rate,
        pass_rate_change=comparison.pass_rate_change,
        baseline_run_id=comparison.baseline.id if comparison.baseline else None,
        regressions=tuple(replace(_item(c, _rerun_detail(c, first_line(c.failure))), judged=_judged(c))
                          for c in comparison.regressions),
        fixes=tuple(_item(c, None) for c in comparison.fixes),
        new=tuple(_item(c, _new_detail(c)) for c in comparison.new),
        errors=tuple(_item(c, first_line(c.failure)) for c in comparison.errors),
        flaky=tuple(_item(c, _flaky_detail(c)) for c in comparison.flaky),
        still_failing=len(comparison.still_failing), removed=len(comparison.removed),
        input_tokens=run.input_tokens, output_tokens=run.output_tokens, cost_usd=run.cost_usd,
        cost_note=run.cost_note, cost_saved_usd=run.cost_saved_usd, latency_p50_ms=run.latency_p50_ms, latency_p95_ms=run.latency_p95_ms, trend=trend,
        unconfirmed=tuple(_item(c, _rerun_detail(c, None)) for c in comparison.unconfirmed),
        changes=tuple(comparison.changes), quarantined=len(comparison.quarantined),
        judge_agreement=comparison.judge_agreement,
    )


def run_history(session: Session, *, up_to: int, limit: int = TREND_RUNS) -> list[RunSummary]:
    """The newest `limit` finished runs with an id up to `up_to`, oldest first."""
    rows = session.exec(
        select(EvalRun).where(EvalRun.status == "finished", col(EvalRun.id) <= up_to)
        .order_by(col(EvalRun.id).desc()).limit(limit)
    )
    return [RunSummary.of(row) for row in reversed(list(rows))]


def load_digest(session: Session, run_id: int, *, corpus: Corpus | None = None) -> Digest:
    """The digest of run `run_id` compared with the previous finished run (RunNotFoundError if there is no such run).

    With the `corpus`, it also names people: flaggers of regressions and fixes, the week's contributors.
    """
    comparison = compare_runs(session, run_id)
    digest = build_digest(comparison, run_history(session, up_to=run_id))
    if corpus is None:
        return digest
    from bot.digest.people import load_people  # people reads the case files and the flags

    return load_people(session, corpus, digest)


def pending_digest_runs(session: Session, *, now: datetime | None = None) -> list[int]:
    """Ended runs of the last week whose digest is owed and not posted, oldest first.

    Owed: the nightly job's and `/eval run`'s runs, and any run a post was attempted for (a digest claim exists).
    """
    since = (now or utcnow()) - PENDING_WINDOW
    claimed = select(JobClaim.slot).where(JobClaim.job == DIGEST_JOB)
    query = select(EvalRun.id).where(
        col(EvalRun.status).in_(("finished", "failed")), col(EvalRun.digest_ts).is_(None), EvalRun.started_at >= since,
        or_(col(EvalRun.trigger).in_(("nightly", "slack")), col(EvalRun.id).in_(
            [int(slot) for slot in session.exec(claimed) if slot.isdigit()] or [-1])),
    ).order_by(col(EvalRun.id))
    return [run_id for run_id in session.exec(query) if run_id is not None]

"""Compare a run with a baseline run: what regressed, what got fixed, what is new, gone, failing, broken, flaky.

The public API is `compare_runs(session, run_id, baseline_id=None) -> Comparison`, built only of frozen plain
dataclasses (no ORM objects), so the CLI report, JUnit output and the Slack digest all render the same data.

Categories, for each case of the run (a case can be in several lists, e.g. a flaky regression):
- `regressions`: passed in the baseline, fails now, and confirmed by re-running when the run re-ran it
  (bot/evals/confirm.py): a flip the re-run did not confirm is in `unconfirmed` instead. A regression the
  baseline left unconfirmed and this run confirmed (the case kept failing) is a regression too.
- `fixes`: failed in the baseline, passes now (confirmed, likewise).
- `unconfirmed`: flips (either way) that the re-run did not confirm: noise until shown otherwise.
- `new`: not in the baseline (whatever its status now).
- `removed`: in the baseline but not in this run (deleted, or left out by --case/--tag).
- `still_failing`: fails now and did not pass in the baseline (failed, or errored there), unless it is a regression.
- `errors`: could not be graded now (the target or the judge kept failing).
- `flaky`: its trials both passed and failed now, or across runs (see `History`).
- `quarantined`: marked `quarantined: true` in its case file when the run started (never fails the gate).
Without a baseline (the first run) every case is new and nothing regresses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session

from bot.core.errors import RunNotFoundError
from bot.core.kinds import Outcome, RunMode, RunStatus, RunTrigger
from bot.evals import records, reviews
from bot.evals.against import AGAINST_KEY, AgainstColumn
from bot.evals.changes import SYSTEM_KEY, describe
from bot.evals.confirm import Confirmation
from bot.evals.rerun import CONFIRM_KEY
from bot.evals.stats import Tally, wilson
from bot.store.tables import EvalRun

QUARANTINE_KEY = "quarantined"  # key in EvalRun.target: the ids of the cases quarantined when the run started
HISTORY_RUNS = 10  # finished runs looked at for flakiness across runs
FLAKY_FLIPS = 2  # status flips within HISTORY_RUNS that make a case flaky


@dataclass(frozen=True)
class RunSummary:
    """One run's record: what was evaluated, when, and the totals."""

    id: int
    status: RunStatus
    trigger: RunTrigger
    mode: RunMode
    started_at: datetime
    finished_at: datetime | None
    corpus_commit: str | None
    config_fingerprint: str | None
    target: str | None  # label such as "anthropic:claude-haiku-4-5"
    judge_model: str | None
    trials: int
    cases_total: int
    passed: int
    failed: int
    errored: int
    flaky: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    cost_note: str | None  # set when some model's price is unknown
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    error: str | None
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_saved_usd: float = 0.0  # what the batched calls would have cost more through the synchronous API

    @property
    def pass_rate(self) -> float | None:
        """Passed cases over all cases (errors count as not passed), or None for an empty run."""
        return self.passed / self.cases_total if self.cases_total else None

    @classmethod
    def of(cls, run: EvalRun) -> RunSummary:
        """The summary of an EvalRun row."""
        info = records.target_info(run)
        assert run.id is not None
        return cls(
            id=run.id, status=run.status, trigger=run.trigger, mode=run.mode, started_at=run.started_at,
            finished_at=run.finished_at, corpus_commit=run.corpus_commit, config_fingerprint=run.config_fingerprint,
            target=info.get("label"), judge_model=info.get("judge"), trials=run.trials, cases_total=run.cases_total,
            passed=run.passed, failed=run.failed, errored=run.errored, flaky=run.flaky, input_tokens=run.input_tokens,
            output_tokens=run.output_tokens, cost_usd=run.cost_usd, cost_note=info.get("cost_note"),
            latency_p50_ms=run.latency_p50_ms, latency_p95_ms=run.latency_p95_ms, error=run.error,
            cache_read_tokens=run.cache_read_tokens, cache_write_tokens=run.cache_write_tokens,
            cost_saved_usd=run.cost_saved_usd,
        )


@dataclass(frozen=True)
class CaseStatus:
    """One case in the run, next to its baseline result."""

    case_id: str
    title: str
    status: Outcome
    pass_rate: float
    flaky: bool
    trials: int
    failure: str | None  # grader messages or the error, one line per problem
    permalink: str | None
    baseline_status: str | None  # None: not in the baseline
    baseline_pass_rate: float | None
    confirmation: Confirmation | None = None  # set when the run re-ran this case because it flipped
    quarantined: bool = False
    history: History | None = None  # this case over the recent runs

    @property
    def interval(self) -> tuple[float, float]:
        """The 95% Wilson interval of the pass rate over this run's graded trials."""
        graded = self.trials if self.status != "error" else 0
        return wilson(Tally(round(self.pass_rate * graded), graded))

    @property
    def flaky_across_runs(self) -> bool:
        """Flaky over the recent runs rather than (only) within this one."""
        return self.history is not None and self.history.flaky

    @classmethod
    def of(cls, row: records.ResultRow, before: records.ResultRow | None, *, confirmation: Confirmation | None = None,
           quarantined: bool = False, history: History | None = None) -> CaseStatus:
        """The status of a CaseResult row next to its baseline row."""
        return cls(
            case_id=row.case_id, title=row.title, status=row.status, pass_rate=row.pass_rate, flaky=row.flaky,
            trials=row.trials, failure=row.failure, permalink=row.permalink,
            baseline_status=before.status if before else None, baseline_pass_rate=before.pass_rate if before else None,
            confirmation=confirmation, quarantined=quarantined, history=history,
        )


@dataclass(frozen=True)
class History:
    """One case over the newest finished runs up to this one: pooled graded trials and status flips."""

    runs: int  # runs the case was in
    tally: Tally  # graded trials over those runs
    flips: int  # pass <-> fail changes from one run to the next
    flaky_runs: int  # runs whose own trials both passed and failed

    @property
    def flaky(self) -> bool:
        """At least FLAKY_FLIPS flips, or trials that both passed and failed in two runs or more."""
        return self.flips >= FLAKY_FLIPS or self.flaky_runs >= 2

    @property
    def interval(self) -> tuple[float, float]:
        """The 95% Wilson interval of the pooled pass rate."""
        return wilson(self.tally)


@dataclass(frozen=True)
class RemovedCase:
    """A case of the baseline that this run did not evaluate."""

    case_id: str
    title: str
    baseline_status: str


@dataclass(frozen=True, repr=False)
class Comparison:
    """A run compared with its baseline (see the module docstring for the categories).

    Its repr is a summary, not every case: something does repr it (asyncio.run's SIGINT bookkeeping on Python 3.11
    formats the main task's result), and at 20,000 cases the full repr is 50 MB of text.
    """

    run: RunSummary
    baseline: RunSummary | None
    cases: list[CaseStatus]  # every case of the run, by case id
    regressions: list[CaseStatus]
    fixes: list[CaseStatus]
    new: list[CaseStatus]
    removed: list[RemovedCase]
    still_failing: list[CaseStatus]
    errors: list[CaseStatus]
    flaky: list[CaseStatus]
    unconfirmed: list[CaseStatus] = field(default_factory=list)
    quarantined: list[CaseStatus] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)  # what changed since the baseline, one line each
    against: AgainstColumn | None = None  # the other column of a run made with --against REF
    judge_agreement: str | None = None  # judge–human agreement over reviewed verdicts (bot/evals/reviews.py)

    def __repr__(self) -> str:
        baseline = self.baseline.id if self.baseline is not None else None
        return (f"Comparison(run={self.run.id}, baseline={baseline}, cases={len(self.cases)}, "
                f"regressions={len(self.regressions)}, fixes={len(self.fixes)}, errors={len(self.errors)})")

    @property
    def has_regressions(self) -> bool:
        """True when any case went from pass to fail."""
        return bool(self.regressions)

    @property
    def pass_rate_change(self) -> float | None:
        """This run's pass rate minus the baseline's, or None without a baseline."""
        if self.baseline is None or self.run.pass_rate is None or self.baseline.pass_rate is None:
            return None
        return self.run.pass_rate - self.baseline.pass_rate


def resolve_baseline(session: Session, run_id: int, baseline_id: int | None) -> EvalRun | None:
    """The baseline run: `baseline_id` if given (it must exist and be finished), else the previous finished run."""
    if baseline_id is None:
        return records.latest_finished_run(session, before=run_id)
    baseline = records.get_run(session, baseline_id)
    if baseline is None:
        raise RunNotFoundError(f"there is no run {baseline_id} to compare with (see `evalbot eval report`)")
    if baseline.status != "finished":
        raise RunNotFoundError(f"run {baseline_id} is {baseline.status}, not finished: it cannot be a baseline")
    return baseline


def case_histories(session: Session, run_id: int, *, runs: int = HISTORY_RUNS) -> dict[str, History]:
    """Each case's History over the newest `runs` finished runs up to `run_id` (that run included if finished)."""
    run_ids = records.recent_finished_ids(session, up_to=run_id, limit=runs)
    if run_id not in run_ids:
        run_ids = [run_id, *run_ids[: runs - 1]]
    by_case: dict[str, list[records.ResultRow]] = {}
    for row in records.case_history(session, run_ids):
        by_case.setdefault(row.case_id, []).append(row)
    histories = {}
    for case_id, rows in by_case.items():
        tally, flips, last = Tally(0, 0), 0, None
        for row in rows:  # oldest run first
            counts = records.graded_counts(row)
            if counts is not None:
                tally = tally + Tally(*counts)
            if row.status in ("pass", "fail"):
                flips += last is not None and row.status != last
                last = row.status
        histories[case_id] = History(len(rows), tally, flips, sum(r.flaky for r in rows))
    return histories


def _confirmations(run: EvalRun, baseline: EvalRun | None) -> dict[str, Confirmation]:
    """The run's recorded confirmations, when they were made against this baseline."""
    if baseline is None or run.baseline_run_id != baseline.id:
        return {}
    raw = records.target_info(run).get(CONFIRM_KEY) or {}
    return {case_id: Confirmation.from_dict(data) for case_id, data in raw.items()}


def compare_runs(session: Session, run_id: int, baseline_id: int | None = None) -> Comparison:
    """Compare run `run_id` with `baseline_id`, or with the previous finished run when it is None."""
    run = records.get_run(session, run_id)
    if run is None:
        raise RunNotFoundError(f"there is no run {run_id} (see `evalbot eval report`)")
    baseline = resolve_baseline(session, run_id, baseline_id)
    current = records.case_results(session, run_id)
    before = {row.case_id: row for row in records.case_results(session, baseline.id)} if baseline and baseline.id else {}
    confirmed = _confirmations(run, baseline)
    quarantined = set(records.target_info(run).get(QUARANTINE_KEY) or [])
    histories = case_histories(session, run_id)
    cases = [CaseStatus.of(row, before.get(row.case_id), confirmation=confirmed.get(row.case_id),
                           quarantined=row.case_id in quarantined, history=histories.get(row.case_id))
             for row in current]
    now_ids = {row.case_id for row in current}
    was = {c.case_id: c.baseline_status for c in cases}

    def doubted(case: CaseStatus) -> bool:
        return case.confirmation is not None and case.confirmation.decision == "unconfirmed"

    def confirmed_drop(case: CaseStatus) -> bool:  # also a drop left open by the baseline and confirmed now
        c = case.confirmation
        return c is not None and c.direction == "regression" and c.decision == "confirmed" and case.status == "fail"

    regressions = [c for c in cases if (was[c.case_id] == "pass" and c.status == "fail" and not doubted(c))
                   or confirmed_drop(c)]
    regressed = {c.case_id for c in regressions}

    changes = describe(records.target_info(baseline).get(SYSTEM_KEY), records.target_info(run).get(SYSTEM_KEY)) \
        if baseline else []
    return Comparison(
        run=RunSummary.of(run),
        baseline=RunSummary.of(baseline) if baseline else None,
        cases=cases,
        regressions=regressions,
        fixes=[c for c in cases if was[c.case_id] == "fail" and c.status == "pass" and not doubted(c)],
        new=[c for c in cases if was[c.case_id] is None],
        removed=[RemovedCase(r.case_id, r.title, r.status) for cid, r in sorted(before.items()) if cid not in now_ids],
        still_failing=[c for c in cases if c.status == "fail" and was[c.case_id] in ("fail", "error")
                       and c.case_id not in regressed],
        errors=[c for c in cases if c.status == "error"],
        flaky=[c for c in cases if c.flaky or c.flaky_across_runs],
        unconfirmed=[c for c in cases if doubted(c)],
        quarantined=[c for c in cases if c.quarantined],
        changes=changes,
        against=AgainstColumn.from_info(records.target_info(run).get(AGAINST_KEY)),
        judge_agreement=reviews.agreement(session).summary(),
    )

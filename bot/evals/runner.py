"""The runner: every case x trial against a target, graded, under one concurrency limit (asyncio).

A fixed pool of `concurrency` workers takes (case, trial) jobs from one lazy queue, so at most `concurrency` trials
(each one call to the target, then any judge calls) are in flight; each case's outcome is handed on as soon as its
last trial is graded (`stream`), so memory stays flat however large the corpus. A trial is `error` when the target gave no reply or a grader could not decide, `fail` when a verdict
failed, else `pass`. A case is `error` when any of its trials errored (its pass rate would rest on fewer
samples than asked for), else `pass` when pass rate >= pass_threshold, else `fail`; it is flaky when its
graded trials both passed and failed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from bot.core.errors import CallFailed
from bot.core.kinds import Outcome
from bot.core.usage import Usage, UsageMeter
from bot.corpus.schema import Case, expectation_kind, expectation_value
from bot.evals.graders import Verdict, grade_deterministic, is_deterministic
from bot.evals.judge import Grader
from bot.evals.pool import bounded
from bot.evals.targets import Target

Progress = Callable[[int, int], None]  # (trials done, trials in total)
OnCase = Callable[["CaseOutcome"], None]  # called with each case's outcome as soon as it is graded


@dataclass
class TrialOutcome:
    """One sample of one case."""

    case_id: str
    trial: int
    status: Outcome
    output: str | None = None
    verdicts: list[Verdict] = field(default_factory=list)
    latency_ms: float | None = None  # of the target call
    usage: Usage = Usage()  # target and judge tokens spent on this trial
    error: str | None = None

    def problems(self) -> list[str]:
        """What went wrong: the error, or the message of each failed or undecided verdict."""
        if self.error:
            return [self.error]
        return [f"{v.kind}: {v.message}" for v in self.verdicts if v.error or not v.passed]


@dataclass
class CaseOutcome:
    """One case over all its trials."""

    case: Case
    trials: list[TrialOutcome]
    status: Outcome
    pass_rate: float
    flaky: bool

    @property
    def failure(self) -> str | None:
        """Each failing or erroring trial's problems, one line each, or None when every trial passed."""
        lines = []
        for trial in self.trials:
            for problem in trial.problems():
                prefix = f"trial {trial.trial + 1}: " if len(self.trials) > 1 else ""
                lines.append(prefix + problem)
        return "\n".join(lines) or None


def trial_status(verdicts: Sequence[Verdict]) -> Outcome:
    """A graded trial's status: `error` when a grader could not decide, else `pass` when every verdict passed."""
    if any(v.error for v in verdicts):
        return "error"
    return "pass" if all(v.passed for v in verdicts) else "fail"


def summarize(case: Case, trials: list[TrialOutcome], *, pass_threshold: float) -> CaseOutcome:
    """Aggregate a case's trials into its status, pass rate and flakiness."""
    graded = [t for t in trials if t.status != "error"]
    passed = sum(1 for t in graded if t.status == "pass")
    rate = passed / len(graded) if graded else 0.0
    flaky = 0 < passed < len(graded)
    status: Outcome
    if len(graded) < len(trials):
        status = "error"
    else:
        status = "pass" if rate >= pass_threshold else "fail"
    return CaseOutcome(case, trials, status, rate, flaky)


class Runner:
    """Runs cases against a target and grades the replies."""

    def __init__(self, target: Target, *, judge: Grader | None, trials: int = 1, pass_threshold: float = 1.0,
                 concurrency: int = 8, progress: Progress | None = None):
        if trials < 1 or concurrency < 1:
            raise ValueError("trials and concurrency must be at least 1")
        self.target = target
        self.judge = judge
        self.trials = trials
        self.pass_threshold = pass_threshold
        self.concurrency = concurrency
        self.progress = progress
        self.meter = UsageMeter()  # model tokens of this runner's calls, per model (target and judge)

    async def run_trial(self, case: Case, trial: int) -> TrialOutcome:
        """Ask the target once and grade the reply with every expectation of the case."""
        try:
            reply = await self.target.generate(case)
        except CallFailed as exc:
            return TrialOutcome(case.id, trial, "error", error=f"no reply from the target: {exc}")
        usage = reply.usage
        if reply.model:
            self.meter.add(reply.model, reply.usage)
        verdicts: list[Verdict] = []
        for expectation in case.expect:
            if is_deterministic(expectation):
                verdicts.append(grade_deterministic(expectation, reply.text))
            elif self.judge is None:
                verdicts.append(Verdict(expectation_kind(expectation), False, "no judge is configured", error=True))
            else:
                judged = await self.judge.grade(expectation_value(expectation), case.replay_turns, reply.text)
                verdicts.append(judged.verdict)
                usage = usage + judged.usage
                if judged.usage != Usage():
                    self.meter.add(self.judge.model, judged.usage)
        status = trial_status(verdicts)
        return TrialOutcome(case.id, trial, status, reply.text, verdicts, reply.latency_ms, usage)

    async def stream(self, cases: Iterable[Case], on_case: OnCase, *, total: int | None = None) -> None:
        """Every case x trial, at most `concurrency` trials at a time; `on_case(outcome)` as soon as a case's last
        trial is graded. Cases are taken from `cases` only as a worker needs the next one, so a lazy iterable (files
        read one by one) keeps memory flat in the corpus size; `total` (cases) is for `progress`."""
        waiting: dict[int, list[TrialOutcome | None]] = {}  # cases with trials still in flight, by position

        def jobs() -> Iterator[tuple[int, Case, int]]:
            for index, case in enumerate(cases):
                waiting[index] = [None] * self.trials
                for trial in range(self.trials):
                    yield index, case, trial

        total_trials = (total or 0) * self.trials
        done = 0

        async def work(job: tuple[int, Case, int]) -> None:
            nonlocal done
            index, case, trial = job
            trials = waiting[index]
            trials[trial] = await self.run_trial(case, trial)
            done += 1
            if self.progress is not None:
                self.progress(done, max(total_trials, done))
            if all(t is not None for t in trials):
                del waiting[index]
                on_case(summarize(case, [t for t in trials if t is not None], pass_threshold=self.pass_threshold))

        await bounded(jobs(), work, self.concurrency, count=None if total is None else total * self.trials)

    async def run(self, cases: Sequence[Case]) -> list[CaseOutcome]:
        """Every case x trial (as `stream`), the outcomes in the order of `cases`."""
        position = {id(case): index for index, case in enumerate(cases)}
        results: list[CaseOutcome | None] = [None] * len(cases)

        def keep(outcome: CaseOutcome) -> None:
            results[position[id(outcome.case)]] = outcome

        await self.stream(cases, keep, total=len(cases))
        return [outcome for outcome in results if outcome is not None]

"""Re-running the cases that flipped since the baseline, and recording what each re-run concluded.

`reference_tallies` reads a case's evidence from the run history; `rerun_flips` takes the outcomes of a run, re-runs
each flipped case as `bot.evals.confirm.plan_next` says (one trial at a time per case, cases side by side under the
runner's concurrency), and returns the outcomes with the re-run trials added and a Confirmation per flipped case.
The re-run calls go through the same Runner, so its meter counts them in the run's tokens and cost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence

from sqlmodel import Session

from bot.evals import records
from bot.evals.confirm import Confirmation, ConfirmPolicy, Direction, decide, plan_next
from bot.evals.runner import CaseOutcome, Runner, summarize
from bot.evals.stats import Tally

CONFIRM_KEY = "confirm"  # key in EvalRun.target: {case_id: Confirmation.as_dict()}


def tally_of(outcome: CaseOutcome) -> Tally:
    """The graded trials of an outcome."""
    graded = [t for t in outcome.trials if t.status != "error"]
    return Tally(sum(t.status == "pass" for t in graded), len(graded))


def pool_reference(newest_first: Iterable[tuple[Tally, bool]]) -> Tally:
    """A case's reference from its past results, newest first, each (graded trials, whether that run re-ran it):
    pooled back to and including the newest run that re-ran it (that run's trials are a fresh look at the case,
    what came before is an older regime)."""
    pooled = Tally(0, 0)
    for tally, rerun in newest_first:
        pooled = pooled + tally
        if rerun:
            break
    return pooled


def reference_tallies(session: Session, *, baseline_id: int, case_ids: Sequence[str], runs: int) -> dict[str, Tally]:
    """Each case's reference over the newest `runs` finished runs up to the baseline (`pool_reference`; errored
    results left out)."""
    scheduled = records.scheduled_trials(session, up_to=baseline_id, limit=runs)
    past: dict[str, list[tuple[Tally, bool]]] = {}
    for row in sorted(records.case_history(session, list(scheduled), case_ids), key=lambda r: -r.run_id):
        counts = records.graded_counts(row)
        if counts is not None:
            past.setdefault(row.case_id, []).append((Tally(*counts), row.trials > scheduled[row.run_id]))
    return {case_id: pool_reference(results) for case_id, results in past.items()}


def flip_direction(baseline_status: str | None, status_now: str) -> Direction | None:
    """'regression' for pass -> fail, 'fix' for fail -> pass, else None."""
    if baseline_status == "pass" and status_now == "fail":
        return "regression"
    if baseline_status == "fail" and status_now == "pass":
        return "fix"
    return None


async def _confirm_one(runner: Runner, outcome: CaseOutcome, direction: Direction, reference: Tally,
                       policy: ConfirmPolicy, slots: asyncio.Semaphore,
                       carried: Tally = Tally(0, 0)) -> tuple[CaseOutcome, Confirmation]:
    trials = list(outcome.trials)
    initial = current = carried + tally_of(outcome)
    while plan_next(direction, reference, current, initial=initial, policy=policy):
        async with slots:
            trial = await runner.run_trial(outcome.case, len(trials))
        trials.append(trial)
        if trial.status == "error":  # an ungraded re-run says nothing either way: stop rather than spin
            break
        current = current + Tally(int(trial.status == "pass"), 1)
    redone = summarize(outcome.case, trials, pass_threshold=runner.pass_threshold)
    status = redone.status if redone.status != "error" else outcome.status
    return redone, decide(direction, reference, current, status_now=status, initial=initial, policy=policy)


def pending_flips(recorded: Mapping[str, dict]) -> dict[str, Confirmation]:
    """The baseline's unconfirmed regressions (from its recorded confirmations): still open if the case fails again."""
    pending = {}
    for case_id, data in recorded.items():
        confirmation = Confirmation.from_dict(data)
        if confirmation.direction == "regression" and confirmation.decision == "unconfirmed":
            pending[case_id] = confirmation
    return pending


async def rerun_flips(runner: Runner, outcomes: Sequence[CaseOutcome], *, baseline_status: Mapping[str, str],
                      references: Mapping[str, Tally], policy: ConfirmPolicy,
                      pending: Mapping[str, Confirmation] | None = None) -> tuple[list[CaseOutcome], dict[str, Confirmation]]:
    """Re-run every flipped case; the outcomes (in order, flipped ones with their re-run trials) and the confirmations.

    A case whose regression the baseline left unconfirmed (`pending`) and that fails again is re-run too, against
    the reference of that first flip and with the trials since then carried over, so a real drop that came out
    ambiguous on its first night is still confirmed on a later one.
    """
    slots = asyncio.Semaphore(runner.concurrency)
    jobs: dict[int, asyncio.Task[tuple[CaseOutcome, Confirmation]]] = {}
    async with asyncio.TaskGroup() as group:
        for index, outcome in enumerate(outcomes):
            open_flip = (pending or {}).get(outcome.case.id)
            if open_flip is not None and outcome.status == "fail":
                jobs[index] = group.create_task(_confirm_one(runner, outcome, "regression", open_flip.reference, policy,
                                                             slots, carried=open_flip.current))
                continue
            direction = flip_direction(baseline_status.get(outcome.case.id), outcome.status)
            reference = references.get(outcome.case.id)
            if direction is None or reference is None or reference.total == 0:
                continue
            jobs[index] = group.create_task(_confirm_one(runner, outcome, direction, reference, policy, slots))
    result = list(outcomes)
    confirmations: dict[str, Confirmation] = {}
    for index, task in jobs.items():
        result[index], confirmations[outcomes[index].case.id] = task.result()
    return result, confirmations

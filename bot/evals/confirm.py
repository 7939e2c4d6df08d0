"""Confirming a flip by re-running it: when a case's status changed since the baseline, is the change real?

A case *flips* when it passed in the baseline and fails now (a candidate regression) or the other way round (a
candidate fix). A flip is re-run with more trials before anyone is told, and declared *confirmed* only when the
change in pass rate is significant under a one-sided Fisher exact test (alpha 0.001) between

- the reference: the case's graded trials over the last `[run] history_runs` finished runs up to the baseline
  (one trial a night gives ten trials of history, instead of the single trial of the baseline), and
- the current sample: this run's trials plus the re-run trials.

A reference with so few trials that no test could reach alpha (the second night: one trial of history) is the
one exception: the flip is also confirmed when the reference never went the other way and every one of at least
`confirm_trials` re-run trials went the flip's way ("0/5 after re-run" against a case that always passed).

Re-running is sequential and stops as soon as the answer is known, so a flaky case costs about one extra call:
up to `confirm_trials` trials a round, stopping early once even the rest of the round going the flip's way could not
bring the p-value under `extend_below` (0.05); a round that ends between alpha and `extend_below` earns another
round, up to `max_rounds`. `plan_next` is the whole policy, pure, so the runner and benchmarks/noise.py share it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bot.evals.stats import Tally, fisher_drop, fisher_rise

Direction = Literal["regression", "fix"]
Decision = Literal["confirmed", "unconfirmed"]


@dataclass(frozen=True)
class ConfirmPolicy:
    """How hard a flip is checked before it is reported."""

    trials: int = 5  # per round; 0: no re-run, the run's own trials are tested
    max_rounds: int = 3
    alpha: float = 0.001
    extend_below: float = 0.05


def p_value(direction: Direction, reference: Tally, current: Tally) -> float:
    """The one-sided Fisher p-value of the flip's direction."""
    return fisher_drop(reference, current) if direction == "regression" else fisher_rise(reference, current)


def _unanimous(direction: Direction, reference: Tally, current: Tally, initial: Tally) -> bool:
    """The reference never went against the flip and every re-run trial so far went its way."""
    if direction == "regression":
        return reference.failed == 0 and current.passed == initial.passed
    return reference.passed == 0 and current.failed == initial.failed


def plan_next(direction: Direction, reference: Tally, current: Tally, *, initial: Tally, policy: ConfirmPolicy) -> bool:
    """True when one more re-run trial is worth taking; `initial` is the run's own trials, included in `current`."""
    if policy.trials <= 0:
        return False
    extra = current.total - initial.total
    rounds_done, into_round = divmod(extra, policy.trials)
    if extra and not into_round:  # a round just ended: stop when decided, or out of rounds
        p = p_value(direction, reference, current)
        if p <= policy.alpha or p > policy.extend_below or rounds_done >= policy.max_rounds:
            return False
        if _unanimous(direction, reference, current, initial):  # "0/5 after re-run": decided
            return False
    if extra < policy.trials and _unanimous(direction, reference, current, initial):
        return True  # still on the way to "0/5 after re-run"
    remaining = policy.trials - into_round
    best = Tally(current.passed, current.total + remaining) if direction == "regression" \
        else Tally(current.passed + remaining, current.total + remaining)
    return p_value(direction, reference, best) <= policy.extend_below


@dataclass(frozen=True)
class Confirmation:
    """A flip after its re-run."""

    direction: Direction
    decision: Decision
    p_value: float
    reference: Tally  # the baseline's evidence (pooled history)
    current: Tally  # this run's trials and the re-run ones
    rerun: int  # re-run trials taken
    initial_passed: int = 0  # passes among the run's own trials

    @property
    def rerun_tally(self) -> Tally:
        """The re-run trials alone (the run's own trials left out)."""
        return Tally(self.current.passed - self.initial_passed, self.rerun)

    def as_dict(self) -> dict[str, object]:
        return {"direction": self.direction, "decision": self.decision, "p": self.p_value,
                "reference": [self.reference.passed, self.reference.total],
                "current": [self.current.passed, self.current.total], "rerun": self.rerun,
                "initial_passed": self.initial_passed}

    @classmethod
    def from_dict(cls, data: dict) -> Confirmation:
        ref, cur = data["reference"], data["current"]
        return cls(data["direction"], data["decision"], float(data["p"]), Tally(int(ref[0]), int(ref[1])),
                   Tally(int(cur[0]), int(cur[1])), int(data.get("rerun", 0)), int(data.get("initial_passed", 0)))


def decide(direction: Direction, reference: Tally, current: Tally, *, status_now: str, initial: Tally,
           policy: ConfirmPolicy) -> Confirmation:
    """Confirmed when the change is significant (or unanimous, see the module docstring) and the case's status
    over all its trials still says so."""
    p = p_value(direction, reference, current)
    holds = status_now == ("fail" if direction == "regression" else "pass")
    unanimous = policy.trials > 0 and current.total - initial.total >= policy.trials \
        and _unanimous(direction, reference, current, initial)
    decision: Decision = "confirmed" if holds and (p <= policy.alpha or unanimous) else "unconfirmed"
    return Confirmation(direction, decision, p, reference, current, current.total - initial.total, initial.passed)

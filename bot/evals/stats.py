"""Small exact statistics for deciding regressions: Wilson score intervals and the one-sided Fisher exact test.

Pure functions on counts (passed of total), no dependencies: the numbers are small (tens of trials), so the
hypergeometric sums are computed exactly with integer binomials.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Tally:
    """Graded trials of one case: how many passed out of how many."""

    passed: int
    total: int

    def __add__(self, other: Tally) -> Tally:
        return Tally(self.passed + other.passed, self.total + other.total)

    @property
    def failed(self) -> int:
        return self.total - self.passed

    @property
    def rate(self) -> float | None:
        """The pass rate, or None with no trial."""
        return self.passed / self.total if self.total else None


def wilson(tally: Tally, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of the pass rate (95% by default); (0, 1) with no trial."""
    n = tally.total
    if n == 0:
        return 0.0, 1.0
    p = tally.passed / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def fisher_drop(reference: Tally, current: Tally) -> float:
    """One-sided Fisher exact p-value that `current` passes less often than `reference`.

    With the margins fixed, the number of passes among the current trials is hypergeometric; the p-value is
    the probability of as few passes as observed, or fewer, if both samples came from one pass rate.
    """
    passes, total, drawn = reference.passed + current.passed, reference.total + current.total, current.total
    if drawn == 0 or reference.total == 0:
        return 1.0
    ways = math.comb(total, drawn)
    low = max(0, drawn - (total - passes))
    tail = sum(math.comb(passes, x) * math.comb(total - passes, drawn - x) for x in range(low, current.passed + 1))
    return min(1.0, tail / ways)


def fisher_rise(reference: Tally, current: Tally) -> float:
    """One-sided Fisher exact p-value that `current` passes more often than `reference` (a fix)."""
    return fisher_drop(Tally(reference.failed, reference.total), Tally(current.failed, current.total))

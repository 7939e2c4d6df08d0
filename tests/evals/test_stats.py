"""Wilson intervals and the one-sided Fisher exact test (bot/evals/stats.py)."""

from __future__ import annotations

import pytest

from bot.evals.stats import Tally, fisher_drop, fisher_rise, wilson


@pytest.mark.parametrize(
    ("tally", "low", "high"),
    [
        (Tally(0, 5), 0.0, 0.4345),
        (Tally(5, 5), 0.5655, 1.0),
        (Tally(9, 10), 0.5958, 0.9821),
        (Tally(0, 0), 0.0, 1.0),
    ],
)
def test_wilson_interval(tally, low, high):
    assert wilson(tally) == pytest.approx((low, high), abs=1e-4)


@pytest.mark.parametrize(
    ("reference", "current", "p"),
    [
        (Tally(10, 10), Tally(0, 5), 1 / 3003),  # C(5,5)/C(15,5): every fail drawn into the current run
        (Tally(10, 10), Tally(1, 5), 11 / 3003),  # 11 passes, 4 fails: at least one pass is drawn
        (Tally(1, 1), Tally(0, 6), 1 / 7),  # one trial of history cannot make anything significant
        (Tally(5, 10), Tally(5, 5), 1.0),  # a rise is no drop
        (Tally(0, 0), Tally(0, 5), 1.0),
    ],
)
def test_fisher_drop(reference, current, p):
    assert fisher_drop(reference, current) == pytest.approx(p)


def test_fisher_rise_mirrors_the_drop():
    assert fisher_rise(Tally(0, 10), Tally(5, 5)) == pytest.approx(fisher_drop(Tally(10, 10), Tally(0, 5)))

"""The plain-text report's helpers (bot/evals/render/report.py)."""

from __future__ import annotations

import pytest

from bot.evals.render.report import collapse_trials


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

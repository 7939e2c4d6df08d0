"""Evaluation: targets (the system under test), graders, the judge, the runner, run records and comparison.

Entry points: `bot.evals.evaluate.run_eval` (run, record, compare) and `bot.evals.compare.compare_runs`.
Deciding regressions: `confirm` (the re-run policy and the decision), `rerun` (re-running flips), `stats`
(Fisher, Wilson), `changes` (what changed since the baseline), `quarantine`, `against` (`--against REF`).
"""

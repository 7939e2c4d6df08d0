"""Evaluation: targets (the system under test), graders, the judge, the runner, run records and comparison.

Entry points: `bot.evals.evaluate.run_eval` (run, record, compare) and `bot.evals.compare.compare_runs`.
"""

"""Evaluation: targets (the system under test), graders, the runner, run records and comparison."""

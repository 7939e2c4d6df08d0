"""Batch mode (`[run] mode = "batch"`): model calls through the Message Batches API at half price.

`run` (run_batch: drives a batch run in two phases), `api` (Batches: custom ids, splitting, polling, results)
and `resume` (resume_batch_runs: finishes interrupted batch runs after a restart).
"""

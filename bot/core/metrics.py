"""Prometheus metrics: captures, Slack acks, eval runs, model calls and tokens (served on /metrics).

Plain counters and histograms from prometheus_client; the domain increments them, the HTTP edge exposes them.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)

CAPTURES = Counter("evalbot_captures", "Flags handled, by outcome (created, reflagged, repeated, refused).",
                   ["outcome"], registry=REGISTRY)
SLACK_REQUESTS = Counter("evalbot_slack_requests", "Slack requests dispatched to the app, by kind.", ["kind"],
                         registry=REGISTRY)
ACK_SECONDS = Histogram("evalbot_ack_seconds", "Time from receiving a Slack request to its ack.",
                        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 3), registry=REGISTRY)
RUNS = Counter("evalbot_eval_runs", "Eval runs ended, by status (finished, failed).", ["status"], registry=REGISTRY)
MODEL_CALL_SECONDS = Histogram("evalbot_model_call_seconds", "Latency of model calls, by purpose.", ["purpose"],
                               buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120), registry=REGISTRY)
MODEL_TOKENS = Counter("evalbot_model_tokens", "Tokens used by model calls, by purpose and kind.", ["purpose", "kind"],
                       registry=REGISTRY)


def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus text format, and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST

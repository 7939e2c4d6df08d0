"""Core: what every stage shares and nothing else owns.

`settings` (Settings, get_settings, load_settings, check_settings), `errors` (EvalbotError and its subclasses,
one module), `logs` (setup_logging), `metrics` (the Prometheus counters), `redaction` (redact, find_secrets,
RedactingFilter; its rules in `redaction_rules` and `redaction_context`; the guards at every exit in
`redaction_exits`; Slack's own exits are guarded by `bot.slack.redaction`), `clock` (utcnow, frozen_at, shift) and `llm` (LLM, the Anthropic client with retries, usage and cost).
"""

"""The redactor at every exit: what leaves the bot passes `bot.core.redaction.redact` on its way out.

Capture redacts a conversation as it arrives; these guards catch whatever reaches an exit by another road (a
case file made elsewhere, a model output, an error message quoting a config line):

* `redact_text` for one string (commit messages, JUnit text, run errors, model outputs stored in the database);
* `redact_payload` walks JSON-like data (Slack payloads, verdicts) and redacts every string in it, leaving the
  fields that are Slack's own identifiers alone;
* `redact_case` is a case with every text field redacted (case files as written, exports).

Slack's exits are guarded in `bot.slack.redaction` (the Slack edge: it imports the Slack SDKs, which the CLI's
file and export commands need not load). The exits redact secrets only (`contacts=False`): whether contact
details are kept is decided once, at capture, by EVALBOT_REDACT_CONTACTS.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

from bot.core.redaction import redact

M = TypeVar("M", bound=BaseModel)

# Slack's identifiers and enums: never secrets, and Slack needs them exactly as they are.
IDENTIFIERS = frozenset(
    {
        "type", "action_id", "block_id", "callback_id", "channel", "channel_id", "ts", "thread_ts", "user", "user_id",
        "trigger_id", "view_id", "hash", "external_id", "team_id", "response_type", "response_action", "style",
        "response_url", "id", "file_id",
    }
)


def redact_text(text: str | None) -> str | None:
    """`text` with its secrets replaced (None stays None)."""
    return redact(text, contacts=False) if text else text


def redact_payload(value: Any) -> Any:
    """A copy of JSON-like `value` with every string redacted, except Slack's identifier fields."""
    if isinstance(value, str):
        return redact(value, contacts=False) if value else value
    if isinstance(value, dict):
        return {key: item if key in IDENTIFIERS else redact_payload(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_payload(item) for item in value]
    return value


def redact_case(case: M) -> M:
    """`case` (any pydantic model) with every text field redacted; the same object when nothing changed."""
    dumped = case.model_dump(mode="json")
    cleaned = redact_payload(dumped)
    return case if cleaned == dumped else type(case).model_validate(cleaned)

"""The closed sets of values evalbot stores and passes between stages, as `Literal` types checked by mypy.

Defined once here (the lowest layer) so the tables (`bot.store.tables`), the runner, the comparisons and the digest
name the same set; each is stored as a short string.
"""

from __future__ import annotations

from typing import Literal

CaseStatus = Literal["candidate", "promoted"]  # a case file's status (its folder)
FlagTrigger = Literal["reaction", "shortcut", "mention"]  # how a flag was made
InboxStatus = Literal["pending", "leased", "done", "failed"]  # a flag in the inbox
RunStatus = Literal["running", "finished", "failed"]
RunTrigger = Literal["cli", "slack", "nightly"]  # who started a run: `evalbot eval run`, `/eval run`, the schedule
RunMode = Literal["sync", "batch"]  # trials called one by one, or through the Message Batches API
Role = Literal["user", "assistant"]  # who speaks a turn of a conversation
Outcome = Literal["pass", "fail", "error"]  # of a trial, or of a case over its trials

"""Block Kit builders: pure functions from domain data to Slack message and view dicts.

Escaping, clipping and Slack's limits come from `bot.slack.blocks.kit` (re-exported here: `escape`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.capture.candidate import CaptureResult
from bot.core.redaction import PLACEHOLDER_PREFIX
from bot.corpus.schema import Case
from bot.corpus.similarity import NearDuplicate
from bot.slack.blocks import kit
from bot.slack.blocks.kit import escape
from bot.store.tables import PendingFlag

__all__ = ["escape"]

PROMOTE_ACTION = "evalbot_promote"
REJECT_ACTION = "evalbot_reject"
EDIT_ACTION = "evalbot_edit"
Blocks = list[dict[str, Any]]


def _mrkdwn(text: str) -> dict[str, Any]:
    return kit.mrkdwn(text)


def flaggers_text(case: Case) -> str:
    people = ", ".join(f"<@{u}>" for u in case.source.flagged_by[:10])
    count = len(case.source.flagged_by)
    return f"flagged by {people} ({count} flag{'s' if count != 1 else ''})"


def redactions_in(case: Case) -> int:
    """How many secrets capture replaced in this case (its placeholders, so every later card shows it too)."""
    return sum(turn.content.count(PLACEHOLDER_PREFIX) for turn in case.conversation) + (case.source.note or "").count(PLACEHOLDER_PREFIX)


def capture_summary(case: Case) -> str:
    """One line: what was captured."""
    turns = len(case.conversation)
    origin = {"slack": "this thread", "transcript": "the pasted transcript", "file": "the attached file"}[case.source.kind]
    line = f"{turns} turn{'s' if turns != 1 else ''} from {origin} · {flaggers_text(case)}"
    redactions = redactions_in(case)
    if redactions:
        line += f" · {redactions} secret{'s' if redactions != 1 else ''} redacted"
    return line


def capture_reply(result: CaptureResult) -> Blocks:
    """The thread reply to a capture: case id, what was captured, [Promote…] [Reject…]."""
    return case_card(result.case, warnings=result.warnings,
                     near_duplicates=result.near_duplicates)


_DUP_MARK = "_dup_"


def near_duplicates_text(dupes: Sequence[NearDuplicate]) -> str:
    """'Looks like: `abcd1234` <permalink|title> (92% similar), …' naming each near-duplicate with a link."""
    named = []
    for dupe in dupes:
        title = escape(kit.clip(dupe.title, 80, one_line=True)).replace("|", "¦")
        label = f"<{dupe.permalink}|{title}>" if dupe.permalink else f"_{title}_"
        named.append(f"`{dupe.case_id}` {label} ({round(dupe.score * 100)}% similar)")
    return "Looks like: " + ", ".join(named)


def triage_block_id(case_id: str, duplicate_of: str | None = None) -> str:
    """The block_id of a card's buttons; it carries the closest near-duplicate so Reject… can prefill the reason."""
    return f"triage_{case_id}" + (f"{_DUP_MARK}{duplicate_of}" if duplicate_of else "")


def duplicate_in_block_id(block_id: str | None) -> str | None:
    """The near-duplicate id a card's button block carries, if any (see `triage_block_id`)."""
    _, mark, dupe = (block_id or "").partition(_DUP_MARK)
    return dupe if mark and dupe.isalnum() else None


def case_card(case: Case, *, warnings: list[str] | None = None, outcome: str | None = None,
              near_duplicates: Sequence[NearDuplicate] = ()) -> Blocks:
    """The capture card for a case; with `outcome` (promoted/rejected by whom) the buttons are replaced by it."""
    head = f":triangular_flag_on_post: Captured case `{case.id}`: *{escape(case.title)}*"
    blocks: Blocks = [
        {"type": "section", "block_id": f"case_{case.id}", "text": _mrkdwn(head)},
        {"type": "context", "elements": [_mrkdwn(capture_summary(case))]},
    ]
    for warning in (warnings or [])[:kit.CONTEXT_ELEMENTS]:
        blocks.append(kit.context(f":warning: {escape(warning)}"))
    if near_duplicates and not outcome:
        blocks.append({"type": "section", "block_id": f"dupes_{case.id}",
                       "text": _mrkdwn(f":twisted_rightwards_arrows: {near_duplicates_text(near_duplicates)}")})
    if outcome:
        blocks.append({"type": "section", "text": _mrkdwn(outcome)})
    else:
        blocks.append(
            {
                "type": "actions",
                "block_id": triage_block_id(case.id, near_duplicates[0].case_id if near_duplicates else None),
                "elements": [
                    kit.button("Promote…", PROMOTE_ACTION, case.id, "primary"),
                    kit.button("Reject…", REJECT_ACTION, case.id, "danger"),
                ],
            }
        )
    return kit.message_blocks(blocks)


def capture_text(case: Case) -> str:
    """Notification fallback text for the capture reply."""
    return kit.message_text(f"Captured case {case.id}: {case.title}")


FLAG_NOTE_VIEW = "evalbot_flag_note"


def flag_note_modal(*, channel: str, message_ts: str) -> dict[str, Any]:
    """The modal the message shortcut opens: an optional note, then capture."""
    return {
        "type": "modal",
        "callback_id": FLAG_NOTE_VIEW,
        "private_metadata": f"{channel}|{message_ts}",
        "title": {"type": "plain_text", "text": "Flag for evalbot"},
        "submit": {"type": "plain_text", "text": "Flag"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": "note",
                "optional": True,
                "label": {"type": "plain_text", "text": "What went wrong?"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": "note",
                    "multiline": True,
                    "max_length": 2000,
                    "placeholder": {"type": "plain_text", "text": "e.g. the refund window is 30 days, not 90"},
                },
            }
        ],
    }


def failed_flags(rows: Sequence[PendingFlag]) -> dict[str, Any]:
    """`/eval status`: the flags that failed every attempt (newest first), each with a link and its error."""
    lines = [f":x: *{len(rows)} flag(s) could not be captured* (flag the message again once fixed):"]
    for row in rows:
        error = (row.error or "unknown error")[:200]
        lines.append(f"• {row.trigger} by <@{row.user_id}> on <#{row.channel}> `{row.ts}`: {escape(error)}")
    return {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)[:2900]}}

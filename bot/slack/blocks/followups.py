"""Block Kit for follow-ups in a flag thread: a pure function from a `FollowUp` and who to mention to a message.

One message per follow-up: a section opening with the mentions (each flagger once), then what happened, and a
context line naming the case. The message carries `metadata` (event type `evalbot_followup`, the outbox key) so
the sender can tell, after a crash, whether Slack already has it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.digest.followups import FollowUp
from bot.slack.blocks.digest import MAX_SECTION, Message, clip, escape, slack_len

METADATA_EVENT = "evalbot_followup"
MAX_EXPECTATIONS = 10


def mentions(users: Sequence[str]) -> str:
    """'<@U1> <@U2>' (each once, in order)."""
    return " ".join(f"<@{u}>" for u in dict.fromkeys(users))


def _case(followup: FollowUp) -> str:
    return f"*{escape(clip(followup.title, 150))}* (`{escape(followup.case_id)}`)"


def _changes(followup: FollowUp) -> str:
    if not followup.changes:
        return ""
    return " — changed since: " + ", ".join(f"`{escape(clip(c, 120))}`" for c in followup.changes)


def body(followup: FollowUp) -> str:
    """What happened, in mrkdwn (without the mentions)."""
    run = f"run #{followup.run_id}"
    if followup.kind == "promoted":
        lines = [f":white_check_mark: Your flag is now a test: {_case(followup)}, promoted by <@{followup.actor}>"
                 if followup.actor else f":white_check_mark: Your flag is now a test: {_case(followup)}"]
        count = len(followup.expectations)
        lines[0] += f", checking {count} expectation{'s' if count != 1 else ''}:"
        lines += [f"• {escape(line)}" for line in followup.expectations[:MAX_EXPECTATIONS]]
        if count > MAX_EXPECTATIONS:
            lines.append(f"…and {count - MAX_EXPECTATIONS} more")
        lines.append("Every eval run checks it from now on; I'll tell you here when it is fixed or breaks again.")
        return "\n".join(lines)
    if followup.kind == "rejected":
        return (f":no_entry_sign: Your flag {_case(followup)} was not added to the evals: <@{followup.actor}> "
                f"rejected it — _{escape(clip(followup.reason or 'no reason given', 1000))}_")
    if followup.kind == "first_result":
        if followup.reproduces:
            detail = f": {escape(followup.detail)}" if followup.detail else ""
            return (f":dart: First eval of {_case(followup)} in {run}: it *reproduces the failure* you reported — "
                    f"it fails today{detail}. I'll tell you here when it passes.")
        return (f":thinking_face: First eval of {_case(followup)} in {run}: it *passes today* — the failure does not "
                "reproduce (already fixed, or the expectations miss it: a maintainer can `edit` them).")
    if followup.kind == "fixed":
        return (f":tada: {_case(followup)} is *fixed*: it passes since {run} (it failed in run "
                f"#{followup.previous_run}){_changes(followup)}.")
    detail = f": {escape(followup.detail)}" if followup.detail else ""
    return (f":rotating_light: {_case(followup)} *regressed*: it passed in run #{followup.previous_run} and fails "
            f"again in {run}{detail}{_changes(followup)}")


def notification(followup: FollowUp) -> str:
    """The plain-text fallback (notifications, screen readers)."""
    title = clip(followup.title, 80)
    run = f"run #{followup.run_id}"
    return {
        "promoted": f"Your flag is now a test: {title}",
        "rejected": f"Your flag was not added to the evals: {title}",
        "first_result": f"First eval of {title} ({run}): " + ("reproduces the failure" if followup.reproduces else "passes today"),
        "fixed": f"Fixed: {title} passes since {run}",
        "regressed": f"Regressed: {title} fails again in {run}",
    }[followup.kind]


def followup_message(followup: FollowUp, mention: Sequence[str]) -> Message:
    """The thread reply for `followup`, @-mentioning each user in `mention` once."""
    text = f"{mentions(mention)} {body(followup)}".strip()
    if slack_len(text) > MAX_SECTION:
        text = text[: MAX_SECTION - 1] + "…"
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text":
            f"evalbot follow-up · case `{escape(followup.case_id)}` · `/eval mute` to stop these mentions"}]},
    ]
    return Message(f"{mentions(mention)} {notification(followup)}".strip(), blocks)


def metadata(key: str) -> dict[str, Any]:
    """The message metadata marking a follow-up as sent (looked for after a crash)."""
    return {"event_type": METADATA_EVENT, "event_payload": {"key": key}}

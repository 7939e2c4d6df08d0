"""Block Kit for triage messages: help, the case list, a case's detail, outcomes and results.

Pure functions from domain data to dicts (tested as dicts). Slack's limits (at most 50 blocks in a message, 3000
characters in a section's text, 75 in a button's label), escaping and clipping come from `bot.slack.blocks.kit`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from pydantic import BaseModel

from bot.core.clock import age
from bot.corpus.schema import Case, expectation_kind, expectation_value
from bot.corpus.similarity import NearDuplicate
from bot.slack.blocks import kit
from bot.slack.blocks.capture import EDIT_ACTION, PROMOTE_ACTION, REJECT_ACTION, Blocks, escape, near_duplicates_text
from bot.store.tables import CaseIndex, Rejection
from bot.triage.decisions import PromoteResult, RejectResult

LIST_PAGE_ACTION = "evalbot_list_page"
PAGE_SIZE = 10
MAX_MESSAGE_BLOCKS = kit.MESSAGE_BLOCKS
SECTION_CHARS = kit.SECTION_TEXT
PREVIEW_TURNS = 6
TURN_CHARS = 600
LISTS = {"candidates": "candidate", "cases": "promoted", "all": None}


@dataclass(frozen=True)
class HelpEntry:
    """One line of help: usage after the command name, and what it does."""

    usage: str
    summary: str


_section = kit.section
_context = kit.context
_button = kit.button
clip = kit.clip


def slack_date(moment: datetime) -> str:
    """A date Slack shows in the reader's time zone, with a UTC fallback."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} at {{time}}|{moment:%Y-%m-%d %H:%M} UTC>"


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


# ---------------------------------------------------------------- help


def help_blocks(command: str, entries: Sequence[HelpEntry], *, channel: str | None, maintainers: str | None,
                note: str | None = None) -> Blocks:
    """The help message: one line per subcommand, where commands work, and who may triage."""
    lines = "\n".join(f"`{command} {e.usage}`  {escape(e.summary)}" for e in entries)
    where = f"Works in <#{channel}> and in a DM with me." if channel else "Works in a DM with me."
    who = f"Promote, reject and edit: {maintainers}." if maintainers else "Anyone may promote, reject and edit."
    blocks: Blocks = []
    if note:
        blocks.append(_section(note))
    blocks += [_section(f"*evalbot triage*\n{lines}"), _context(f"{where} Case ids: any unique prefix of 4+ characters. {who}")]
    return kit.message_blocks(blocks)


def help_text(command: str, entries: Sequence[HelpEntry]) -> str:
    """Fallback text of the help message."""
    return "evalbot: " + " · ".join(f"{command} {e.usage}" for e in entries)


# ---------------------------------------------------------------- list


def listing_blocks(rows: Sequence[CaseIndex], *, total: int, which: str, page: int, page_size: int = PAGE_SIZE,
                   now: datetime | None = None) -> Blocks:
    """One page of the case list, newest first: id, title, flags, age, tags; previous/next buttons."""
    pages = max(1, -(-total // page_size))
    label = {"candidates": "Candidates", "cases": "Cases", "all": "Candidates and cases"}[which]
    if not rows:
        empty = f"*{label}*: none." if page == 1 else f"*{label}*: page {page} is past the end ({plural(pages, 'page')})."
        return [_section(empty)]
    blocks: Blocks = [_section(f"*{label}* ({total}), newest first · page {page} of {pages}")]
    for row in rows[: MAX_MESSAGE_BLOCKS - 3]:
        status = "" if which != "all" else (" · candidate" if row.status == "candidate" else " · case")
        tags = f" · {' '.join('`' + t + '`' for t in row.tags)}" if row.tags else ""
        line = (f"`{row.id}` *{escape(clip(row.title, 200))}*\n{plural(row.flag_count, 'flag')} · "
                f"{age(row.flagged_at, now=now)}{status}{tags}")
        blocks.append(_section(line, block_id=f"row_{row.id}"))
    buttons = []
    if page > 1:
        buttons.append(_button("‹ Previous", LIST_PAGE_ACTION, f"{which}|{page - 1}"))
    if page < pages:
        buttons.append(_button("Next ›", LIST_PAGE_ACTION, f"{which}|{page + 1}"))
    if buttons:
        blocks.append({"type": "actions", "block_id": f"list_{which}_{page}", "elements": buttons})
    return blocks


def parse_page_value(value: str) -> tuple[str, int]:
    """(which, page) from a paging button's value; malformed values give the first page of candidates."""
    which, _, page = (value or "").partition("|")
    if which not in LISTS or not page.isdigit():
        return "candidates", 1
    return which, max(1, int(page))


# ---------------------------------------------------------------- show


def expectation_line(expectation: BaseModel) -> str:
    """One expectation as a mrkdwn line, e.g. '• must not contain `90 days`'."""
    kind, value = expectation_kind(expectation), expectation_value(expectation)
    names = {"rubric": "rubric", "contains": "must contain", "not_contains": "must not contain", "regex": "matches",
             "not_regex": "does not match", "equals": "equals", "json_schema": "JSON matching a schema",
             "max_chars": "at most"}
    if kind == "rubric":
        shown = escape(clip(str(value), 500))
    elif kind == "json_schema":
        shown = f"({plural(len(value), 'key')})"
    elif kind == "max_chars":
        shown = f"{value} characters"
    else:
        shown = "`" + escape(clip(str(value), 300)).replace("`", "'") + "`"
    return f"• {names[kind]}: {shown}"


def _quote(text: str, prefix: str) -> str:
    return kit.quote(text, TURN_CHARS, prefix=prefix)


def conversation_blocks(case: Case, *, turns: int = PREVIEW_TURNS) -> Blocks:
    """The last `turns` turns (at most what a message holds), the flagged reply marked."""
    turns = max(1, min(turns, MAX_MESSAGE_BLOCKS - 1))
    flagged = case.flagged_index
    start = max(0, len(case.conversation) - turns)
    head = f"*Conversation* ({plural(len(case.conversation), 'turn')}" + (f", last {turns} shown)" if start else ")")
    blocks: Blocks = [_section(head)]
    for index in range(start, len(case.conversation)):
        turn = case.conversation[index]
        who = ":triangular_flag_on_post: *Assistant (flagged)*" if index == flagged else f"*{turn.role.capitalize()}*"
        blocks.append(_section(_quote(turn.content, f"{who}\n")))
    return blocks


def case_detail_blocks(case: Case, *, now: datetime | None = None) -> Blocks:
    """`show ID`: title, status, source link, conversation preview, expectations, and the triage buttons."""
    status = "promoted case" if case.status == "promoted" else "candidate"
    facts = [status, f"flagged by {', '.join(f'<@{u}>' for u in case.source.flagged_by[:10]) or 'nobody'}",
             age(case.source.flagged_at, now=now) + " ago"]
    if case.tags:
        facts.append(" ".join(f"`{t}`" for t in case.tags))
    if case.source.permalink:
        facts.append(f"<{case.source.permalink}|source thread>")
    blocks: Blocks = [_section(f"`{case.id}` *{escape(case.title)}*"), _context(" · ".join(facts))]
    if case.source.note:
        blocks.append(_context(f"Note: {escape(clip(case.source.note, 500))}"))
    blocks += conversation_blocks(case)
    if case.status == "promoted":
        lines = [expectation_line(e) for e in case.expect]
        blocks.append(_section("*Expectations*\n" + "\n".join(lines)))
        promoted = f"Promoted by <@{case.promoted_by}> {slack_date(case.promoted_at)}" if case.promoted_at else ""
        if promoted:
            blocks.append(_context(promoted))
        blocks.append({"type": "actions", "block_id": f"show_{case.id}",
                       "elements": [_button("Edit…", EDIT_ACTION, case.id)]})
    else:
        lines = [expectation_line(e) for e in case.suggested_expect]
        text = ("*Suggested expectations* (drafted at capture, not graded)\n" + "\n".join(lines)) if lines else \
            "*No expectations yet*: promote it with a rubric or must/must-not contain lines."
        blocks.append(_section(text))
        blocks.append({"type": "actions", "block_id": f"show_{case.id}", "elements": [
            _button("Promote…", PROMOTE_ACTION, case.id, "primary"), _button("Reject…", REJECT_ACTION, case.id, "danger")]})
    return kit.message_blocks(blocks)


# ---------------------------------------------------------------- outcomes and results


def promoted_outcome(case: Case) -> str | None:
    """The capture card's closing line for a promoted case (None for a candidate: it keeps its buttons)."""
    if case.status != "promoted" or not case.promoted_by:
        return None
    when = f" {slack_date(case.promoted_at)}" if case.promoted_at else ""
    return f":white_check_mark: Promoted by <@{case.promoted_by}>{when} with {plural(len(case.expect), 'expectation')}."


def rejected_outcome(rejection: Rejection) -> str:
    """The capture card's closing line for a rejected candidate."""
    return clip(f":no_entry_sign: Rejected by <@{rejection.rejected_by}> {slack_date(rejection.rejected_at)}: "
                f"{escape(rejection.reason)}", SECTION_CHARS)


def _dupes_line(dupes: Sequence[NearDuplicate]) -> list[str]:
    return [f":twisted_rightwards_arrows: {near_duplicates_text(dupes)}"] if dupes else []


def promoted_message(result: PromoteResult) -> str:
    """What the maintainer is told after a promotion: the case, then warnings and near-duplicates."""
    case = result.case
    lines = [f":white_check_mark: Promoted `{case.id}` *{escape(case.title)}* with "
             f"{plural(len(case.expect), 'expectation')}."]
    lines += [f":warning: {escape(w)}" for w in result.warnings]
    return clip("\n".join(lines + _dupes_line(result.near_duplicates)), SECTION_CHARS)


def rejected_message(result: RejectResult) -> str:
    """What the maintainer is told after a rejection."""
    return clip(f":no_entry_sign: Rejected `{result.case.id}` *{escape(result.case.title)}*: "
                f"{escape(result.rejection.reason)}", SECTION_CHARS)


def edited_message(case: Case, *, changed: bool, warnings: Sequence[str] = (), dupes: Sequence[NearDuplicate] = ()) -> str:
    """What the maintainer is told after an edit."""
    if not changed:
        return f"Nothing changed in `{case.id}`: the form matched the file."
    lines = [f":pencil2: Edited `{case.id}` *{escape(case.title)}*."] + [f":warning: {escape(w)}" for w in warnings]
    return clip("\n".join(lines + _dupes_line(dupes)), SECTION_CHARS)


def where_text(command: str, channel: str | None) -> str:
    """Said when the command is used somewhere it does not work."""
    there = f"in <#{channel}> and " if channel else ""
    return f"`{command}` works {there}in a DM with me. Try it there."

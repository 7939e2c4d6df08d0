"""Block Kit for App Home: a pure function from a `Home` (bot/digest/home.py) to the view `views.publish` takes.

Sections: the last run (pass rate, change, a link to its digest and trend chart), "Your flags" (state and last
result, paged), and for maintainers "Triage queue" (oldest first, [Promote…] [Reject…] — the capture card's
buttons, so the same modals open — with near-duplicates grouped under each candidate, paged). At most 100 blocks.
"""

from __future__ import annotations

from typing import Any

from bot.digest.home import Home, LastRun, MyFlag, Page, QueueEntry
from bot.slack.blocks.capture import PROMOTE_ACTION, REJECT_ACTION, near_duplicates_text, triage_block_id
from bot.slack.blocks.digest import clip, date_token, escape

MAX_BLOCKS = 100
PAGE_ACTION = "evalbot_home_page"
Block = dict[str, Any]

STATE = {"candidate": ":hourglass: awaiting triage", "promoted": ":white_check_mark: a test now",
         "rejected": ":no_entry_sign: rejected", "removed": ":wastebasket: removed"}
RESULT = {"pass": ":large_green_circle: passes", "fail": ":red_circle: fails", "error": ":warning: could not be graded"}


def _section(text: str, **extra: Any) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, 3000) if "\n" not in text else text[:3000]},
            **extra}


def _context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text[:3000]}]}


def _header(text: str) -> Block:
    return {"type": "header", "text": {"type": "plain_text", "text": text[:150], "emoji": True}}


def _title(title: str, permalink: str | None) -> str:
    text = escape(clip(title, 100))
    return f"<{permalink}|{text.replace('|', '¦')}>" if permalink and permalink.startswith("https://") else f"*{text}*"


def page_value(*, flags: int, queue: int) -> str:
    """The value of a paging button: which page of each list to show."""
    return f"flags:{flags}:queue:{queue}"


def parse_page_value(value: str | None) -> tuple[int, int]:
    """(flags page, queue page) of a paging button's value (1, 1 when unreadable)."""
    parts = (value or "").split(":")
    try:
        return max(1, int(parts[1])), max(1, int(parts[3]))
    except (IndexError, ValueError):
        return 1, 1


def last_run_block(run: LastRun | None, digest_link: str | None) -> Block:
    """The last run's pass rate and change, with a link to its digest (where the trend chart is)."""
    if run is None:
        return _section(":zzz: *Last run:* none yet — the nightly run will post a digest in the channel.")
    rate = "n/a" if run.pass_rate is None else f"{run.pass_rate:.0%}"
    line = f":bar_chart: *Last run #{run.run_id}:* {rate} passed ({run.passed} of {run.cases_total} cases), {date_token(run.when)}"
    if run.pass_rate is not None and run.previous_pass_rate is not None:
        points = round((run.pass_rate - run.previous_pass_rate) * 100)
        line += f" · {'+' if points > 0 else '−' if points < 0 else '±'}{abs(points)} pts"
    if digest_link and digest_link.startswith("https://"):
        line += f" · <{digest_link}|digest and trend chart>"
    return _section(line)


def flag_line(flag: MyFlag) -> str:
    """'`id` <link|title> — a test now · fails in run #3'."""
    line = f"`{escape(flag.case_id)}` {_title(flag.title, flag.permalink)} — {STATE.get(flag.state, escape(flag.state))}"
    if flag.reason:
        line += f": _{escape(clip(flag.reason, 200))}_"
    if flag.last_status is not None:
        line += f" · {RESULT.get(flag.last_status, escape(flag.last_status))} in run #{flag.last_run_id}"
    elif flag.state == "promoted":
        line += " · not run yet"
    return line


def queue_blocks(entry: QueueEntry) -> list[Block]:
    """One candidate: what it is, who flagged it, its near-duplicates, and the triage buttons."""
    who = ", ".join(f"<@{escape(u)}>" for u in entry.flaggers[:5]) or "someone"
    text = f"`{escape(entry.case_id)}` {_title(entry.title, entry.permalink)}\nflagged by {who}, {date_token(entry.flagged_at)}"
    if entry.note:
        text += f" — “{escape(clip(entry.note, 200))}”"
    blocks = [_section(text)]
    if entry.duplicates:
        blocks.append(_context(f":twisted_rightwards_arrows: {near_duplicates_text(list(entry.duplicates))}"))
    blocks.append({
        "type": "actions", "block_id": triage_block_id(entry.case_id, entry.duplicates[0].case_id if entry.duplicates else None),
        "elements": [
            {"type": "button", "action_id": PROMOTE_ACTION, "style": "primary", "value": entry.case_id,
             "text": {"type": "plain_text", "text": "Promote…"}},
            {"type": "button", "action_id": REJECT_ACTION, "style": "danger", "value": entry.case_id,
             "text": {"type": "plain_text", "text": "Reject…"}},
        ],
    })
    return blocks


def _pager(which: str, page: Page, home: Home) -> Block | None:
    if page.pages <= 1:
        return None
    elements = []
    for label, number in (("← Newer" if which == "flags" else "← Previous", page.number - 1), ("Next →", page.number + 1)):
        if 1 <= number <= page.pages:
            flags = number if which == "flags" else home.flags_page.number
            queue = number if which == "queue" else home.queue_page.number
            elements.append({"type": "button", "action_id": f"{PAGE_ACTION}_{which}_{label[0] == 'N'}",
                             "value": page_value(flags=flags, queue=queue), "text": {"type": "plain_text", "text": label}})
    return {"type": "actions", "block_id": f"home_pages_{which}", "elements": elements}


def home_view(home: Home, *, digest_link: str | None = None, command: str = "/eval") -> dict[str, Any]:
    """The App Home view for `home` (type "home", at most 100 blocks)."""
    blocks: list[Block] = [_header("evalbot"), last_run_block(home.last_run, digest_link), {"type": "divider"}]
    count = home.flags_page.total
    blocks.append(_section(f"*Your flags* ({count})" + (f" · page {home.flags_page.number} of {home.flags_page.pages}"
                                                         if home.flags_page.pages > 1 else "")))
    if home.flags:
        blocks.extend(_section(flag_line(flag)) for flag in home.flags)
    else:
        blocks.append(_context("Nothing yet: react with :triangular_flag_on_post: to an AI reply that went wrong, "
                               "and it shows up here as it becomes a test."))
    pager = _pager("flags", home.flags_page, home)
    if pager:
        blocks.append(pager)
    blocks.append(_context(f"Follow-ups in your flag threads mention you; `{command} mute` stops that."))
    if home.maintainer:
        blocks.append({"type": "divider"})
        queue = home.queue_page
        blocks.append(_section(f"*Triage queue* ({queue.total} candidate{'s' if queue.total != 1 else ''}, oldest first)"
                               + (f" · page {queue.number} of {queue.pages}" if queue.pages > 1 else "")))
        if not home.queue:
            blocks.append(_context(":sparkles: Nothing to triage."))
        for entry in home.queue:
            blocks.extend(queue_blocks(entry))
        pager = _pager("queue", queue, home)
        if pager:
            blocks.append(pager)
    if len(blocks) > MAX_BLOCKS:
        blocks = blocks[: MAX_BLOCKS - 1] + [_context("…more than fits: use `/eval list` for the rest.")]
    return {"type": "home", "blocks": blocks}

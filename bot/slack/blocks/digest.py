"""Block Kit for the digest: pure functions from a `Digest` to Slack messages that stay within Slack's limits.

The channel message (`digest_message`) shows the pass rate and its change, then the lists — regressions first,
then fixes, new cases, errors, flaky cases — each cut to what fits with "…and N more", then tokens, cost and
latency. `thread_messages` holds the full lists that were cut, packed into as few thread replies as the limits
allow. A run that failed as a whole is one `failure_message`. Limits: at most 50 blocks a message, 3,000
characters a section text, 150 a header, 10 context elements (lengths counted in UTF-16 units, like Slack);
they, escaping and clipping come from `bot.slack.blocks.kit`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from bot.digest.data import Digest, Item
from bot.digest.people import Growth
from bot.evals.compare import RunSummary
from bot.slack.blocks import kit
from bot.slack.blocks.kit import escape, slack_len

__all__ = ["escape", "slack_len"]

MAX_BLOCKS = kit.MESSAGE_BLOCKS
MAX_SECTION = kit.SECTION_TEXT
MAX_HEADER = kit.HEADER_TEXT
MAX_CONTEXT_ELEMENTS = kit.CONTEXT_ELEMENTS
MAIN_ITEMS = 8  # per list in the channel message
MAX_THREAD_MESSAGES = 10
TITLE_CHARS, DETAIL_CHARS, LINK_CHARS, REASON_CHARS = 100, 240, 400, 1500

Block = dict[str, Any]

HEADINGS = {
    "regressions": ":red_circle: *Regressions* — passed before, fail now, confirmed by re-running",
    "unconfirmed": ":grey_question: *Unconfirmed flips* — changed once, not on re-run (likely noise)",
    "fixes": ":large_green_circle: *Fixed* — failed before, pass now",
    "new": ":new: *New cases* since the last run",
    "errors": ":warning: *Errors* — could not be graded",
    "flaky": ":game_die: *Flaky* — trials or recent runs disagree",
}
NOUNS = {"regressions": ("regression", "regressions"), "fixes": ("fix", "fixes"), "new": ("new", "new"),
         "errors": ("error", "errors"), "flaky": ("flaky", "flaky"), "unconfirmed": ("unconfirmed flip", "unconfirmed flips")}


@dataclass(frozen=True)
class Message:
    """One Slack message: notification text and blocks."""

    text: str
    blocks: list[Block]


def clip(text: str, limit: int) -> str:
    """`text` on one line, at most `limit` UTF-16 units (an ellipsis marks the cut)."""
    return kit.clip(text, limit, one_line=True)


_mrkdwn = kit.mrkdwn
_section = kit.section


def _safe_url(url: str | None) -> str | None:
    if not url or len(url) > LINK_CHARS or not url.startswith(("https://", "http://")):
        return None
    return None if any(c in url for c in "|<> \t\n") else url


def item_line(item: Item) -> str:
    """'• `id` <thread|title> — detail' (the title links to the Slack thread the case came from)."""
    title = escape(clip(item.title or "(untitled)", TITLE_CHARS))
    url = _safe_url(item.permalink)
    label = f"<{url}|{title.replace('|', '¦')}>" if url else title
    detail = f" — {escape(clip(item.detail, DETAIL_CHARS))}" if item.detail else ""
    case_id = escape(clip(item.case_id, 40)).replace("`", "'")
    return f"• `{case_id}` {label}{detail}{flagged_by(item)}"


def _more(count: int) -> str:
    return f"…and {count} more (full list in the thread)"


def list_section(heading: str, items: Sequence[Item], *, max_items: int | None = None) -> tuple[Block, int]:
    """A section with `heading` and as many items as fit (MAIN_ITEMS at most); returns it and how many it shows."""
    max_items = MAIN_ITEMS if max_items is None else max_items
    lines = [heading]
    shown = 0
    reserve = slack_len("\n" + _more(len(items)))
    for item in items[:max_items]:
        line = item_line(item)
        rest = len(items) - shown - 1
        needed = slack_len("\n".join([*lines, line])) + (reserve if rest else 0)
        if needed > MAX_SECTION:
            break
        lines.append(line)
        shown += 1
    if shown < len(items):
        lines.append(_more(len(items) - shown))
    return _section("\n".join(lines)), shown


def percent(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:.0%}"


def change_text(digest: Digest) -> str:
    """The pass rate's change since the baseline, in percentage points."""
    if digest.baseline_run_id is None:
        return "first run: nothing to compare with"
    if digest.pass_rate_change is None:
        return f"run #{digest.baseline_run_id} had no cases"
    points = round(digest.pass_rate_change * 100)
    if points > 0:
        return f":chart_with_upwards_trend: +{points} pts since run #{digest.baseline_run_id}"
    if points < 0:
        return f":chart_with_downwards_trend: −{-points} pts since run #{digest.baseline_run_id}"
    return f"no change since run #{digest.baseline_run_id}"


def date_token(when: datetime) -> str:
    """A date Slack shows in each reader's own time zone (UTC in the fallback)."""
    moment = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
    fallback = moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def origin_elements(*, when: datetime | None, corpus_commit: str | None, target: str | None, trigger: str) -> list[Block]:
    """Context elements: when, the corpus commit, the target and what started the run."""
    started_by = {"nightly": "nightly run", "slack": "started with /eval run", "cli": "started from the CLI"}
    parts = [date_token(when)] if when else []
    parts.append(f"corpus `{escape(corpus_commit[:10])}`" if corpus_commit else "corpus commit unknown")
    if target:
        parts.append(f"target `{escape(clip(target, 120)).replace('`', chr(39))}`")
    parts.append(started_by.get(trigger, escape(clip(trigger, 40))))
    return [_mrkdwn(p) for p in parts][:MAX_CONTEXT_ELEMENTS]


def _ms(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value / 1000:.1f} s" if value >= 1000 else f"{value:.0f} ms"


def _cost(value: float) -> str:
    return f"${value:.4f}" if 0 < value < 0.01 else f"${value:,.2f}"


def usage_elements(digest: Digest) -> list[Block]:
    """Context elements: tokens, estimated cost and target latency."""
    parts = [
        f"{digest.input_tokens:,} input + {digest.output_tokens:,} output tokens",
        f"~{_cost(digest.cost_usd)} estimated"
        + (f", {_cost(digest.cost_saved_usd)} saved by batching" if digest.cost_saved_usd > 0 else "")
        + (f" ({escape(clip(digest.cost_note, 200))})" if digest.cost_note else ""),
        f"latency p50 {_ms(digest.latency_p50_ms)} · p95 {_ms(digest.latency_p95_ms)}",
    ]
    return [_mrkdwn(p) for p in parts]


def counts_line(digest: Digest) -> str:
    """'1 regression · 2 new · …' (only what is there), or that nothing regressed."""
    parts = []
    for name, items in digest.lists():
        if items:
            one, many = NOUNS[name]
            parts.append(f"{len(items)} {one if len(items) == 1 else many}")
    if digest.still_failing:
        parts.append(f"{digest.still_failing} still failing")
    if digest.removed:
        parts.append(f"{digest.removed} removed")
    if digest.quarantined:
        parts.append(f"{digest.quarantined} quarantined")
    if not digest.regressions:
        parts.insert(0, "No regressions")
    return " · ".join(parts)


def summary_text(digest: Digest) -> str:
    """The notification text of the channel message."""
    regressions = len(digest.regressions)
    noun = "regression" if regressions == 1 else "regressions"
    return (f"Eval run #{digest.run_id}: {percent(digest.pass_rate)} passed ({digest.passed}/{digest.cases_total}), "
            f"{regressions} {noun}")


def digest_message(digest: Digest) -> Message:
    """The channel message of a finished run."""
    blocks: list[Block] = [
        kit.header(f"Eval run #{digest.run_id}: {percent(digest.pass_rate)} passed"),
        _section(f"*{percent(digest.pass_rate)}* passed ({digest.passed} of {digest.cases_total} cases) · "
                 f"{change_text(digest)}\n{counts_line(digest)}"),
        {"type": "context", "elements": origin_elements(when=digest.when, corpus_commit=digest.corpus_commit,
                                                        target=digest.target, trigger=digest.trigger)},
    ]
    if digest.changes:
        blocks.append(changes_section(digest))
    for name, items in digest.lists():
        if items:
            block, _ = list_section(HEADINGS[name], items)
            blocks.append(block)
            if name == "regressions" and any(i.judged for i in items):
                blocks.append(judge_buttons(digest.run_id, items))
    if digest.growth is not None:
        blocks.append(_section(growth_text(digest.growth)))
    blocks.append({"type": "divider"})
    blocks.append({"type": "context", "elements": usage_elements(digest)})
    if digest.judge_agreement:
        blocks.append({"type": "context", "elements": [_mrkdwn(":scales: " + escape(clip(digest.judge_agreement, 500)))]})
    return Message(kit.message_text(summary_text(digest)), kit.message_blocks(blocks))


JUDGE_WRONG_ACTION = "evalbot_judge_wrong"


def judge_value(run_id: int, case_id: str) -> str:
    return f"{run_id}|{case_id}"


def parse_judge_value(value: str) -> tuple[int, str]:
    """(run id, case id) of a 'judge was wrong' button."""
    run, _, case_id = value.partition("|")
    return int(run), case_id


def judge_buttons(run_id: int, items: Sequence[Item]) -> Block:
    """One "Judge wrong" button per regression the judge failed (at most MAIN_ITEMS): a maintainer's correction."""
    return {"type": "actions", "block_id": "evalbot_judge_review", "elements": [
        {"type": "button", "action_id": f"{JUDGE_WRONG_ACTION}_{n}", "value": judge_value(run_id, item.case_id),
         "text": {"type": "plain_text", "text": clip(f"Judge wrong: {item.case_id}", 75), "emoji": True}}
        for n, item in enumerate([i for i in items if i.judged][:MAIN_ITEMS])
    ]}


def changes_section(digest: Digest) -> Block:
    """What changed since the baseline run: ':mag: Since run #12: system prompt changed in abc1234: +3 −1 lines'."""
    lines = [escape(clip(line, DETAIL_CHARS)) for line in digest.changes[:MAIN_ITEMS]]
    return _section(clip(f":mag: *Since run #{digest.baseline_run_id}:* " + " · ".join(lines), MAX_SECTION))


def cut_lists(digest: Digest) -> list[tuple[str, tuple[Item, ...]]]:
    """The lists the channel message could not show in full."""
    cut = []
    for name, items in digest.lists():
        if items and list_section(HEADINGS[name], items)[1] < len(items):
            cut.append((name, items))
    return cut


def _pack_sections(heading: str, items: Sequence[Item]) -> list[Block]:
    sections: list[Block] = []
    lines = [heading]
    for item in items:
        line = item_line(item)
        if slack_len("\n".join([*lines, line])) > MAX_SECTION:
            sections.append(_section("\n".join(lines)))
            lines = []
        lines.append(line)
    sections.append(_section("\n".join(lines)))
    return sections


def thread_messages(digest: Digest) -> list[Message]:
    """Thread replies carrying every list the channel message cut, in full (or up to MAX_THREAD_MESSAGES)."""
    blocks: list[Block] = []
    for name, items in cut_lists(digest):
        heading = f"{HEADINGS[name]} — all {len(items)}"
        blocks.extend(_pack_sections(heading, items))
    per_message = MAX_BLOCKS
    chunks = [blocks[i:i + per_message] for i in range(0, len(blocks), per_message)]
    if len(chunks) > MAX_THREAD_MESSAGES:
        chunks = chunks[:MAX_THREAD_MESSAGES]
        chunks[-1] = chunks[-1][: per_message - 1] + [{"type": "context", "elements": [_mrkdwn(
            f"The lists go on: `evalbot eval report {digest.run_id}` prints every case.")]}]
    return [Message(f"Eval run #{digest.run_id}: full lists ({n + 1}/{len(chunks)})", chunk)
            for n, chunk in enumerate(chunks)]


def failure_message(reason: str, *, run_id: int | None = None, when: datetime | None = None,
                    corpus_commit: str | None = None, target: str | None = None, trigger: str = "nightly") -> Message:
    """One message for a run that failed as a whole: 'run failed: <reason>'."""
    reason = clip(reason or "unknown error", REASON_CHARS)
    name = f"Eval run #{run_id}" if run_id is not None else "Eval run"
    blocks: list[Block] = [
        _section(f":x: *{name}: run failed:* {escape(reason)}"),  # cut after escaping, by the kit
        {"type": "context", "elements": origin_elements(when=when, corpus_commit=corpus_commit, target=target,
                                                        trigger=trigger)},
    ]
    return Message(kit.message_text(f"{name}: run failed: {reason}"), blocks)


def digest_failure_message(digest: Digest) -> Message:
    """The failure message of a recorded run (`digest.failure` set)."""
    return failure_message(digest.failure or "unknown error", run_id=digest.run_id, when=digest.when,
                           corpus_commit=digest.corpus_commit, target=digest.target, trigger=digest.trigger)


def chart_title(digest: Digest) -> str:
    """The title of the trend chart uploaded in the thread."""
    count = len(digest.trend)
    return f"Pass rate and cost, last {count} run{'s' if count != 1 else ''} (up to #{digest.run_id})"


def _run_line(run: RunSummary) -> str:
    if run.status == "failed":
        return f"run #{run.id} *failed*: {escape(clip(run.error or 'unknown error', 300))}"
    return f"run #{run.id}: *{percent(run.pass_rate)}* passed ({run.passed} of {run.cases_total} cases)"


def status_message(*, last: RunSummary | None, last_regressions: int | None, digest_link: str | None,
                   running: RunSummary | None, running_by: str | None, next_run: datetime | None,
                   schedule: str, judge_agreement: str | None = None) -> Message:
    """`/eval status`: the last run, the run in progress, the next scheduled one (and judge–human agreement)."""
    lines = []
    if last is None:
        lines.append(":zzz: *Last run:* none yet")
    else:
        line = f":white_check_mark: *Last run:* {_run_line(last)}, {date_token(last.started_at)}"
        if last_regressions:
            line += f" · {last_regressions} regression{'s' if last_regressions != 1 else ''}"
        if digest_link and _safe_url(digest_link):
            line += f" · <{digest_link}|digest>"
        lines.append(line)
    if running is not None:
        who = f" by {running_by}" if running_by else ""  # built by bot.evals.runs.holder_label: a mention, not user text
        lines.append(f":hourglass_flowing_sand: *Running now:* run #{running.id} ({running.cases_total} cases), "
                     f"started{who} {date_token(running.started_at)}")
    if next_run is not None:
        lines.append(f":alarm_clock: *Next nightly run:* {date_token(next_run)} (`{escape(schedule)}`)")
    else:
        lines.append(f":alarm_clock: *Next nightly run:* none scheduled (`{escape(schedule)}`)")
    if judge_agreement:
        lines.append(f":scales: *Judge:* {escape(clip(judge_agreement, 500))}")
    text = "\n".join(lines)
    plain = "Last run: " + (f"#{last.id} {last.status}" if last else "none yet")
    if next_run is not None:
        plain += f"; next nightly run {next_run.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC"
    return Message(kit.message_text(plain), [_section(text)])


# ---------------------------------------------------------------- people (issue 16)

MAX_NAMED = 5  # flaggers named on one line, contributors in the weekly line


def _people(users: Sequence[str], limit: int = MAX_NAMED) -> str:
    shown = ", ".join(f"<@{escape(u)}>" for u in users[:limit])
    return shown + (f" and {len(users) - limit} more" if len(users) > limit else "")


def flagged_by(item: Item) -> str:
    """' — flagged by <@U1>, <@U2>' for an item that knows its flaggers, else ''."""
    return f" — flagged by {_people(item.flaggers)}" if item.flaggers else ""


def growth_text(growth: Growth) -> str:
    """The weekly line: cases added and by whom, the corpus's size and new tags, first-time contributors."""
    if growth.added:
        noun = "case" if growth.added == 1 else "cases"
        people = [f"<@{escape(u)}> ({n})" for u, n in growth.contributors[:MAX_NAMED]]
        more = len(growth.contributors) - MAX_NAMED
        by = f" flagged by {', '.join(people)}" + (f" and {more} more" if more > 0 else "") if people else ""
        line = f":seedling: *This week:* {growth.added} new {noun}{by}"
    else:
        line = ":seedling: *This week:* no new cases"
    tags = f"{growth.tags_total} tag{'s' if growth.tags_total != 1 else ''}"
    if growth.new_tags:
        tags += " (new: " + ", ".join(f"`{escape(clip(t, 40))}`" for t in growth.new_tags[:MAX_NAMED]) + ")"
    line += f" · corpus: {growth.total} case{'s' if growth.total != 1 else ''}, {tags}"
    if growth.first_timers:
        line += f" · :tada: first-time contributors: {_people(growth.first_timers)}"
    return clip(line, MAX_SECTION)

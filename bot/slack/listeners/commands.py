"""The slash command (EVALBOT_SLASH_COMMAND, default /eval): a table of subcommands behind one dispatcher.

The ack does no I/O: it answers `help`, an unknown subcommand (with help) and a use outside EVALBOT_CHANNEL or a
DM itself, and otherwise acks silently. The subcommand then runs in a lazy listener and answers the user alone
through the command's response_url. An EvalbotError becomes a ":warning:" answer; anything else reaches
`@app.error`.

Adding a subcommand is adding a table entry: `Subcommand(name, usage, summary, run)` where `run(invocation)`
returns a `Reply`, or None when it answered otherwise (e.g. it opened a modal). Put it in `subcommands()` below,
or pass it to `register(..., extra=[...])`; help lists every entry in table order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from slack_bolt import Ack, App, Respond

from bot.core.errors import EvalbotError, UsageError
from bot.core.settings import Settings
from bot.slack.blocks import triage as tb
from bot.slack.blocks.modals import Origin
from bot.slack.deps import SlackDeps
from bot.slack.flows.triage_ops import TriageOps, guarded, ops_for
from bot.slack.listeners import bind
from bot.slack.markup import mentions, to_plain_text
from bot.triage import decisions as triage


@dataclass(frozen=True)
class Invocation:
    """One use of the slash command, as a subcommand sees it."""

    command: str  # e.g. /eval
    user_id: str
    channel_id: str
    args: str  # the text after the subcommand's name, Slack markup turned into plain text
    trigger_id: str
    response_url: str | None

    def origin(self, ref: str = "") -> Origin:
        return Origin(case_id=ref, channel=self.channel_id, response_url=self.response_url)


@dataclass(frozen=True)
class Reply:
    """An ephemeral answer: fallback text and, optionally, blocks."""

    text: str
    blocks: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class Subcommand:
    """One entry of the table."""

    name: str
    usage: str  # after the command, e.g. "show ID"
    summary: str
    run: Callable[[Invocation], Reply | None]


class CommandTable:
    """Subcommands by name, in the order help lists them."""

    def __init__(self, entries: Iterable[Subcommand] = ()):
        self._entries: dict[str, Subcommand] = {}
        for entry in entries:
            self.add(entry)

    def add(self, entry: Subcommand) -> None:
        if entry.name == "help" or entry.name in self._entries:
            raise ValueError(f"subcommand {entry.name!r} is already defined")
        self._entries[entry.name] = entry

    def get(self, name: str) -> Subcommand | None:
        return self._entries.get(name)

    def help_entries(self) -> list[tb.HelpEntry]:
        return [tb.HelpEntry("help", "this help"), *(tb.HelpEntry(e.usage, e.summary) for e in self._entries.values())]


def split(text: str) -> tuple[str, str]:
    """(subcommand name, the rest) of the command's text."""
    name, _, rest = (text or "").strip().partition(" ")
    return name.lower(), rest.strip()


def _first(args: str, what: str, example: str) -> tuple[str, str]:
    ref, _, rest = args.strip().partition(" ")
    if not ref:
        raise UsageError(f"{what}: `{example}`")
    return ref, rest.strip()


def list_cases(inv: Invocation, *, ops: TriageOps) -> Reply:
    """`list [candidates|cases|all] [PAGE]`: one page of the index."""
    which, page = "candidates", 1
    for token in inv.args.lower().split():
        if token in tb.LISTS:
            which = token
        elif token.isdigit():
            page = max(1, int(token))
        else:
            raise UsageError(f"list takes candidates, cases or all, and a page: `{inv.command} list cases 2`")
    rows, total = ops.listing(which=which, page=page)
    return Reply(text=f"{which}: {total}", blocks=tb.listing_blocks(rows, total=total, which=which, page=page))


def show(inv: Invocation, *, ops: TriageOps) -> Reply:
    """`show ID`: the case in full."""
    ref, _ = _first(inv.args, "show needs a case id", f"{inv.command} show k3m9")
    case = ops.case(ref)
    return Reply(text=f"Case {case.id}: {case.title}", blocks=tb.case_detail_blocks(case))


def promote(inv: Invocation, *, ops: TriageOps) -> Reply | None:
    """`promote ID [rubric]`: promote with that rubric, or open the promote form."""
    ref, rubric = _first(inv.args, "promote needs a case id", f"{inv.command} promote k3m9 States the 30-day window")
    if not rubric:
        ops.open_promote(user_id=inv.user_id, trigger_id=inv.trigger_id, ref=ref, origin=inv.origin())
        return None
    expect = triage.parse_expectations([{"rubric": rubric}])
    return Reply(ops.promote(user_id=inv.user_id, ref=ref, expect=expect))


def reject(inv: Invocation, *, ops: TriageOps) -> Reply:
    """`reject ID reason`."""
    ref, reason = _first(inv.args, "reject needs a case id and a reason", f"{inv.command} reject k3m9 not a bug")
    return Reply(ops.reject(user_id=inv.user_id, ref=ref, reason=reason))


def edit(inv: Invocation, *, ops: TriageOps) -> None:
    """`edit ID`: open the edit form."""
    ref, _ = _first(inv.args, "edit needs a case id", f"{inv.command} edit k3m9")
    ops.open_edit(user_id=inv.user_id, trigger_id=inv.trigger_id, ref=ref, origin=inv.origin())


def subcommands(ops: TriageOps) -> list[Subcommand]:
    """The triage subcommands, bound to the app's triage operations."""
    return [
        Subcommand("list", "list [candidates|cases|all] [PAGE]", "newest first, with flags and age (candidates by default)",
                   bind(list_cases, ops=ops)),
        Subcommand("show", "show ID", "the conversation, expectations and a link to the source thread", bind(show, ops=ops)),
        Subcommand("promote", "promote ID [rubric text]", "promote with that rubric, or open the promote form",
                   bind(promote, ops=ops)),
        Subcommand("reject", "reject ID reason", "reject a candidate; the reason is kept", bind(reject, ops=ops)),
        Subcommand("edit", "edit ID", "change the title, tags or expectations", bind(edit, ops=ops)),
    ]


def usable_in(channel_id: str, settings: Settings) -> bool:
    """The command works in the standing channel and in DMs."""
    return channel_id == settings.channel or channel_id.startswith("D")


def help_reply(table: CommandTable, ops: TriageOps, note: str | None = None) -> dict[str, Any]:
    """The help answer (text and blocks), `note` above it."""
    settings = ops.rt.settings
    who = ops.maintainers.who() if ops.maintainers.restricted else None
    entries = table.help_entries()
    return {"text": tb.help_text(settings.slash_command, entries),
            "blocks": tb.help_blocks(settings.slash_command, entries, channel=settings.channel, maintainers=who, note=note)}


def answer_at_once(ack: Ack, body: dict[str, Any], *, table: CommandTable, ops: TriageOps) -> None:
    """The ack: help, an unknown subcommand and a use outside the channel are answered here; the rest silently."""
    settings = ops.rt.settings
    command = settings.slash_command
    if not usable_in(body.get("channel_id") or "", settings):
        ack(text=tb.where_text(command, settings.channel))
        return
    name, _ = split(body.get("text") or "")
    if table.get(name) is not None:
        ack()
        return
    unknown = f"I don't know `{command} {name}`. Here is what I do:" if name not in ("", "help") else None
    ack(**help_reply(table, ops, unknown))


def run_subcommand(body: dict[str, Any], respond: Respond, *, table: CommandTable, deps: SlackDeps) -> None:
    """After the ack: run the subcommand and answer the user alone (an EvalbotError as a warning)."""
    settings = deps.runtime.settings
    name, args = split(body.get("text") or "")
    entry = table.get(name)
    if entry is None or not usable_in(body.get("channel_id") or "", settings):
        return  # answered in the ack
    invocation = Invocation(
        command=settings.slash_command, user_id=body["user_id"], channel_id=body["channel_id"],
        trigger_id=body.get("trigger_id") or "", args=to_plain_text(args, user_name=deps.source.user_name),
        response_url=body.get("response_url"),
    )
    try:
        reply = entry.run(invocation)
    except EvalbotError as exc:
        reply = Reply(f":warning: {mentions(str(exc))}")
    if reply is not None:
        respond(text=reply.text, blocks=reply.blocks, response_type="ephemeral", replace_original=False)


def register(app: App, deps: SlackDeps, *, extra: Sequence[Subcommand] = ()) -> None:
    """Attach the slash command with the triage subcommands (and `extra` ones)."""
    ops = ops_for(app, deps)
    table = CommandTable([*subcommands(ops), *extra])
    app.command(deps.runtime.settings.slash_command)(
        ack=bind(answer_at_once, table=table, ops=ops), lazy=[guarded(ops, bind(run_subcommand, table=table, deps=deps))],
    )

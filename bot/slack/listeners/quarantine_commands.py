"""`/eval quarantine ID [reason]` and `/eval unquarantine ID`: two entries for the slash command's table.

Wire them with `commands.register(app, deps, extra=[..., *quarantine_commands.subcommands(app, deps)])`. Each is an
adapter: maintainers only (the same check as triage), one domain call (`bot.evals.quarantine.set_quarantine`, a
commit of the case file), one ephemeral answer. A quarantined case still runs and is reported, but never fails the CI
gate (bot/evals/gate.py).
"""

from __future__ import annotations

from slack_bolt import App

from bot.core.errors import UsageError
from bot.evals.quarantine import set_quarantine
from bot.slack.deps import SlackDeps
from bot.slack.flows.triage_ops import TriageOps, ops_for
from bot.slack.listeners.commands import Invocation, Reply, Subcommand
from bot.store.tables import session_scope


def quarantine(inv: Invocation, *, ops: TriageOps, on: bool) -> Reply:
    """Quarantine (`on`) or release the case named first in the arguments."""
    name = "quarantine" if on else "unquarantine"
    ref, _, reason = inv.args.strip().partition(" ")
    if not ref:
        raise UsageError(f"{name} needs a case id: `{inv.command} {name} k3m9{' flaky since the model update' if on else ''}`")
    ops.maintainers.require(inv.user_id)
    with session_scope(ops.rt.engine) as session:
        case, changed = set_quarantine(corpus=ops.rt.corpus, session=session, ref=ref, actor=ops.author(inv.user_id),
                                       on=on, reason=reason.strip() or None)
    if not changed:
        return Reply(f"{case.id} was {'already' if on else 'not'} quarantined")
    if on:
        return Reply(f":construction: Quarantined `{case.id}` {case.title}: it still runs and is reported, "
                     "but never fails the CI gate.")
    return Reply(f":white_check_mark: Released `{case.id}` {case.title} from quarantine: its failures count again.")


def subcommands(app: App, deps: SlackDeps) -> list[Subcommand]:
    """The `quarantine` and `unquarantine` table entries, bound to the app's triage operations."""
    ops = ops_for(app, deps)
    return [
        Subcommand("quarantine", "quarantine ID [reason]", "a flaky case keeps running but never fails the CI gate",
                   lambda inv: quarantine(inv, ops=ops, on=True)),
        Subcommand("unquarantine", "unquarantine ID", "its failures count in the CI gate again",
                   lambda inv: quarantine(inv, ops=ops, on=False)),
    ]

"""`/eval mute` and `/eval unmute`: entries for the slash command's table (bot/slack/listeners/commands.py).

Each person decides for themselves whether follow-ups in their flag threads @-mention them (bot/digest/outbox.py).
"""

from __future__ import annotations

from bot.core.errors import UsageError
from bot.digest import outbox
from bot.runtime import Runtime
from bot.slack.listeners.commands import Invocation, Reply, Subcommand
from bot.store.tables import session_scope


def mute(inv: Invocation, *, runtime: Runtime) -> Reply:
    """Stop @-mentioning the caller in follow-ups."""
    if inv.args:
        raise UsageError(f"mute takes no arguments: `{inv.command} mute` stops the follow-up mentions for you")
    with session_scope(runtime.engine) as session:
        changed = outbox.mute(session, user_id=inv.user_id)
    already = "" if changed else " (they were already off)"
    return Reply(f":mute: Follow-ups will not mention you any more{already}. `{inv.command} unmute` turns them back on.")


def unmute(inv: Invocation, *, runtime: Runtime) -> Reply:
    """Mention the caller in follow-ups again."""
    if inv.args:
        raise UsageError(f"unmute takes no arguments: `{inv.command} unmute`")
    with session_scope(runtime.engine) as session:
        changed = outbox.unmute(session, user_id=inv.user_id)
    already = "" if changed else " (they were on)"
    return Reply(f":loud_sound: Follow-ups will mention you again when your flags are promoted, fixed or "
                 f"regress{already}.")


def subcommands(runtime: Runtime) -> list[Subcommand]:
    """The `mute` and `unmute` table entries."""
    return [
        Subcommand("mute", "mute", "stop follow-ups in your flag threads from mentioning you",
                   lambda inv: mute(inv, runtime=runtime)),
        Subcommand("unmute", "unmute", "be mentioned in follow-ups again", lambda inv: unmute(inv, runtime=runtime)),
    ]

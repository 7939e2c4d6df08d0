"""`/eval run` and `/eval status`: two entries for the slash command's table (bot/slack/listeners/commands.py).

Wire them with `commands.register(app, deps, extra=run_commands.subcommands(app.client, deps.runtime))`.
Each is an adapter: `run` takes the run lock and starts the run in the background (bot/evals/runs.py), answers at once
with "Running N cases…" and posts the digest to EVALBOT_CHANNEL when the run ends; while a run is in progress
it raises RunInProgressError, which the dispatcher turns into an ephemeral ":warning:" answer. `status` shows
the last run, the run in progress and the next nightly slot, and the flags parked as failed.
"""

from __future__ import annotations

from slack_sdk import WebClient

from bot.capture import inbox
from bot.core.errors import UsageError
from bot.evals import runs
from bot.evals.compare import RunSummary, compare_runs
from bot.runtime import Runtime
from bot.schedule import next_nightly
from bot.slack.blocks import capture as capture_blocks
from bot.slack.blocks import digest as db
from bot.slack.flows.digest_post import publish
from bot.slack.flows.notify import digest_permalink
from bot.slack.listeners.commands import Invocation, Reply, Subcommand
from bot.slack.markup import mentions
from bot.store.tables import session_scope


def run(inv: Invocation, *, runtime: Runtime, client: WebClient) -> Reply:
    """Start a run of every promoted case now; the digest follows in the channel."""
    if inv.args:
        raise UsageError(f"run takes no arguments: `{inv.command} run` evaluates every promoted case")
    started = runs.start_run(runtime, trigger="slack", user=inv.user_id,
                             on_done=lambda outcome: publish(runtime, outcome, client=client))
    trials = f" × {started.trials} trials" if started.trials > 1 else ""
    where = f"<#{runtime.settings.channel}>" if runtime.settings.channel else "the channel"
    noun = "case" if started.cases == 1 else "cases"
    return Reply(f":hourglass_flowing_sand: Running {started.cases} {noun}{trials}… "
                 f"The digest will be posted in {where} when the run is done.")


def status(inv: Invocation, *, runtime: Runtime, client: WebClient) -> Reply:
    """The last run (pass rate, regressions, its digest), the run in progress and the next nightly run."""
    settings = runtime.settings
    with session_scope(runtime.engine) as session:
        state = runs.run_state(session)
        last = RunSummary.of(state.last) if state.last else None
        regressions, agreement = None, None
        if state.last is not None and state.last.status == "finished" and state.last.id is not None:
            comparison = compare_runs(session, state.last.id)
            regressions, agreement = len(comparison.regressions), comparison.judge_agreement
        running = RunSummary.of(state.running) if state.running else None
        digest_ts = state.last.digest_ts if state.last else None
    running_by = mentions(runs.holder_label(state.lock_holder)) if state.lock_holder else None
    message = db.status_message(
        last=last, last_regressions=regressions, digest_link=digest_permalink(client, settings.channel, digest_ts),
        running=running, running_by=running_by, next_run=next_nightly(settings),
        schedule=f"{settings.nightly} {settings.timezone}", judge_agreement=agreement,
    )
    parked = inbox.parked(runtime.engine, limit=5)
    if parked:
        failed = capture_blocks.failed_flags(parked)
        return Reply(f"{message.text}\n{failed['text']['text']}", [*message.blocks, failed])
    return Reply(message.text, message.blocks)


def subcommands(client: WebClient, runtime: Runtime) -> list[Subcommand]:
    """The `run` and `status` table entries, bound to the app's client and the runtime."""
    return [
        Subcommand("run", "run", "evaluate every promoted case now; the digest follows in the channel",
                   lambda inv: run(inv, runtime=runtime, client=client)),
        Subcommand("status", "status", "the last run and the next nightly one",
                   lambda inv: status(inv, runtime=runtime, client=client)),
    ]

"""The Bolt app factory: client, identity, listeners (registered here and only here) and the error handler."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from slack_bolt import App

from bot.core import metrics
from bot.runtime import Runtime
from bot.slack.client import make_web_client, sign_in
from bot.slack.deps import SubmitFlag, build_deps
from bot.slack.flows.flagging import capture_now
from bot.slack.listeners import (
    actions,
    commands,
    events,
    followup_commands,
    home,
    judge_actions,
    quarantine_commands,
    run_commands,
    shortcuts,
    views,
)
from bot.slack.redaction import redacting_middleware

log = logging.getLogger(__name__)

LISTENER_WORKERS = 32


def count_requests(body: dict[str, Any], next: Callable[[], None]) -> None:  # noqa: A002 - Bolt's name
    """Count every request Slack sends, by kind (the metrics endpoint shows them)."""
    kind = (body.get("event") or {}).get("type") or body.get("type") or ("command" if body.get("command") else "other")
    metrics.SLACK_REQUESTS.labels(kind).inc()
    next()


def on_error(error: Exception, body: dict[str, Any]) -> None:
    """What no listener handled: logged with its traceback."""
    log.error("unhandled error in a Slack listener (%s)", body.get("type") or body.get("command"), exc_info=error)


def create_app(runtime: Runtime, *, submit_flag: SubmitFlag | None = None) -> App:
    """A Bolt App wired to the runtime; verifies the bot token with auth.test once.

    Flags, once in the inbox, are captured by `submit_flag` (serve hands them to a worker process); without it,
    on the listener's own thread.
    """
    settings = runtime.settings
    client = make_web_client(settings)
    identity = sign_in(settings, client)
    app = App(
        client=client,
        signing_secret=settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None,
        token_verification_enabled=False,  # auth.test already ran above
        request_verification_enabled=settings.slack_signing_secret is not None,
        process_before_response=False,
        ignoring_self_events_enabled=True,
        # Captures (inline) mostly wait on Slack and the shared git commit: more workers keep up with bursts.
        listener_executor=ThreadPoolExecutor(max_workers=LISTENER_WORKERS, thread_name_prefix="evalbot-listener"),
    )
    app.use(redacting_middleware)  # every request's client, say, respond and ack redact what they send
    deps = build_deps(runtime, client, identity.data)
    deps.submit_flag = submit_flag or (lambda key: capture_now(deps, client, key))
    for module in (events, shortcuts, actions, views, home, judge_actions):
        module.register(app, deps)
    commands.register(app, deps, extra=[*run_commands.subcommands(client, runtime), *followup_commands.subcommands(runtime),
                                        *quarantine_commands.subcommands(app, deps)])
    app.middleware(count_requests)
    app.error(on_error)

    log.info("signed in to Slack as %s (%s)", identity.get("user"), identity.get("user_id"))
    return app

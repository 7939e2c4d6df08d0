"""The Bolt app factory: client, identity, listeners (registered here and only here) and the error handler."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable
from typing import Any

from slack_bolt import App

from bot import metrics
from bot.capture import CaptureOptions
from bot.drafting import make_drafter
from bot.runtime import Runtime
from bot.slack import actions, commands, events, run_commands, shortcuts, views
from bot.slack.client import make_web_client
from bot.slack.deps import SlackDeps
from bot.slack.source import SlackThreadSource

log = logging.getLogger(__name__)

LISTENER_WORKERS = 32


def create_app(runtime: Runtime) -> App:
    """A Bolt App wired to the runtime; verifies the bot token with auth.test once."""
    settings = runtime.settings
    client = make_web_client(settings)
    identity = client.auth_test()
    app = App(
        client=client,
        signing_secret=settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None,
        token_verification_enabled=False,  # auth.test already ran above
        request_verification_enabled=settings.slack_signing_secret is not None,
        process_before_response=False,
        ignoring_self_events_enabled=True,
        # Captures mostly wait (Slack calls, the shared git commit); more workers keep throughput up under bursts.
        listener_executor=ThreadPoolExecutor(max_workers=LISTENER_WORKERS, thread_name_prefix="evalbot-listener"),
    )
    deps = SlackDeps(
        runtime=runtime,
        source=SlackThreadSource(client, bot_user_id=identity.get("user_id"), bot_id=identity.get("bot_id")),
        options=CaptureOptions(
            assistant_ids=frozenset(settings.assistant_ids),
            redact_contacts=settings.redact_contacts,
            drafter=make_drafter(settings),
        ),
    )
    for module in (events, shortcuts, actions, views):
        module.register(app, deps)
    commands.register(app, deps, extra=run_commands.subcommands(client, runtime))

    @app.middleware
    def count_requests(body: dict[str, Any], next: Callable[[], None]) -> None:  # noqa: A002 - Bolt's name
        kind = (body.get("event") or {}).get("type") or body.get("type") or ("command" if body.get("command") else "other")
        metrics.SLACK_REQUESTS.labels(kind).inc()
        next()

    @app.error
    def on_error(error: Exception, body: dict[str, Any]) -> None:
        log.error("unhandled error in a Slack listener (%s)", body.get("type") or body.get("command"), exc_info=error)

    log.info("signed in to Slack as %s (%s)", identity.get("user"), identity.get("user_id"))
    return app

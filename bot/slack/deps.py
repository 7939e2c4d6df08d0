"""What listeners need, built once by the app factory and handed to each `register(app, deps)`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slack_sdk import WebClient

from bot.capture.candidate import CaptureOptions
from bot.capture.drafting import make_drafter
from bot.runtime import Runtime
from bot.slack.source import SlackThreadSource

# Hands a flag written to the inbox over to be captured, by its inbox key: inline on the listener's thread by
# default (tests), a worker process under `serve`.
SubmitFlag = Callable[[str], None]


@dataclass
class SlackDeps:
    """The runtime (settings, corpus, database), Slack's thread reader, capture options and the flag hand-over."""

    runtime: Runtime
    source: SlackThreadSource
    options: CaptureOptions
    submit_flag: SubmitFlag | None = None


def build_deps(runtime: Runtime, client: WebClient, identity: dict[str, Any]) -> SlackDeps:
    """Deps for a client whose auth.test answer is `identity` (the bot's own user and bot ids)."""
    settings = runtime.settings
    return SlackDeps(
        runtime=runtime,
        source=SlackThreadSource(client, bot_user_id=identity.get("user_id"), bot_id=identity.get("bot_id")),
        options=CaptureOptions(
            assistant_ids=frozenset(settings.assistant_ids),
            redact_contacts=settings.redact_contacts,
            drafter=make_drafter(settings),
        ),
    )

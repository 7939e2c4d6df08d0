"""A running evalbot against the fake Slack (and optionally the fake Anthropic), for end-to-end tests.

`running_bot` does what `evalbot serve` does (migrate, reindex, build the Bolt app, connect over Socket Mode)
in this process, so tests can drive it through the fake Slack's websocket and inspect the corpus and database.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler

from bot.core.settings import get_settings
from bot.runtime import Runtime
from bot.serve import start
from tests.fakes.slack import FakeSlack, close_socket_mode

CHANNEL = "C0EVALS01"
OTHER_CHANNEL = "C0RANDOM1"
ASSISTANT_BOT = "B0SUPPORT"
FLAGGER = "U0FLAGGER"
SECOND = "U0SECOND1"
LEAD = "U0LEAD001"


@dataclass
class Bot:
    """Handles to a running bot."""

    slack: FakeSlack
    runtime: Runtime
    app: App


def seed(slack: FakeSlack) -> None:
    slack.add_channel(CHANNEL, "ai-failures")
    slack.add_channel(OTHER_CHANNEL, "random")
    slack.add_user(FLAGGER, "maria", display_name="Maria")
    slack.add_user(SECOND, "dev", display_name="Dev")
    slack.add_user(LEAD, "lead", display_name="Lead")
    slack.add_user("U0SUPPORT", "supportbot", is_bot=True, bot_id=ASSISTANT_BOT)


def configure(monkeypatch: pytest.MonkeyPatch, slack: FakeSlack, **extra: str) -> None:
    env = {
        "SLACK_BOT_TOKEN": "xoxb-test-token",
        "SLACK_APP_TOKEN": "xapp-test-token",
        "SLACK_API_URL": slack.api_url,
        "EVALBOT_CHANNEL": CHANNEL,
        "EVALBOT_ASSISTANT_IDS": ASSISTANT_BOT,
        **extra,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()


@contextmanager
def running_bot(slack: FakeSlack) -> Iterator[Bot]:
    runtime, app = start(get_settings())
    handler = SocketModeHandler(app, get_settings().slack_app_token.get_secret_value())
    handler.connect()
    try:
        slack.wait_connected(timeout=10)
        yield Bot(slack=slack, runtime=runtime, app=app)
    finally:
        close_socket_mode(handler)

"""What listeners need, built once by the app factory and handed to each `register(app, deps)`."""

from __future__ import annotations

from dataclasses import dataclass

from bot.capture import CaptureOptions
from bot.runtime import Runtime
from bot.slack.source import SlackThreadSource


@dataclass
class SlackDeps:
    """The runtime (settings, corpus, database), Slack's thread reader and capture options."""

    runtime: Runtime
    source: SlackThreadSource
    options: CaptureOptions

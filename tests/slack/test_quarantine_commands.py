"""`/eval quarantine` and `/eval unquarantine` through the real Bolt app over Socket Mode against the fake Slack."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.fakes.slack import FakeSlack
from tests.helpers.slackbot import CHANNEL, LEAD, SECOND, configure, running_bot, seed

TENT = "tne841s8"  # a promoted example case


@pytest.fixture
def slack():
    with FakeSlack() as fake:
        seed(fake)
        yield fake


@pytest.fixture
def bot(slack, corpus_dir, monkeypatch):
    configure(monkeypatch, slack, EVALBOT_MAINTAINERS=LEAD)
    with running_bot(slack) as running:
        yield running


def command(slack: FakeSlack, text: str, *, user: str = LEAD) -> str:
    """Send `/eval text` and return the text of the ephemeral answer that follows it."""
    start = len(slack.calls)
    slack.send_slash_command({"command": "/eval", "text": text, "user_id": user, "channel_id": CHANNEL})
    return slack.wait_for_call("response_url", start=start).params["text"]


def test_a_maintainer_quarantines_and_releases_a_case(bot, slack):
    case_file = bot.runtime.corpus.root / "cases" / f"{TENT}.yaml"
    said = command(slack, "quarantine tne8 flaky since the model update")
    assert said.startswith(f":construction: Quarantined `{TENT}`") and "never fails the CI gate" in said
    assert yaml.safe_load(case_file.read_text())["quarantined"] is True
    log = bot.runtime.corpus.repo.run("log", "-1", "--format=%B").strip()
    assert log.startswith(f"Quarantine {TENT}: ") and log.endswith("flaky since the model update")
    assert command(slack, "quarantine tne8") == f"{TENT} was already quarantined"
    assert command(slack, "unquarantine tne8").startswith(f":white_check_mark: Released `{TENT}`")
    assert "quarantined" not in yaml.safe_load(case_file.read_text())


def test_only_maintainers_quarantine_and_the_usage_is_explained(bot, slack):
    assert command(slack, "quarantine tne8", user=SECOND).startswith(":warning: only maintainers can do this")
    assert "quarantine needs a case id" in command(slack, "quarantine")
    help_text = json.dumps(slack.send_slash_command({"command": "/eval", "text": "help", "user_id": LEAD,
                                                     "channel_id": CHANNEL}).payload)
    assert "/eval quarantine ID [reason]" in help_text and "/eval unquarantine ID" in help_text

"""Logs: one JSON object per line with the event's fields, and secrets redacted on every handler."""

from __future__ import annotations

import io
import json
import logging

import pytest

from bot.core.logs import setup_logging


@pytest.fixture
def logged():
    """Set up logging as `serve` does, writing to a buffer instead of stderr."""
    buffer = io.StringIO()

    def setup(fmt: str) -> None:
        setup_logging(fmt=fmt)
        logging.getLogger().handlers[0].setStream(buffer)

    yield buffer, setup
    logging.getLogger().handlers.clear()


def test_json_lines_carry_the_event_fields(logged):
    stream, setup = logged
    setup("json")
    logging.getLogger("bot.capture.candidate").info("captured %s", "abcd1234", extra={"event": "capture", "case_id": "abcd1234"})
    line = json.loads(stream.getvalue().strip())
    assert line["message"] == "captured abcd1234"
    assert (line["event"], line["case_id"], line["level"], line["logger"]) == ("capture", "abcd1234", "info", "bot.capture.candidate")


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_secrets_never_reach_the_log(logged, fmt):
    stream, setup = logged
    setup(fmt)
    token = "xoxb-" + "123456789012-123456789012-" + "b" * 24
    logging.getLogger("slack_sdk").warning("request failed with token %s", token)
    assert token not in stream.getvalue()
    assert "[REDACTED:slack_token]" in stream.getvalue()

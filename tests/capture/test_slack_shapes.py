"""Capture of every kind of message Slack sends, in Slack's own payload shapes, through the real capture path.

Each entry of tests/fixtures/slack_threads.json (blocks, rich text, attachments, files, unfurls, huddles, joins,
tombstones, broadcasts, every system subtype…) is stored in the fake Slack as is, flagged, and read back with
the real SlackThreadSource over the Web API; what each message must become is written next to it (exactly:
styles as Markdown, links as `label (url)`).
"""

from __future__ import annotations

import pytest

from bot.store.tables import get_engine, migrate
from tests.fakes.slack import FakeSlack
from tests.helpers.recorded import CaptureHarness, shape_threads

THREADS = shape_threads()


@pytest.fixture(scope="module")
def slack():
    with FakeSlack() as fake:
        fake.add_user("U0LEAD001", "lead", display_name="Lead")
        yield fake


@pytest.fixture
def harness(slack, db_url, tmp_path):
    engine = get_engine(db_url)
    migrate(engine)
    return CaptureHarness(slack, tmp_path, engine=engine)


@pytest.mark.parametrize("thread", THREADS, ids=[t["id"] for t in THREADS])
def test_each_kind_of_message_is_captured_right(harness, thread):
    outcome, missed = harness.run(thread, exact=True)
    assert missed == [], f"{thread['note']}: {missed}"
    if thread["outcome"] == "refused":
        assert outcome.refusal and "system message" in outcome.refusal and "flag a message someone wrote" in outcome.refusal
        assert harness.corpus.ids() == {}

"""Capture of every kind of message Slack sends, in Slack's own payload shapes, through the real capture path.

Each entry of tests/fixtures/slack_threads.json (blocks, rich text, attachments, files, unfurls, huddles, joins,
tombstones, broadcasts, every system subtype…) is stored in the fake Slack as is, flagged, and read back with
the real SlackThreadSource over the Web API; what each message must become is written next to it (exactly:
styles as Markdown, links as `label (url)`).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bot.store.tables import get_engine, migrate
from tests.fakes.slack import FakeSlack
from tests.helpers.recorded import CaptureHarness, shape_threads

pytestmark = pytest.mark.migrated_db  # the database starts migrated: each test's first use of it migrates in-process

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


def _run_fidelity(data: Path) -> subprocess.CompletedProcess[str]:
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "slack_fidelity.py"
    return subprocess.run([sys.executable, str(script), "--data", str(data)], capture_output=True, text=True, timeout=120,
                          check=False)


def test_the_fidelity_benchmark_counts_messages_and_names_each_miss(tmp_path):
    threads = shape_threads()[:3]
    wrong = {**threads[0], "id": "wrong-on-purpose", "expect": [{**threads[0]["expect"][0], "contains": ["not in the message"]},
                                                                *threads[0]["expect"][1:]]}
    mention = {"kind": "app_mention", "source": "test", "body": {"event": {
        "type": "app_mention", "user": "U0ASKER01", "ts": "1.1", "text": "This content can't be displayed.",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "<@UEVALBOT> wrong window"}}]}},
        "expect_note_contains": "wrong window"}
    (tmp_path / "events.json").write_text(json.dumps([mention, {"kind": "reaction_added", "source": "test", "body": {}}]))
    (tmp_path / "threads.json").write_text(json.dumps(threads))
    right = _run_fidelity(tmp_path)
    total = sum(len(t["expect"]) for t in threads) + 1
    assert right.returncode == 0 and right.stdout.startswith(f"{total}/{total} real messages captured right"), right.stdout + right.stderr
    (tmp_path / "threads.json").write_text(json.dumps([*threads, wrong]))
    missed = _run_fidelity(tmp_path)
    total += len(wrong["expect"])
    assert missed.returncode == 1 and missed.stdout.startswith(f"{total - 1}/{total} real messages captured right")
    assert "miss: wrong-on-purpose: " in missed.stdout and "'not in the message' not in a user turn" in missed.stdout
    assert _run_fidelity(tmp_path / "absent").returncode == 2

"""Slack fidelity: every recorded real Slack message through the capture path, and what came out wrong.

Reads `<repo>/../shared/peer-data/slack/` (threads.json: recorded threads with what each message must become;
events.json: recorded event payloads; users.json: the people, so mentions read as names). Each thread's messages go into a fake Slack (real sockets) exactly as
recorded; the flagged message is captured with the real SlackThreadSource and `capture()`; each expected
message counts as right when its phrases are in a turn of the right role (Markdown style marks ignored, as
the reader writes styles as Markdown), its `absent` phrases nowhere, system messages left out (and a flag
on one refused saying so), and the turns' roles in order. Each @mention event counts as right when its note
is read from the content (never the "can't be displayed" fallback); each message shortcut's message when it
is read with no Slack markup left. Prints "N/M real messages captured right" and each miss.

Run: `uv run python benchmarks/slack_fidelity.py [--data DIR] [--limit N]` (--limit: the first N threads only,
for a quick run). Exits 1 on any miss, 2 without data.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_DATA = ROOT.parent / "shared" / "peer-data" / "slack"
_MENTION = re.compile(r"<@([A-Z0-9]+)(?:\|[^>]*)?>")


def event_checks(events: list[dict[str, Any]]) -> tuple[int, list[str], int]:
    """(messages checked, misses, payloads that are not messages) over the recorded events."""
    from bot.slack.reader import PLACEHOLDER, mention_note, read_message

    checked, found, other = 0, [], 0
    for index, entry in enumerate(events):
        body = entry["body"]
        name = f"event {index} ({entry['kind']}, {entry['source'].split(':')[0]})"
        if entry["kind"] == "app_mention":
            event = body["event"]
            mentioned = _MENTION.search(event.get("text") or "")
            note = mention_note(event, bot_user_id=mentioned.group(1) if mentioned else None) or ""
            checked += 1
            want = entry.get("expect_note_contains")
            if want and want not in note:
                found.append(f"{name}: note {note!r} lacks {want!r}")
            elif PLACEHOLDER in note or "<@" + (mentioned.group(1) if mentioned else "?") in note or not note:
                found.append(f"{name}: note {note!r}")
        elif entry["kind"] == "message_action":
            message = read_message(body["message"], user_name=lambda uid: uid)
            checked += 1
            if "<@" in message.text or not message.text.strip():
                found.append(f"{name}: shortcut message read as {message.text!r}")
        else:
            other += 1
    return checked, found, other


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit", type=int, default=None, help="only the first N threads")
    args = parser.parse_args()
    threads_file, events_file = args.data / "threads.json", args.data / "events.json"
    if not threads_file.is_file():
        print(f"no recorded Slack data at {args.data}: nothing to measure")
        return 2
    threads = json.loads(threads_file.read_text())[: args.limit]
    events = json.loads(events_file.read_text()) if events_file.is_file() else []
    users_file = args.data / "users.json"
    users = json.loads(users_file.read_text()).get("users", []) if users_file.is_file() else []

    with tempfile.TemporaryDirectory() as tmp:
        gitconfig = Path(tmp) / "gitconfig"
        gitconfig.write_text("[user]\n\tname = Fidelity\n\temail = fidelity@example.com\n[init]\n\tdefaultBranch = main\n")
        os.environ.update(GIT_CONFIG_GLOBAL=str(gitconfig), GIT_CONFIG_NOSYSTEM="1")
        from tests.fakes.slack import FakeSlack
        from tests.helpers.recorded import CaptureHarness

        started = time.monotonic()
        total, wrong, misses = 0, 0, []
        with FakeSlack() as slack:
            for user in users:  # the recorded workspace's people, so mentions read as their names
                profile = user.get("profile") or {}
                slack.add_user(user["id"], user.get("name") or user["id"], display_name=profile.get("display_name") or None,
                               real_name=user.get("real_name") or None, is_bot=bool(user.get("is_bot")))
            harness = CaptureHarness(slack, Path(tmp))
            for thread in threads:
                _, missed = harness.run(thread)
                total += len(thread["expect"])
                # A miss names its message's ts; a wrong role order ("roles …") counts as one message.
                wrong += min(len(thread["expect"]), len({line.split(":", 1)[0] for line in missed}))
                misses += [f"{thread['id']}: {line}" for line in missed]
        checked, event_misses, other = event_checks(events)
        right = total - wrong + checked - len(event_misses)
        print(f"{right}/{total + checked} real messages captured right "
              f"({len(threads)} threads, {len(events)} events of which {other} are not messages; "
              f"{time.monotonic() - started:.1f} s)")
        for line in misses + event_misses:
            print(f"  miss: {line}")
    return 0 if not misses and not event_misses else 1


if __name__ == "__main__":
    sys.exit(main())

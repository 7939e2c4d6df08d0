"""App Home as Block Kit (bot/slack/blocks/home.py), tested as dicts: limits, states, paging values."""

from __future__ import annotations

from datetime import datetime, timezone

from bot.corpus.similarity import NearDuplicate
from bot.digest.home import FLAGS_PAGE, QUEUE_PAGE, Home, LastRun, MyFlag, Page, QueueEntry
from bot.slack.blocks.home import MAX_BLOCKS, flag_line, home_view, last_run_block, page_value, parse_page_value

WHEN = datetime(2026, 11, 20, 10, 0, tzinfo=timezone.utc)
LINK = "https://t.slack.com/archives/C1/p1763700000000100"


def full_home(maintainer: bool = True) -> Home:
    dupe = NearDuplicate("dupe0001", "Same <thing>", "candidate", LINK, 0.93)
    flags = tuple(MyFlag(f"f{n:07d}", "A very long title " * 20, "promoted", WHEN, LINK, "fail", 3) for n in range(FLAGS_PAGE))
    queue = tuple(QueueEntry(f"q{n:07d}", "Q" * 300, WHEN, tuple(f"U{n}{k}" for k in range(9)), LINK, "note " * 100, (dupe,))
                  for n in range(QUEUE_PAGE))
    return Home("U1", maintainer, flags, Page(2, 9, 90), LastRun(7, WHEN, 5, 6, 5 / 6, 1.0, "1.2"), queue, Page(1, 5, 40))


def test_a_full_home_stays_within_100_blocks_and_pages_both_lists():
    view = home_view(full_home(), digest_link=LINK)
    assert view["type"] == "home" and len(view["blocks"]) <= MAX_BLOCKS
    pagers = {b["block_id"]: [e["value"] for e in b["elements"]] for b in view["blocks"] if b.get("block_id", "").startswith("home_pages")}
    assert pagers == {"home_pages_flags": ["flags:1:queue:1", "flags:3:queue:1"], "home_pages_queue": ["flags:2:queue:2"]}
    assert all(len(b["text"]["text"]) <= 3000 for b in view["blocks"] if b["type"] == "section")


def test_a_non_maintainer_gets_no_queue_and_no_buttons():
    view = home_view(full_home(maintainer=False))
    assert "Triage queue" not in str(view) and not any(
        e.get("action_id") in ("evalbot_promote", "evalbot_reject") for b in view["blocks"] for e in b.get("elements", []))


def test_states_and_results_read_plainly():
    rejected = MyFlag("abcd1234", "Refunds", "rejected", WHEN, None, None, None, reason="duplicate of k3m9")
    assert flag_line(rejected) == "`abcd1234` *Refunds* — :no_entry_sign: rejected: _duplicate of k3m9_"
    waiting = MyFlag("abcd1234", "Refunds", "promoted", WHEN, LINK, None, None)
    assert flag_line(waiting).endswith(":white_check_mark: a test now · not run yet")
    text = last_run_block(LastRun(7, WHEN, 5, 6, 5 / 6, 1.0, None), LINK)["text"]["text"]
    assert text.startswith(":bar_chart: *Last run #7:* 83% passed (5 of 6 cases)") and "−17 pts" in text
    assert f"<{LINK}|digest and trend chart>" in text


def test_page_values_round_trip():
    assert parse_page_value(page_value(flags=3, queue=2)) == (3, 2)
    assert parse_page_value("nonsense") == (1, 1)

"""Property tests: random and hostile text through every Block Kit builder never makes a payload Slack refuses.

Seeded random cases, digests, rejections and notes (markup-dense, emoji, CJK, right-to-left, 40,000-character
replies) go through the capture card, the triage messages, the three modals and the digest messages; each
payload is checked against Slack's limits (tests/helpers/blockkit.py) and parsed by slack_sdk's models.
"""

from __future__ import annotations

import random
import re
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from bot.capture.candidate import CaptureResult
from bot.corpus.ids import slack_case_id
from bot.corpus.schema import Case
from bot.corpus.similarity import NearDuplicate
from bot.digest.data import Digest, Item
from bot.slack.blocks import capture as cb
from bot.slack.blocks import digest as db
from bot.slack.blocks import kit, modals
from bot.slack.blocks import triage as tb
from bot.store.tables import CaseIndex, Rejection
from bot.triage.decisions import PromoteResult, RejectResult
from tests.helpers.blockkit import assert_message_ok, assert_view_ok, hostile_text, slack_len

NOW = datetime(2026, 11, 21, 12, tzinfo=timezone.utc)
SEEDS = range(4)
ROUNDS = 12


def random_case(rng: random.Random, *, status: str | None = None) -> Case:
    status = status or rng.choice(["candidate", "promoted"])
    turns = [{"role": rng.choice(["user", "assistant"]), "content": hostile_text(rng, longest=rng.choice([300, 40_000]))}
             for _ in range(rng.choice([1, 5, 60]))]
    turns.append({"role": "assistant", "content": hostile_text(rng)})
    kinds = [{"rubric": hostile_text(rng, nonempty=True)}, {"contains": hostile_text(rng, longest=300, nonempty=True)},
             {"not_contains": hostile_text(rng, longest=300, nonempty=True)},
             {"regex": re.escape(hostile_text(rng, longest=40, nonempty=True))}, {"equals": hostile_text(rng, longest=300)},
             {"max_chars": rng.randint(1, 10**6)}]
    expect = [rng.choice(kinds) for _ in range(rng.randint(1, 30))]
    title = hostile_text(rng, longest=300, nonempty=True)[:300]
    data = {
        "id": slack_case_id("C0TEST01", f"17637{rng.randint(10**4, 10**5 - 1)}.000100"), "title": title, "status": status,
        "tags": [f"tag{i}" for i in range(rng.randint(0, 20))],
        "source": {"kind": "slack", "channel": "C0TEST01", "ts": "1763700000.000100",
                   "flagged_by": [f"U{i:08d}" for i in range(rng.randint(1, 30))], "flagged_at": NOW - timedelta(days=3),
                   "note": rng.choice([None, hostile_text(rng, longest=6000)]),
                   "permalink": rng.choice([None, "https://acme.slack.com/archives/C1/p1763700000000100"])},
        "conversation": turns,
    }
    if status == "promoted":
        data.update(expect=expect, promoted_by="U0LEAD", promoted_at=NOW)
    else:
        data.update(suggested_expect=expect)
    return Case.model_validate(data)


def dupes(rng: random.Random) -> list[NearDuplicate]:
    return [NearDuplicate(case_id=f"dup{i:05d}", title=hostile_text(rng, longest=1000, nonempty=True), status="promoted",
                          permalink=rng.choice([None, "https://acme.slack.com/archives/C1/p1"]), score=rng.random())
            for i in range(rng.randint(0, 5))]


def random_digest(rng: random.Random) -> Digest:
    def items(n: int) -> tuple[Item, ...]:
        return tuple(Item(f"case{i:04d}", hostile_text(rng, longest=1000), rng.choice([None, hostile_text(rng, longest=6000)]),
                          rng.choice([None, "https://acme.slack.com/archives/C1/p1", hostile_text(rng, longest=40)]),
                          rng.choice(["pass", "fail", "error"])) for i in range(n))

    return Digest(run_id=rng.randint(1, 10**9), when=NOW, trigger=rng.choice(["cli", "slack", "nightly", hostile_text(rng, longest=300)]),
                  status="finished", corpus_commit=rng.choice([None, "abcdef1234567"]), target=hostile_text(rng, longest=1000),
                  failure=None, cases_total=100, passed=50, failed=40, errored=10, pass_rate=0.5,
                  pass_rate_change=rng.choice([None, -0.3, 0.0, 0.2]), baseline_run_id=rng.choice([None, 3]),
                  regressions=items(rng.choice([0, 1, 9, 60])), fixes=items(rng.choice([0, 3, 60])), new=items(rng.choice([0, 2])),
                  errors=items(rng.choice([0, 5])), flaky=items(rng.choice([0, 4])), still_failing=rng.randint(0, 9),
                  removed=rng.randint(0, 3), input_tokens=10**6, output_tokens=10**5, cost_usd=1.5,
                  cost_note=rng.choice([None, hostile_text(rng, longest=1000)]), cost_saved_usd=0.0,
                  latency_p50_ms=120.0, latency_p95_ms=3400.0)


@pytest.mark.parametrize("seed", SEEDS)
def test_the_capture_card_and_note_modal_keep_slacks_limits(seed):
    rng = random.Random(seed)
    for _ in range(ROUNDS):
        case = random_case(rng, status="candidate")
        warnings = [hostile_text(rng, longest=6000) or "w" for _ in range(rng.randint(0, 14))]
        result = CaptureResult(case=case, created=True, new_flagger=True, thread_ts="1.2", warnings=warnings,
                               near_duplicates=dupes(rng))
        assert_message_ok(cb.capture_reply(result), cb.capture_text(case))
        outcome = rng.choice([None, hostile_text(rng, nonempty=True)])
        assert_message_ok(cb.case_card(case, warnings=warnings, outcome=outcome), cb.capture_text(case))
    assert_view_ok(cb.flag_note_modal(channel="C0TEST01", message_ts="1763700000.000100"))


@pytest.mark.parametrize("seed", SEEDS)
def test_the_triage_modals_keep_slacks_limits_for_markup_dense_replies(seed):
    rng = random.Random(seed)
    for _ in range(ROUNDS):
        case = random_case(rng)
        origin = modals.Origin(case_id=case.id, channel="C0TEST01", thread_ts="1763700000.000100",
                               response_url="https://hooks.slack.com/app/T1/1/" + "x" * rng.randint(0, 200))
        assert_view_ok(modals.promote_modal(case, origin))
        assert_view_ok(modals.edit_modal(case, origin))
        assert_view_ok(modals.reject_modal(case, origin, reason=rng.choice([None, hostile_text(rng, longest=3000)]) or None))


def test_a_reply_of_html_and_short_lines_fits_the_modal():
    """The issue's case: a reply that escaping and line prefixes grow past 3,000 (it was 3,100-6,000)."""
    case = random_case(random.Random(0), status="candidate")
    for reply in ("<div><b>&amp;</b></div>\n" * 800, "a\n" * 3000, "&" * 40_000):
        turned = case.model_copy(update={"conversation": [*case.conversation[:-1], case.conversation[-1].model_copy(update={"content": reply})]})
        view = modals.promote_modal(turned, modals.Origin(case_id=case.id))
        assert_view_ok(view)
        quoted = next(b["text"]["text"] for b in view["blocks"] if "The flagged reply" in b.get("text", {}).get("text", ""))
        assert slack_len(quoted) <= modals.REPLY_CHARS and quoted.endswith("…")


@pytest.mark.parametrize("seed", SEEDS)
def test_triage_messages_keep_slacks_limits(seed):
    rng = random.Random(seed)
    for _ in range(ROUNDS):
        case = random_case(rng)
        assert_message_ok(tb.case_detail_blocks(case, now=NOW))
        assert_message_ok(tb.conversation_blocks(case, turns=rng.randint(1, 60)))
        entries = [tb.HelpEntry(hostile_text(rng, longest=40, nonempty=True), hostile_text(rng, longest=300)) for _ in range(30)]
        assert_message_ok(tb.help_blocks("/eval", entries, channel="C1", maintainers="<@U1>", note=hostile_text(rng, nonempty=True)))
        rows = [CaseIndex(id=f"case{i:04d}", status="candidate", title=hostile_text(rng, longest=1000, nonempty=True),
                          tags=[f"t{j}" for j in range(rng.randint(0, 30))], source_kind="slack", flag_count=2,
                          flagged_at=NOW, turns=2, expectations=0) for i in range(rng.choice([1, 10, 80]))]
        assert_message_ok(tb.listing_blocks(rows, total=len(rows) * 3, which="all", page=2, now=NOW))
        rejection = Rejection(case_id=case.id, title=case.title, rejected_by="U0LEAD", reason=hostile_text(rng, nonempty=True),
                              rejected_at=NOW)
        outcomes = [tb.rejected_outcome(rejection), tb.promoted_outcome(case) or "x",
                    tb.promoted_message(PromoteResult(case=case, warnings=[hostile_text(rng) for _ in range(3)], near_duplicates=dupes(rng))),
                    tb.rejected_message(RejectResult(case=case, rejection=rejection)),
                    tb.edited_message(case, changed=True, warnings=[hostile_text(rng)], dupes=dupes(rng))]
        for text in outcomes:
            assert_message_ok([kit.section(text)], text)
            assert_message_ok(cb.case_card(case, outcome=text))


@pytest.mark.parametrize("seed", SEEDS)
def test_digest_messages_keep_slacks_limits(seed):
    rng = random.Random(seed)
    for _ in range(ROUNDS):
        digest = random_digest(rng)
        main = db.digest_message(digest)
        assert_message_ok(main.blocks, main.text)
        for message in db.thread_messages(digest):
            assert_message_ok(message.blocks, message.text)
        failed = db.digest_failure_message(replace(digest, failure=hostile_text(rng, nonempty=True)))
        assert_message_ok(failed.blocks, failed.text)


def test_a_failure_reason_is_cut_after_escaping():
    """The issue's case: 1,500 `&` cut then escaped made a 7,500-character section."""
    message = db.failure_message("&" * 40_000 + "<>" * 100)
    assert_message_ok(message.blocks, message.text)
    assert message.blocks[0]["text"]["text"].endswith("&amp;…")


def test_cutting_a_message_to_50_blocks_keeps_its_buttons():
    blocks = [kit.section(f"line {i}") for i in range(70)] + [kit.actions("b", [kit.button("Go", "go", "1")])]
    cut = kit.message_blocks(blocks)
    assert len(cut) == 50 and cut[-1]["type"] == "actions" and cut[-2]["text"]["text"] == "line 48"


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("abcdef", 6, "abcdef"),
        ("abcdef", 4, "abc…"),
        ("😀😀😀", 4, "😀…"),  # an astral emoji is 2 UTF-16 units and is never split
        ("a &amp; b", 6, "a…"),  # never half an entity
        ("  spaced   out  ", 20, "spaced out"),
    ],
)
def test_clip_counts_utf16_units_and_never_splits_a_character_or_an_entity(text, limit, expected):
    assert kit.clip(text, limit, one_line=text.startswith(" ")) == expected
    assert slack_len(kit.clip(text, limit)) <= limit

"""The digest as data (bot/digest/data.py) and as Block Kit (bot/slack/blocks/digest.py): content, order, cuts, limits."""

from __future__ import annotations

import json
import random
import string
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from bot.core.clock import utcnow
from bot.digest.data import Digest, Item, TrendPoint, build_digest, load_digest, pending_digest_runs
from bot.evals.compare import CaseStatus, Comparison, RunSummary
from bot.runtime import open_runtime
from bot.slack.blocks import digest as db
from bot.store.claims import claim
from bot.store.tables import EvalRun, session_scope
from tests.helpers.evalruns import record_run

pytestmark = [pytest.mark.dates, pytest.mark.migrated_db]  # also checked a year ahead; the database starts migrated

T0 = datetime(2026, 11, 21, 2, 0, tzinfo=timezone.utc)
LINK = "https://fake-team.slack.com/archives/C0EVALS01/p1763700000000100"


def summary(run_id: int = 2, *, status: str = "finished", total: int = 4, passed: int = 2, failed: int = 1,
            errored: int = 1, error: str | None = None, cost: float = 0.42) -> RunSummary:
    return RunSummary(
        id=run_id, status=status, trigger="nightly", mode="sync", started_at=T0 + timedelta(days=run_id),
        finished_at=T0 + timedelta(days=run_id, minutes=3), corpus_commit="0123456789abcdef", config_fingerprint="f",
        target="anthropic:claude-haiku-4-5", judge_model="claude-sonnet-4-6", trials=1, cases_total=total,
        passed=passed, failed=failed, errored=errored, flaky=0, input_tokens=12345, output_tokens=678, cost_usd=cost,
        cost_note=None, latency_p50_ms=850.0, latency_p95_ms=2400.0, error=error,
    )


def case(case_id: str, status: str, before: str | None, *, failure: str | None = None, flaky: bool = False,
         title: str | None = None, permalink: str | None = LINK) -> CaseStatus:
    return CaseStatus(case_id, title or f"Case {case_id}", status, 1.0 if status == "pass" else 0.5 if flaky else 0.0,
                      flaky, 2 if flaky else 1, failure, permalink, before, None)


def comparison(cases: list[CaseStatus], *, run: RunSummary | None = None, baseline: RunSummary | None = None) -> Comparison:
    run = run or summary()
    was = {c.case_id: c.baseline_status for c in cases}
    return Comparison(
        run=run, baseline=baseline, cases=cases,
        regressions=[c for c in cases if was[c.case_id] == "pass" and c.status == "fail"],
        fixes=[c for c in cases if was[c.case_id] == "fail" and c.status == "pass"],
        new=[c for c in cases if was[c.case_id] is None], removed=[],
        still_failing=[c for c in cases if c.status == "fail" and was[c.case_id] in ("fail", "error")],
        errors=[c for c in cases if c.status == "error"], flaky=[c for c in cases if c.flaky],
    )


MIXED = [
    case("aaaa1111", "fail", "pass", failure="not_contains: expected no '90 days'; found it at char 9\nrubric: invents a window"),
    case("bbbb2222", "pass", "fail"),
    case("cccc3333", "pass", None),
    case("dddd4444", "error", "pass", failure="no reply from the target: APIConnectionError: Connection error."),
    case("eeee5555", "fail", "pass", flaky=True, failure="trial 2: equals: expected exactly 'YES'; got 'yes'"),
]


# ---------------------------------------------------------------- data


def test_the_digest_lists_regressions_fixes_new_errors_and_flaky_with_details_and_links():
    baseline = summary(1, passed=3, failed=1, errored=0, cost=0.40)
    digest = build_digest(comparison(MIXED, baseline=baseline), history=[baseline])
    assert [i.case_id for i in digest.regressions] == ["aaaa1111", "eeee5555"]
    assert digest.regressions[0].detail == "not_contains: expected no '90 days'; found it at char 9 (+1 more)"
    assert digest.regressions[0].permalink == LINK
    assert [i.case_id for i in digest.fixes] == ["bbbb2222"]
    assert [(i.case_id, i.detail) for i in digest.new] == [("cccc3333", "passes")]
    assert digest.errors[0].detail == "no reply from the target: APIConnectionError: Connection error."
    assert [(i.case_id, i.detail) for i in digest.flaky] == [("eeee5555", "passed 50% of 2 trials")]
    assert digest.pass_rate == 0.5 and digest.pass_rate_change == pytest.approx(-0.25) and digest.baseline_run_id == 1
    assert digest.failure is None
    assert [(p.run_id, p.cost_usd) for p in digest.trend] == [(1, 0.40), (2, 0.42)]


def test_every_case_erroring_is_one_failure_with_the_most_common_reason():
    down = "no reply from the target: APIConnectionError: Connection error."
    cases = [case(f"c{i:07d}", "error", "pass", failure=f"trial 1: {down}") for i in range(5)]
    cases.append(case("c9999999", "error", "pass", failure="judge: timed out"))
    run = summary(total=6, passed=0, failed=0, errored=6)
    digest = build_digest(comparison(cases, run=run, baseline=summary(1)))
    assert digest.failure == f"all 6 cases errored: {down}"


def test_a_failed_run_is_a_failure_with_its_error():
    run = summary(status="failed", total=6, passed=0, failed=0, errored=0, error="ConfigError: ANTHROPIC_API_KEY is not set")
    assert build_digest(comparison([], run=run)).failure == "ConfigError: ANTHROPIC_API_KEY is not set"


def test_the_trend_keeps_the_last_30_finished_runs_oldest_first():
    history = [summary(i) for i in range(1, 40)] + [summary(40, status="failed")]
    digest = build_digest(comparison(MIXED, run=summary(41)), history=history)
    assert [p.run_id for p in digest.trend] == [*range(11, 40), 41]


def test_load_digest_and_pending_digests_from_the_database(db_url, corpus_dir):
    rt = open_runtime()
    first = record_run(rt, trigger="nightly")
    second = record_run(rt, trigger="cli", **{"2tj51dm1": "Probably yes."})
    with session_scope(rt.engine) as session:
        digest = load_digest(session, second.run_id)
        assert [i.case_id for i in digest.regressions] == ["2tj51dm1"]
        assert "equals: expected exactly 'YES'" in digest.regressions[0].detail
        assert [p.run_id for p in digest.trend] == [first.run_id, second.run_id]
        # owed: the nightly run; not the CLI one, unless a post was attempted (a digest claim)
        assert pending_digest_runs(session) == [first.run_id]
        claim(session, job="digest", slot=str(second.run_id), holder="test")
        assert pending_digest_runs(session) == [first.run_id, second.run_id]
        session.get(EvalRun, first.run_id).digest_ts = "1763700000.000200"
        assert pending_digest_runs(session) == [second.run_id]
        assert pending_digest_runs(session, now=utcnow() + timedelta(days=8)) == []


# ---------------------------------------------------------------- blocks


def texts(blocks: list[dict]) -> list[str]:
    """Every text of every block (section text, context elements, header)."""
    found = []
    for block in blocks:
        if "text" in block:
            found.append(block["text"]["text"])
        found.extend(e["text"]["text"] if isinstance(e["text"], dict) else e["text"]  # a button's text is an object
                     for e in block.get("elements", []) if "text" in e)
    return found


def test_the_channel_message_shows_the_rate_change_regressions_first_and_usage():
    digest = build_digest(comparison(MIXED, baseline=summary(1, passed=3, failed=1, errored=0)))
    message = db.digest_message(digest)
    assert message.text == "Eval run #2: 50% passed (2/4), 2 regressions"
    assert message.blocks[0] == {"type": "header", "text": {"type": "plain_text", "text": "Eval run #2: 50% passed", "emoji": True}}
    body = "\n".join(texts(message.blocks))
    assert "−25 pts since run #1" in body
    assert "corpus `0123456789`" in body and "<!date^1795399200^" in body
    order = [body.index(db.HEADINGS[name]) for name in ("regressions", "fixes", "new", "errors", "flaky")]
    assert order == sorted(order)
    assert f"• `aaaa1111` <{LINK}|Case aaaa1111> — not_contains: expected no '90 days'" in body
    assert "12,345 input + 678 output tokens" in body and "~$0.42 estimated" in body
    assert "latency p50 850 ms · p95 2.4 s" in body
    assert db.thread_messages(digest) == []


def test_a_failure_is_one_run_failed_message():
    run = summary(status="failed", total=6, passed=0, failed=0, errored=0, error="RuntimeError: target down")
    message = db.digest_failure_message(build_digest(comparison([], run=run)))
    assert message.text == "Eval run #2: run failed: RuntimeError: target down"
    assert len(message.blocks) == 2 and "run failed:" in message.blocks[0]["text"]["text"]


def test_titles_and_details_are_escaped_and_links_cannot_be_broken():
    item = Item("abcd1234", "a <b> & c | d", "got <script>", "https://x.slack.com/a|b", "fail")
    assert db.item_line(item) == "• `abcd1234` a &lt;b&gt; &amp; c | d — got &lt;script&gt;"
    linked = db.item_line(replace(item, permalink=LINK))
    assert linked.startswith(f"• `abcd1234` <{LINK}|a &lt;b&gt; &amp; c ¦ d>")


def test_long_lists_are_cut_with_and_n_more_and_follow_in_full_in_the_thread():
    cases = [case(f"r{i:07d}", "fail", "pass", failure="rubric: " + "x" * 300) for i in range(120)]
    digest = build_digest(comparison(cases, run=summary(total=120, passed=0, failed=120, errored=0), baseline=summary(1)))
    main = "\n".join(texts(db.digest_message(digest).blocks))
    shown = sum(f"`r{i:07d}`" in main for i in range(120))
    assert 0 < shown <= db.MAIN_ITEMS and f"…and {120 - shown} more (full list in the thread)" in main
    thread = db.thread_messages(digest)
    everything = "\n".join(t for m in thread for t in texts(m.blocks))
    assert all(f"`r{i:07d}`" in everything for i in range(120))
    assert "all 120" in everything


ALPHABET = string.ascii_letters + string.digits + " <>&|`*_~:\n\t" + "éß漢字😀\u200b"


def random_text(rng: random.Random, longest: int) -> str:
    length = rng.randint(0, longest)
    chunk = "".join(rng.choices(ALPHABET, k=min(length, 97)))  # long texts repeat a random chunk: cheap to make
    return (chunk * (length // 97 + 1))[:length]


def random_digest(rng: random.Random) -> Digest:
    def items(n: int) -> tuple[Item, ...]:
        return tuple(Item(random_text(rng, 12) or "x", random_text(rng, rng.choice([20, 400])),
                          rng.choice([None, random_text(rng, rng.choice([30, 3000]))]),
                          rng.choice([None, LINK, LINK + random_text(rng, 20), "javascript:alert(1)"]),
                          rng.choice(["pass", "fail", "error"])) for _ in range(n))

    sizes = [rng.choice([0, 1, 3, 9, 40, 400]) for _ in range(5)]
    base = build_digest(comparison(MIXED, baseline=summary(1)))
    return replace(base, regressions=items(sizes[0]), fixes=items(sizes[1]), new=items(sizes[2]), errors=items(sizes[3]),
                   flaky=items(sizes[4]), target=random_text(rng, 300), cost_note=rng.choice([None, random_text(rng, 500)]),
                   pass_rate_change=rng.choice([None, -1.0, 0.0, 0.004, 1.0]), run_id=rng.randint(1, 10**9),
                   trend=tuple(TrendPoint(i, T0, 0.5, 0.1) for i in range(rng.randint(0, 30))))


def assert_within_limits(message: db.Message) -> None:
    assert len(message.blocks) <= db.MAX_BLOCKS
    assert message.text and db.slack_len(message.text) <= 4000
    for block in message.blocks:
        if block["type"] == "header":
            assert db.slack_len(block["text"]["text"]) <= db.MAX_HEADER
        if block["type"] == "section":
            assert 0 < db.slack_len(block["text"]["text"]) <= db.MAX_SECTION
        if block["type"] == "context":
            assert 0 < len(block["elements"]) <= db.MAX_CONTEXT_ELEMENTS
            assert all(db.slack_len(e["text"]) <= db.MAX_SECTION for e in block["elements"])
    json.dumps(message.blocks)


@pytest.mark.parametrize("seed", range(3))
def test_every_digest_stays_within_slacks_limits(seed):
    """Property: for many random digests (huge lists, long and hostile text), every message keeps Slack's limits
    and every case of a cut list is listed in the thread."""
    rng = random.Random(seed)
    for _ in range(40):
        digest = random_digest(rng)
        main = db.digest_message(digest)
        assert_within_limits(main)
        thread = db.thread_messages(digest)
        assert len(thread) <= db.MAX_THREAD_MESSAGES
        for message in thread:
            assert_within_limits(message)
        if len(thread) < db.MAX_THREAD_MESSAGES:
            listed = {line for m in [main, *thread] for t in texts(m.blocks) for line in t.split("\n")}
            for _, items in digest.lists():
                for item in items:
                    assert db.item_line(item) in listed
        assert_within_limits(db.digest_failure_message(replace(digest, failure=random_text(rng, 5000) or "x")))


def test_a_batch_run_shows_the_cost_saved():
    run = replace(summary(), mode="batch", cost_saved_usd=0.42)
    body = "\n".join(texts(db.digest_message(build_digest(comparison(MIXED, run=run))).blocks))
    assert "~$0.42 estimated, $0.42 saved by batching" in body

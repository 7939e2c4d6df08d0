"""People in the digest (bot/digest/people.py and its Block Kit): flaggers of regressions and fixes, the weekly line."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from bot.core import clock
from bot.corpus.files import Corpus
from bot.corpus.schema import Case
from bot.digest.data import Digest, Item, load_digest
from bot.digest.people import first_of_week, weekly_growth, with_people
from bot.runtime import open_runtime
from bot.slack.blocks import digest as db
from bot.store.tables import session_scope
from tests.helpers.evalruns import record_run

pytestmark = pytest.mark.migrated_db  # the database starts migrated: each test's first use of it migrates in-process

UNTIL = datetime(2026, 11, 21, 2, 0, tzinfo=timezone.utc)  # a Saturday


def promoted(case_id: str, *, at: datetime, by: list[str], tags: list[str]) -> Case:
    return Case.model_validate({
        "id": case_id, "title": f"Case {case_id}", "status": "promoted", "tags": tags,
        "source": {"kind": "slack", "channel": "C1", "ts": "1.000100", "flagged_by": by, "flagged_at": at - timedelta(hours=1)},
        "conversation": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
        "expect": [{"contains": "x"}], "promoted_by": "ULEAD", "promoted_at": at,
    })


CASES = [
    promoted("old00001", at=UNTIL - timedelta(days=20), by=["UOLD"], tags=["refunds"]),
    promoted("new00001", at=UNTIL - timedelta(days=2), by=["UOLD", "UNEW"], tags=["refunds", "format"]),
    promoted("new00002", at=UNTIL - timedelta(days=1), by=["UNEW"], tags=["security"]),
    promoted("late0001", at=UNTIL + timedelta(hours=1), by=["ULATE"], tags=["late"]),
]


def test_weekly_growth_counts_the_weeks_cases_their_flaggers_new_tags_and_first_timers():
    growth = weekly_growth(CASES, until=UNTIL)
    assert (growth.added, growth.total, growth.tags_total) == (2, 3, 3)
    assert growth.new_tags == ("format", "security")
    assert growth.contributors == (("UNEW", 2), ("UOLD", 1)) and growth.first_timers == ("UNEW",)


def test_the_weekly_line_shows_on_the_first_run_of_an_iso_week():
    monday = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)
    assert first_of_week(monday, UNTIL) and not first_of_week(monday + timedelta(days=1), monday)
    assert first_of_week(UNTIL, None)


def test_with_people_names_flaggers_on_regressions_and_fixes_only():
    regression = Item("aaaa1111", "t", None, None, "fail")
    new = Item("cccc3333", "t", None, None, "pass")
    base = Digest(
        run_id=2, when=UNTIL, trigger="nightly", status="finished", corpus_commit=None, target=None, failure=None,
        cases_total=2, passed=1, failed=1, errored=0, pass_rate=0.5, pass_rate_change=None, baseline_run_id=1,
        regressions=(regression,), fixes=(), new=(new,), errors=(), flaky=(), still_failing=0, removed=0,
        input_tokens=0, output_tokens=0, cost_usd=0.0, cost_note=None, cost_saved_usd=0.0, latency_p50_ms=None,
        latency_p95_ms=None)
    growth = weekly_growth(CASES, until=UNTIL)
    named = with_people(base, {"aaaa1111": ["U0A"], "cccc3333": ["U0C"]}, growth)
    assert named.regressions[0].flaggers == ("U0A",) and named.new[0].flaggers == () and named.growth == growth


def test_rendered_lines_name_flaggers_and_the_week():
    item = Item("aaaa1111", "Refund window", "rubric: invents a window", "https://x.slack.com/archives/C1/p1", "fail",
                flaggers=("U0A", "U0B"))
    assert db.item_line(item).endswith(" — flagged by <@U0A>, <@U0B>")
    assert db.item_line(Item("b", "t", None, None, "pass")) == "• `b` t"
    text = db.growth_text(weekly_growth(CASES, until=UNTIL))
    assert text == (":seedling: *This week:* 2 new cases flagged by <@UNEW> (2), <@UOLD> (1) · corpus: 3 cases, "
                    "3 tags (new: `format`, `security`) · :tada: first-time contributors: <@UNEW>")
    quiet = db.growth_text(weekly_growth(CASES[:1], until=UNTIL))
    assert quiet == ":seedling: *This week:* no new cases · corpus: 1 case, 1 tag"


def test_a_posted_digest_names_the_flaggers_of_a_regression(corpus_dir, db_url):
    rt = open_runtime()
    with clock.frozen_at(datetime(2026, 11, 21, 2, 0, tzinfo=timezone.utc)):
        record_run(rt, trigger="nightly")
    with clock.frozen_at(datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)):  # the next Monday: a new week
        run_id = record_run(rt, trigger="nightly", **{"2tj51dm1": "Probably yes."}).run_id
    with session_scope(rt.engine) as session:
        digest = load_digest(session, run_id, corpus=Corpus(corpus_dir))
    [regression] = digest.regressions
    assert regression.flaggers == ("U03DEV",)
    assert digest.growth is not None and digest.growth.added == 5  # promoted 16–20 Nov, within the week before
    body = json.dumps(db.digest_message(digest).blocks)
    assert "flagged by <@U03DEV>" in body and "*This week:* 5 new cases" in body

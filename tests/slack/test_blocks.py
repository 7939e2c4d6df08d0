"""Triage Block Kit builders and form readers, tested as dicts, including Slack's size limits."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from bot.core.errors import InvalidIdError
from bot.corpus.schema import Case
from bot.corpus.similarity import NearDuplicate
from bot.slack.blocks import capture as blocks
from bot.slack.blocks import modals
from bot.slack.blocks import triage as tb
from bot.store.tables import CaseIndex, Rejection
from bot.triage.decisions import PromoteResult, parse_expectations
from tests.helpers import candidate

pytestmark = pytest.mark.dates  # ages, windows and schedules: also checked a year ahead

NOW = datetime(2026, 11, 21, 12, tzinfo=timezone.utc)
DUPE = NearDuplicate(case_id="tne841s8", title="Refund answer invents a 90-day window", status="promoted",
                     permalink="https://acme.slack.com/archives/C1/p1", score=0.912)


def walk(node: Any):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def assert_within_limits(items: list[dict], *, max_blocks: int) -> None:
    """Slack's documented limits for the parts these builders use."""
    assert len(items) <= max_blocks
    for block in items:
        assert len(block.get("block_id", "")) <= 255
        if block["type"] == "section":
            assert 0 < len(block["text"]["text"]) <= 3000
        if block["type"] == "context":
            assert len(block["elements"]) <= 10 and all(len(e["text"]) <= 3000 for e in block["elements"])
        if block["type"] == "actions":
            assert len(block["elements"]) <= 25
        if block["type"] == "input":
            assert len(block["label"]["text"]) <= 150 and len(block.get("hint", {}).get("text", "")) <= 150
    for node in walk(items):
        if node.get("type") == "button":
            assert len(node["text"]["text"]) <= 75 and len(node["value"]) <= 2000 and len(node["action_id"]) <= 255
        if node.get("type") == "plain_text_input":
            assert node["max_length"] <= 3000 and len(node.get("initial_value", "")) <= node["max_length"]
            assert node.get("initial_value", None) != ""  # Slack refuses an empty initial_value
            assert len(node.get("placeholder", {}).get("text", "")) <= 150


def assert_view_within_limits(view: dict) -> None:
    for key in ("title", "submit", "close"):
        assert len(view[key]["text"]) <= 24
    assert len(view["private_metadata"]) <= 3000 and len(view["callback_id"]) <= 255
    assert_within_limits(view["blocks"], max_blocks=modals.MAX_VIEW_BLOCKS)


def huge_case(status: str = "promoted") -> Case:
    """A case at the edges: a 300-character title, 50 long turns, 120 expectations of every kind."""
    data = candidate().model_dump()
    kinds = [{"rubric": "r" * 5000}, {"rubric": "second rubric"}, {"regex": "x" * 600}, {"regex": r"\d+"},
             {"not_regex": "y"}, {"equals": "YES"}, {"json_schema": {"type": "object"}}, {"max_chars": 10}]
    kinds += [{"contains": f"text number {i} " + "z" * 40} for i in range(100)]
    kinds += [{"not_contains": "multi\nline"}, {"contains": " padded "}]
    data.update(title="T" * 300, tags=[f"tag{i}" for i in range(30)], status=status,
                conversation=[{"role": "user" if i % 2 else "assistant", "content": "w" * 40_000} for i in range(50)])
    data["source"]["note"] = "n" * 5000
    data["source"]["permalink"] = "https://acme.slack.com/archives/C1/p" + "1" * 200
    if status == "promoted":
        data.update(expect=kinds, suggested_expect=[], promoted_by="U0LEAD", promoted_at=NOW)
    else:
        data.update(suggested_expect=kinds)
    return Case.model_validate(data)


def row(case_id: str, *, days: int, status: str = "candidate", tags: list[str] | None = None) -> CaseIndex:
    return CaseIndex(id=case_id, status=status, title=f"Title of {case_id}", tags=tags or [], source_kind="slack",
                     flag_count=2, flagged_at=NOW - timedelta(days=days), turns=2, expectations=0)


# ---------------------------------------------------------------- messages


def test_help_lists_each_entry_where_it_works_and_who_may_triage():
    entries = [tb.HelpEntry("help", "this help"), tb.HelpEntry("show ID", "a case")]
    shown = json.dumps(tb.help_blocks("/eval", entries, channel="C1", maintainers="<@U1>", note="I don't know `x`."))
    assert "`/eval help`  this help\\n`/eval show ID`  a case" in shown
    assert "Works in <#C1> and in a DM with me." in shown and "Promote, reject and edit: <@U1>." in shown
    assert shown.index("I don't know") < shown.index("evalbot triage")
    assert "Anyone may promote" in json.dumps(tb.help_blocks("/eval", entries, channel="C1", maintainers=None))


@pytest.mark.parametrize(("seconds", "shown"), [(0, "now"), (59, "now"), (60, "1m"), (7200, "2h"), (86400 * 3, "3d"), (-5, "now")])
def test_age(seconds, shown):
    assert tb.age(NOW - timedelta(seconds=seconds), now=NOW) == shown


def test_listing_rows_show_title_flags_age_and_tags():
    items = tb.listing_blocks([row("aaaa0001", days=1, tags=["refunds"]), row("aaaa0002", days=2)], total=2,
                              which="candidates", page=1, now=NOW)
    assert items[0]["text"]["text"] == "*Candidates* (2), newest first · page 1 of 1"
    assert items[1]["text"]["text"] == "`aaaa0001` *Title of aaaa0001*\n2 flags · 1d · `refunds`"
    assert [b["type"] for b in items] == ["section", "section", "section"]  # one page: no buttons


def test_listing_pages_have_previous_and_next_buttons():
    items = tb.listing_blocks([row(f"aaaa{i:04d}", days=i) for i in range(10)], total=25, which="all", page=2, now=NOW)
    buttons = items[-1]["elements"]
    assert [(b["text"]["text"], b["value"]) for b in buttons] == [("‹ Previous", "all|1"), ("Next ›", "all|3")]
    assert "page 2 of 3" in items[0]["text"]["text"] and "· candidate" in items[1]["text"]["text"]
    assert_within_limits(items, max_blocks=tb.MAX_MESSAGE_BLOCKS)


def test_listing_empty_and_past_the_end():
    assert tb.listing_blocks([], total=0, which="cases", page=1)[0]["text"]["text"] == "*Cases*: none."
    assert "page 4 is past the end (2 pages)" in tb.listing_blocks([], total=15, which="cases", page=4)[0]["text"]["text"]


@pytest.mark.parametrize(("value", "parsed"), [("cases|3", ("cases", 3)), ("all|0", ("all", 1)), ("x|2", ("candidates", 1)),
                                               ("cases|-1", ("candidates", 1)), ("", ("candidates", 1))])
def test_page_button_values(value, parsed):
    assert tb.parse_page_value(value) == parsed


def test_show_marks_the_flagged_reply_and_lists_expectations_with_an_edit_button():
    case = Case.model_validate({**candidate().model_dump(), "status": "promoted", "promoted_by": "U0LEAD", "promoted_at": NOW,
                                "expect": [{"rubric": "States 30 days."}, {"not_contains": "90 days"}, {"max_chars": 400}]})
    items = tb.case_detail_blocks(case, now=NOW)
    shown = json.dumps(items)
    assert ":triangular_flag_on_post: *Assistant (flagged)*\\n> You have 90 days." in shown
    assert "*Expectations*\\n\\u2022 rubric: States 30 days.\\n\\u2022 must not contain: `90 days`\\n\\u2022 at most: 400 characters" in shown
    assert items[-1]["elements"][0]["action_id"] == blocks.EDIT_ACTION and items[-1]["elements"][0]["value"] == case.id


def test_show_of_a_candidate_offers_promote_and_reject_and_its_suggestions():
    items = tb.case_detail_blocks(candidate(), now=NOW)
    assert "*Suggested expectations* (drafted at capture, not graded)" in json.dumps(items)
    assert [e["action_id"] for e in items[-1]["elements"]] == [blocks.PROMOTE_ACTION, blocks.REJECT_ACTION]


@pytest.mark.parametrize("status", ["promoted", "candidate"])
def test_show_of_a_huge_case_stays_within_slack_limits(status):
    items = tb.case_detail_blocks(huge_case(status), now=NOW)
    assert_within_limits(items, max_blocks=tb.MAX_MESSAGE_BLOCKS)
    assert "(50 turns, last 6 shown)" in json.dumps(items)


def test_capture_card_names_near_duplicates_and_its_buttons_carry_the_closest():
    card = blocks.case_card(candidate(), near_duplicates=[DUPE])
    dupes = next(b for b in card if b.get("block_id", "").startswith("dupes_"))["text"]["text"]
    assert dupes == (":twisted_rightwards_arrows: Looks like: `tne841s8` <https://acme.slack.com/archives/C1/p1|Refund "
                     "answer invents a 90-day window> (91% similar)")
    actions = card[-1]
    assert blocks.duplicate_in_block_id(actions["block_id"]) == "tne841s8"
    assert [e["value"] for e in actions["elements"]] == [candidate().id] * 2  # the value stays the case id


@pytest.mark.parametrize("block_id", [None, "", "triage_abcd1234", "triage_abcd1234_dup_", "triage_x_dup_../etc"])
def test_block_ids_without_a_duplicate(block_id):
    assert blocks.duplicate_in_block_id(block_id) is None


def test_capture_card_with_an_outcome_has_no_buttons_and_no_duplicates():
    rejection = Rejection(case_id="abcd1234", title="t", rejected_by="U0LEAD", reason="dup <of> x", rejected_at=NOW)
    card = blocks.case_card(candidate(), outcome=tb.rejected_outcome(rejection), near_duplicates=[DUPE])
    assert [b["type"] for b in card] == ["section", "context", "section"]
    assert card[-1]["text"]["text"] == (f":no_entry_sign: Rejected by <@U0LEAD> <!date^{int(NOW.timestamp())}^"
                                        "{date_short_pretty} at {time}|2026-11-21 12:00 UTC>: dup &lt;of&gt; x")


def test_promoted_message_carries_warnings_and_near_duplicates():
    case = Case.model_validate({**candidate().model_dump(), "status": "promoted", "expect": [{"contains": "x"}]})
    text = tb.promoted_message(PromoteResult(case=case, warnings=["Would not catch <it>."], near_duplicates=[DUPE]))
    assert text.splitlines() == [f":white_check_mark: Promoted `{case.id}` *Invents a 90-day window* with 1 expectation.",
                                 ":warning: Would not catch &lt;it&gt;.",
                                 ":twisted_rightwards_arrows: Looks like: `tne841s8` <https://acme.slack.com/archives/C1/p1|"
                                 "Refund answer invents a 90-day window> (91% similar)"]


# ---------------------------------------------------------------- modals


def inputs(view: dict) -> dict[str, str | None]:
    return {b["block_id"]: b["element"].get("initial_value") for b in view["blocks"] if b["type"] == "input"}


def test_promote_modal_is_prefilled_with_the_suggestions():
    origin = modals.Origin(case_id="x", channel="C1", response_url="https://hooks.slack.com/x")
    view = modals.promote_modal(candidate(), origin)
    assert view["callback_id"] == modals.PROMOTE_VIEW and json.loads(view["private_metadata"])["channel"] == "C1"
    assert inputs(view) == {"title": "Invents a 90-day window", "tags": None, "rubric": "States the 30-day window.",
                            "contains": None, "not_contains": None, "regex": None}
    assert "*The flagged reply*\n> You have 90 days." in json.dumps(view, ensure_ascii=False).replace("\\n", "\n")


def test_edit_modal_shows_what_the_form_holds_and_keeps_the_rest():
    view = modals.edit_modal(huge_case(), modals.Origin(case_id="x"))
    values = inputs(view)
    assert values["rubric"] == "second rubric" and values["regex"] == r"\d+"  # the first ones do not fit a text area
    assert values["contains"] is None  # 100 lines would not fit in 3000 characters: kept as they are
    kept = json.dumps(view["blocks"])
    assert "Also kept as they are" in kept and "not_regex: y" in kept and "max_chars: 10" in kept
    assert_view_within_limits(view)


@pytest.mark.parametrize("build", [modals.promote_modal, modals.edit_modal, modals.reject_modal])
def test_modals_of_huge_cases_stay_within_slack_limits(build):
    case = huge_case("candidate")
    assert_view_within_limits(build(case, modals.Origin(case_id=case.id, response_url="https://h/" + "x" * 200)))


def test_reject_modal_prefills_a_known_reason():
    view = modals.reject_modal(candidate(), modals.Origin(case_id="x"), reason="duplicate of tne841s8")
    assert inputs(view) == {"reason": "duplicate of tne841s8"}
    assert view["callback_id"] == modals.REJECT_VIEW


def state(**values: str | None) -> dict:
    return {key: {key: {"type": "plain_text_input", "value": value}} for key, value in values.items()}


@pytest.mark.parametrize(
    ("values", "expect", "errors"),
    [
        ({"title": " A  title ", "rubric": " Be right. "}, [{"rubric": "Be right."}], {}),
        ({"title": "t", "contains": "a\n\n b \n", "not_contains": "c", "regex": r"\d"},
         [{"contains": "a"}, {"contains": "b"}, {"not_contains": "c"}, {"regex": r"\d"}], {}),
        ({"title": "t"}, [], {}),  # whether that is enough is the caller's rule (promote: no; edit a candidate: yes)
        ({"title": "t", "regex": "(x"}, [], {"regex": "Not a valid regular expression: missing ), unterminated subpattern at position 0"}),
        ({"title": "  "}, [], {"title": "Give the case a title."}),
        ({"title": "t", "tags": "a, b/c d.e, bad tag!, $x"}, [], {"tags": "Tags take letters, digits and _ . - / only: tag!, $x"}),
    ],
    ids=["rubric", "lines-and-regex", "nothing", "bad-regex", "blank-title", "bad-tags"],
)
def test_reading_the_expectation_form(values, expect, errors):
    form, found = modals.read_expectation_form(state(**values))
    assert found == errors
    if not errors:
        assert form.expect == expect and form.title == " ".join(values["title"].split())


def test_tags_are_split_on_commas_and_spaces_without_repeats():
    form, errors = modals.read_expectation_form(state(title="t", tags="a, b  c,a"))
    assert errors == {} and form.tags == ["a", "b", "c"]


def test_merged_expectations_keep_the_file_order_when_nothing_changed():
    current = parse_expectations([{"not_regex": "x"}, {"contains": "a"}, {"rubric": "r"}])
    fields = modals.split_expectations(current)
    same = modals.merged_expectations([{"rubric": "r"}, {"contains": "a"}], fields.kept, current)
    assert same == [{"not_regex": "x"}, {"contains": "a"}, {"rubric": "r"}]
    changed = modals.merged_expectations([{"rubric": "r2"}], fields.kept, current)
    assert changed == [{"rubric": "r2"}, {"not_regex": "x"}]


def test_reading_the_reason():
    assert modals.read_reason(state(reason="  dup  ")) == ("dup", {})
    assert modals.read_reason(state(reason=None))[1] == {"reason": "Say why it is not a case: the reason is kept with the rejection."}


def test_origin_round_trips_and_refuses_garbage():
    origin = modals.Origin(case_id="abcd1234", channel="D1", thread_ts="1.2", response_url="https://h/x")
    assert modals.Origin.load(origin.dump()) == origin
    assert modals.Origin.load(modals.Origin(case_id="abcd1234").dump()) == modals.Origin(case_id="abcd1234")
    for garbage in ("", "not json", "[1]", '{"case_id": "x", "evil": 1}x'):
        with pytest.raises(InvalidIdError, match="open it again"):
            modals.Origin.load(garbage)


def test_the_card_keeps_the_redaction_count_after_triage():
    case = candidate()
    turns = [case.conversation[0].model_copy(update={"content": "my key is [REDACTED:anthropic_key] and [REDACTED:email]"}),
             *case.conversation[1:]]
    redacted = case.model_copy(update={"conversation": turns})
    for card in (blocks.case_card(redacted), blocks.case_card(redacted, outcome="Promoted by <@U1>")):
        assert "2 secrets redacted" in json.dumps(card)

"""Triage end to end: /eval, the buttons on the capture reply and the modals, through the real Bolt app over
Socket Mode against the fake Slack, with the example corpus in git and a real database."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlmodel import select

from bot.core import clock
from bot.corpus import index as caseindex
from bot.corpus.casefile import dump_case
from bot.corpus.gitrepo import SYSTEM
from bot.corpus.ids import slack_case_id
from bot.corpus.schema import Case
from bot.slack.flows.permissions import Maintainers
from bot.store.tables import CaseIndex, Rejection, session_scope
from tests.fakes.slack import FakeSlack
from tests.helpers import candidate
from tests.helpers.slackbot import ASSISTANT_BOT, CHANNEL, FLAGGER, LEAD, OTHER_CHANNEL, SECOND, configure, running_bot, seed

pytestmark = pytest.mark.migrated_db  # the database starts migrated: each test's first use of it migrates in-process

DM = "D0LEADDM1"
GROUP = "S0TRIAGE1"
ACK_BUDGET = 0.5  # seconds; Slack allows 3
STOVES = "qa31qo8q"  # the example corpus's candidate
TENT = "tne841s8"  # a promoted example case: rubric, not_contains, regex
CANCEL = "ewjirjst"  # a promoted example case: not_regex (not shown in the form), contains, rubric


@pytest.fixture
def slack():
    with FakeSlack() as fake:
        seed(fake)
        yield fake


def _start(slack, monkeypatch, **env):
    configure(monkeypatch, slack, **{"EVALBOT_MAINTAINERS": LEAD, **env})
    return running_bot(slack)


@pytest.fixture
def bot(slack, corpus_dir, monkeypatch):
    with _start(slack, monkeypatch) as running:
        yield running


@pytest.fixture
def bot_on_both(slack, corpus_dir, db_url, monkeypatch):
    """The bot on SQLite and on PostgreSQL, for tests whose effects land in the database."""
    with _start(slack, monkeypatch) as running:
        yield running


# ---------------------------------------------------------------- driving Slack


def command(slack: FakeSlack, text: str, *, user: str = LEAD, channel: str = CHANNEL):
    ack = slack.send_slash_command({"command": "/eval", "text": text, "user_id": user, "channel_id": channel})
    assert ack.latency < ACK_BUDGET, f"/eval {text} acked after {ack.latency:.3f}s"
    return ack


def answer(slack: FakeSlack, *, containing: str = "", start: int = 0) -> dict:
    """The next ephemeral answer sent through a response_url (text and blocks)."""
    call = slack.wait_for_call("response_url", lambda c: containing in json.dumps(c.params), start=start)
    return call.params


def opened_view(slack: FakeSlack, *, start: int = 0) -> dict:
    view = slack.wait_for_call("views.open", start=start).params["view"]
    return json.loads(view) if isinstance(view, str) else view


def submit(slack: FakeSlack, view: dict, *, user: str = LEAD, **values: str | None):
    """Submit a modal: each input keeps its initial value unless given in `values`."""
    state = {}
    for block in view["blocks"]:
        if block["type"] == "input":
            element = block["element"]
            value = values.get(block["block_id"], element.get("initial_value"))
            state[block["block_id"]] = {element["action_id"]: {"type": "plain_text_input", "value": value or None}}
    payload = {"type": "view_submission", "user": {"id": user},
               "view": {**view, "id": "V0TEST", "state": {"values": state}}}
    ack = slack.send_interactive(payload)
    assert ack.latency < ACK_BUDGET, f"view submission acked after {ack.latency:.3f}s"
    return ack


def click(slack: FakeSlack, message: dict, action_id: str, *, channel: str = CHANNEL, user: str = LEAD):
    """Click the button `action_id` of a message."""
    block, button = next((b, e) for b in message["blocks"] if b["type"] == "actions"
                         for e in b["elements"] if e["action_id"] == action_id)
    payload = {"type": "block_actions", "user": {"id": user}, "channel": {"id": channel}, "message": message,
               "container": {"type": "message", "message_ts": message["ts"], "channel_id": channel, "is_ephemeral": False},
               "actions": [{"type": "button", "action_id": action_id, "block_id": block["block_id"],
                            "value": button["value"], "action_ts": "1763800000.000001"}]}
    ack = slack.send_interactive(payload)
    assert ack.latency < ACK_BUDGET, f"{action_id} acked after {ack.latency:.3f}s"
    return ack


def capture(slack: FakeSlack, *, question: str, reply: str) -> tuple[str, dict]:
    """Flag an assistant reply in a new thread; returns the case id and the bot's capture reply (the card)."""
    parent = slack.post(CHANNEL, question, user=FLAGGER)
    reply_ts = slack.post(CHANNEL, reply, bot_id=ASSISTANT_BOT, thread_ts=parent)
    slack.send_event({"type": "reaction_added", "user": FLAGGER, "reaction": "triangular_flag_on_post",
                      "item": {"type": "message", "channel": CHANNEL, "ts": reply_ts}})
    slack.wait_for_call("chat.postMessage", lambda c: c.params.get("thread_ts") == parent)
    card = next(m for m in slack.messages_in(CHANNEL, thread_ts=parent) if m.get("bot_id") == "BEVALBOT")
    return slack_case_id(CHANNEL, reply_ts), card


def updated_card(slack: FakeSlack, card: dict) -> dict:
    slack.wait_for_call("chat.update", lambda c: c.params.get("ts") == card["ts"])
    return slack.message(CHANNEL, card["ts"])


def commits(bot) -> int:
    return int(bot.runtime.corpus.repo.run("rev-list", "--count", "HEAD"))


def last_commit(bot) -> str:
    return bot.runtime.corpus.repo.run("log", "-1", "--format=%an <%ae>|%B").strip()


def texts(blocks: list[dict]) -> str:
    return json.dumps(blocks)


# ---------------------------------------------------------------- the slash command


def test_help_and_unknown_subcommands_are_answered_in_the_ack(bot, slack):
    for text in ("help", "", "frobnicate now"):
        payload = command(slack, text).payload
        shown = texts(payload["blocks"])
        for usage in ("list [candidates|cases|all]", "show ID", "promote ID [rubric text]", "reject ID reason", "edit ID"):
            assert f"/eval {usage}" in shown
        assert "<@U0LEAD001>" in shown and ("I don't know `/eval frobnicate`" in shown) == (text == "frobnicate now")
    assert slack.calls_to("response_url") == []


def test_commands_elsewhere_say_where_they_work(bot, slack):
    payload = command(slack, "list", channel=OTHER_CHANNEL).payload
    assert payload["text"] == f"`/eval` works in <#{CHANNEL}> and in a DM with me. Try it there."
    command(slack, "help")  # handled after the first, so the first had its chance to answer too
    assert slack.calls_to("response_url") == []


def test_commands_work_in_a_dm_with_the_bot(bot, slack):
    assert command(slack, "list", channel=DM).payload is None
    assert STOVES in json.dumps(answer(slack)["blocks"])


# The example candidate was flagged 2026-11-20T18:40Z: ages are read against a clock stopped the next day.
EXAMPLE_NEXT_DAY = datetime(2026, 11, 21, 12, 0, tzinfo=timezone.utc)


@pytest.mark.dates
def test_list_shows_newest_first_with_titles_flag_counts_and_age(bot, slack):
    with clock.frozen_at(EXAMPLE_NEXT_DAY):
        add_candidates(bot, 2)
        command(slack, "list")
        blocks = answer(slack)["blocks"]
    rows = [b["text"]["text"] for b in blocks if b.get("block_id", "").startswith("row_")]
    assert rows[0] == f"`{STOVES}` *Recommends a competitor's store for stoves*\n1 flag · 17h"
    assert [r.split("*")[1] for r in rows[1:]] == ["Candidate 0", "Candidate 1"]
    assert rows[1].endswith("2 flags · 1d") and rows[2].endswith("2 flags · 2d")
    command(slack, "list cases")
    cases = answer(slack, containing="*Cases* (6)")["blocks"]
    assert f"`{TENT}`" in texts(cases) and STOVES not in texts(cases)


@pytest.mark.dates
def test_list_ages_follow_the_clock_whatever_the_date(bot, slack):
    add_candidates(bot, 2)
    command(slack, "list")
    blocks = answer(slack)["blocks"]
    rows = [b["text"]["text"] for b in blocks if b.get("block_id", "").startswith("row_")]
    assert [r.split("*")[1] for r in rows] == ["Candidate 0", "Candidate 1", "Recommends a competitor's store for stoves"]
    assert rows[0].endswith("2 flags · 1d") and rows[1].endswith("2 flags · 2d")


def test_list_is_paged_with_a_next_button_that_replaces_the_message(bot, slack):
    add_candidates(bot, 12)
    command(slack, "list candidates")
    first = answer(slack)
    assert "page 1 of 2" in texts(first["blocks"]) and texts(first["blocks"]).count('"row_') == 10
    start = len(slack.calls)
    message = {"ts": "1763800000.000100", "blocks": first["blocks"]}
    click(slack, message, "evalbot_list_page")
    second = answer(slack, start=start)
    assert second["replace_original"] is True and "page 2 of 2" in texts(second["blocks"])
    assert [b["block_id"] for b in second["blocks"] if b.get("block_id", "").startswith("row_")] == [
        f"row_{c.id}" for c in bot_candidates(bot)[10:]]


def test_list_shows_a_case_committed_by_someone_else_since_the_bot_indexed(bot_on_both, slack):
    """A case pulled or committed outside the bot is in the corpus's HEAD but not yet in the index."""
    data = candidate(ts="1763000999.000100", channel=CHANNEL, title="Committed by hand").model_dump()
    data["id"] = "hand0001"
    path = bot_on_both.runtime.corpus.path_for("hand0001", "candidate")
    path.write_text(dump_case(Case.model_validate(data)), encoding="utf-8")
    bot_on_both.runtime.corpus.repo.commit([path], message="By hand", author=SYSTEM)
    command(slack, "list candidates")
    assert "`hand0001` *Committed by hand*" in texts(answer(slack)["blocks"])


def test_show_previews_the_conversation_expectations_and_source(bot, slack):
    command(slack, "show tne8")
    shown = texts(answer(slack)["blocks"])
    assert "Ridgeline 2 tent" in shown and "Assistant (flagged)" in shown
    assert "must not contain: `90 days`" in shown and "rubric: States the 30-day return window" in shown
    assert "<https://acme-outdoor.slack.com/archives/C07SUPPORT/p1763600000000100|source thread>" in shown
    assert '"action_id": "evalbot_edit"' in shown


@pytest.mark.parametrize("surface", ["commands", "buttons"])
def test_unknown_ambiguous_and_traversal_ids_change_nothing(bot, slack, surface):
    add_candidates(bot, 0, ids=["abcd0001", "abcd0002"])
    before = commits(bot)
    expected = {
        "../../etc/passwd": "is not a case id",
        "zzzz": "no case has an id starting with 'zzzz'",
        "abcd": "'abcd' matches 2 cases (abcd0001, abcd0002)",
        "ab": "too short",
    }
    for ref, message in expected.items():
        start = len(slack.calls)
        if surface == "commands":
            for text in (f"show {ref}", f"promote {ref} a rubric", f"reject {ref} a reason", f"edit {ref}"):
                command(slack, text)
                assert message in answer(slack, start=start)["text"], text
                start = len(slack.calls)
        else:
            card = {"ts": "1763800000.000200", "blocks": [{"type": "actions", "block_id": f"triage_{ref}",
                    "elements": [{"type": "button", "action_id": "evalbot_reject", "value": ref}]}]}
            click(slack, card, "evalbot_reject")
            assert message in answer(slack, start=start)["text"]
    assert commits(bot) == before and slack.calls_to("views.open") == []


def test_promote_with_rubric_text_promotes_at_once_as_the_maintainer(bot_on_both, slack):
    bot = bot_on_both
    command(slack, "promote qa31 Recommends our own stoves &amp; never another store")
    said = answer(slack)["text"]
    assert said.startswith(f":white_check_mark: Promoted `{STOVES}`") and "with 1 expectation." in said
    case = bot.runtime.corpus.get(STOVES)
    assert case.status == "promoted" and case.promoted_by == LEAD and case.promoted_at is not None
    assert [e.model_dump() for e in case.expect] == [{"rubric": "Recommends our own stoves & never another store"}]
    assert last_commit(bot) == f"Lead <{LEAD}@users.slack>|Promote {STOVES}: Recommends a competitor's store for stoves"
    assert bot.runtime.corpus.repo.run("log", "-1", "--name-status", "-M", "--format=").startswith("R")
    with session_scope(bot.runtime.engine) as session:
        assert session.get(CaseIndex, STOVES).status == "promoted"


def test_promote_without_text_opens_the_prefilled_modal_and_submitting_promotes(bot, slack):
    before = commits(bot)
    command(slack, "promote qa31")
    view = opened_view(slack)
    inputs = {b["block_id"]: b["element"].get("initial_value") for b in view["blocks"] if b["type"] == "input"}
    assert inputs["rubric"] == ("Recommends Acme Outdoor's own backpacking stoves and does not send the customer to "
                                "another store.")
    assert inputs["title"] == "Recommends a competitor's store for stoves"
    ack = submit(slack, view, title="Sends stove buyers to a competitor", tags="catalog, stoves",
                 not_contains="another outdoor retailer\n\n")
    assert ack.payload is None  # valid: the modal closes
    assert "Promoted `qa31qo8q` *Sends stove buyers to a competitor* with 2 expectations." in answer(slack)["text"]
    case = bot.runtime.corpus.get(STOVES)
    assert case.title == "Sends stove buyers to a competitor" and case.tags == ["catalog", "stoves"]
    assert [e.model_dump() for e in case.expect] == [{"rubric": inputs["rubric"]}, {"not_contains": "another outdoor retailer"}]
    assert case.suggested_expect == [] and commits(bot) == before + 1


def test_promote_modal_shows_bad_input_inline_and_changes_nothing(bot, slack):
    before = commits(bot)
    command(slack, "promote qa31")
    view = opened_view(slack)
    bad = submit(slack, view, regex="(unclosed", tags="ok, not ok!").payload
    assert bad["response_action"] == "errors"
    assert bad["errors"]["regex"].startswith("Not a valid regular expression: missing )")
    assert bad["errors"]["tags"] == "Tags take letters, digits and _ . - / only: ok!"
    empty = submit(slack, view, rubric="").payload
    assert empty == {"response_action": "errors", "errors": {
        "rubric": "Give at least one expectation: a rubric, a must-contain or must-not-contain line, or a regex."}}
    blank_title = submit(slack, view, title="   ").payload
    assert blank_title["errors"] == {"title": "Give the case a title."}
    assert commits(bot) == before and bot.runtime.corpus.get(STOVES).status == "candidate"
    assert slack.calls_to("response_url") == []


def test_promotion_warns_when_no_expectation_fails_on_the_flagged_reply(bot, slack):
    command(slack, "promote qa31")
    submit(slack, opened_view(slack), rubric="", contains="retailer")
    said = answer(slack, containing="Promoted")["text"]
    assert ":warning: None of the deterministic expectations fails on the flagged reply" in said
    assert "would not have caught the failure" in said
    assert bot.runtime.corpus.get(STOVES).status == "promoted"  # a warning, not a refusal


def test_reject_with_a_reason_removes_the_candidate_and_keeps_the_reason(bot_on_both, slack):
    bot = bot_on_both
    command(slack, "reject qa31 we really do not sell stoves")
    assert answer(slack)["text"] == (f":no_entry_sign: Rejected `{STOVES}` *Recommends a competitor's store for stoves*: "
                                     "we really do not sell stoves")
    assert STOVES not in bot.runtime.corpus.ids()
    assert last_commit(bot).endswith("Reason: we really do not sell stoves")
    with session_scope(bot.runtime.engine) as session:
        row = session.exec(select(Rejection)).one()
        assert (row.case_id, row.rejected_by, row.reason) == (STOVES, LEAD, "we really do not sell stoves")
        assert session.get(CaseIndex, STOVES) is None


def test_state_errors_are_explained(bot, slack):
    before = commits(bot)
    for text, message in [("reject qa31", "say why you reject it"), ("promote tne8 x", "already a promoted case"),
                          ("reject tne8 dup", "only candidates can be rejected"), ("show", "show needs a case id"),
                          ("list everything", "list takes candidates, cases or all")]:
        start = len(slack.calls)
        command(slack, text)
        assert message in answer(slack, start=start)["text"], text
    assert commits(bot) == before


def test_edit_opens_the_modal_with_current_values_and_saves_one_commit(bot, slack):
    before = commits(bot)
    command(slack, "edit ewji")
    view = opened_view(slack)
    inputs = {b["block_id"]: b["element"].get("initial_value") for b in view["blocks"] if b["type"] == "input"}
    assert inputs["contains"] == "support@acme-outdoor.example" and inputs["rubric"].startswith("Says plainly")
    assert "not_regex: (?i)I(?:'ve| have) cancell?ed" in texts(view["blocks"])  # kept as it is: not in the form
    assert submit(slack, view, title="Claims to cancel a shipped order", tags="orders cancellation").payload is None
    assert answer(slack)["text"] == f":pencil2: Edited `{CANCEL}` *Claims to cancel a shipped order*."
    case = bot.runtime.corpus.get(CANCEL)
    assert case.title == "Claims to cancel a shipped order" and case.tags == ["orders", "cancellation"]
    assert [next(iter(e.model_dump())) for e in case.expect] == ["not_regex", "contains", "rubric"]  # order kept
    assert commits(bot) == before + 1 and last_commit(bot).startswith(f"Lead <{LEAD}@users.slack>|Edit {CANCEL}:")
    diff = bot.runtime.corpus.repo.run("show", "--format=", "--unified=0", "HEAD").splitlines()
    changed = [line for line in diff if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    assert changed == ["-title: Promises to cancel an order that already shipped",
                       "+title: Claims to cancel a shipped order", "-- policy", "+- cancellation"]


def test_edit_changing_nothing_makes_no_commit(bot, slack):
    before = commits(bot)
    command(slack, "edit tne8")
    submit(slack, opened_view(slack))
    assert answer(slack)["text"] == f"Nothing changed in `{TENT}`: the form matched the file."
    assert commits(bot) == before


def test_edit_of_a_promoted_case_needs_an_expectation(bot, slack):
    command(slack, "edit tne8")
    ack = submit(slack, opened_view(slack), rubric="", not_contains="", regex="")
    assert ack.payload["errors"] == {"rubric": "Give at least one expectation: a rubric, a must-contain or "
                                               "must-not-contain line, or a regex."}


def test_with_an_api_key_the_judge_checks_the_rubric_against_the_flagged_reply(slack, corpus_dir, monkeypatch):
    from tests.fakes.anthropic import FakeAnthropic

    with FakeAnthropic() as fake:
        for name, value in fake.env().items():
            monkeypatch.setenv(name, value)
        fake.queue({"title": "Sends stove buyers elsewhere", "rubric": "Recommends our own stoves."},  # capture's draft
                   {"reasoning": "It sends the customer to another store.", "verdict": "fail"},  # first promotion
                   {"reasoning": "It does recommend a store.", "verdict": "pass"})  # second promotion
        with _start(slack, monkeypatch):
            case_id, _ = capture(slack, question="Do you sell stoves?", reply="Try another outdoor retailer.")
            command(slack, "promote qa31 Recommends our own stoves")
            caught = answer(slack, containing="Promoted")["text"]
            start = len(slack.calls)
            command(slack, f"promote {case_id} Recommends a store")
            missed = answer(slack, containing="Promoted", start=start)["text"]
        tools = [r.json["tool_choice"]["name"] for r in fake.requests]
        judged = [r.json["messages"][0]["content"] for r in fake.requests if r.json["tool_choice"]["name"] == "record_verdict"]
    assert tools == ["record_draft", "record_verdict", "record_verdict"]
    assert ":warning:" not in caught  # the judge finds the flagged reply fails the rubric: the case catches it
    assert ":warning: The judge finds that the flagged reply satisfies the rubric" in missed
    assert "might have better luck at another outdoor retailer" in judged[0]  # qa31's recorded, flagged reply


# ---------------------------------------------------------------- permissions


def test_non_maintainers_are_refused_naming_who_can(bot, slack):
    before = commits(bot)
    for text in ("promote qa31 a rubric", "promote qa31", "reject qa31 nope", "edit tne8"):
        start = len(slack.calls)
        command(slack, text, user=FLAGGER)
        said = answer(slack, start=start)["text"]
        assert said.startswith(":warning: only maintainers can do this: <@U0LEAD001>."), text
    command(slack, "show qa31", user=FLAGGER)  # reading is for everyone
    answer(slack, containing="Recommends a competitor")
    assert commits(bot) == before and slack.calls_to("views.open") == []


def test_maintainers_in_a_user_group_are_resolved_and_cached(slack, corpus_dir, monkeypatch):
    slack.add_usergroup(GROUP, [SECOND])
    with _start(slack, monkeypatch, EVALBOT_MAINTAINERS=f"{LEAD},{GROUP}") as bot:
        command(slack, "edit tne8", user=SECOND)
        opened_view(slack)
        command(slack, "promote qa31 Recommends our own stoves", user=SECOND)
        answer(slack, containing="Promoted")
        command(slack, "reject qa31 x", user=FLAGGER)
        said = answer(slack, containing="only maintainers")["text"]
    assert "<@U0LEAD001> or members of <!subteam^S0TRIAGE1>" in said
    assert len(slack.calls_to("usergroups.users.list")) == 1  # one lookup, then the cache
    assert bot.runtime.corpus.get(STOVES).promoted_by == SECOND


def test_group_membership_cache_expires_and_survives_a_failed_refresh(slack):
    from slack_sdk import WebClient

    slack.add_usergroup(GROUP, [SECOND])
    now = [0.0]
    maintainers = Maintainers([GROUP], WebClient(base_url=slack.api_url, token="xoxb-test"), ttl=60, clock=lambda: now[0])
    maintainers.require(SECOND)
    slack.add_usergroup(GROUP, [FLAGGER])
    maintainers.require(SECOND)  # cached
    now[0] = 61
    slack.fail_next("usergroups.users.list", error="ratelimited")
    maintainers.require(SECOND)  # refresh failed: the old list still answers
    maintainers.require(FLAGGER)  # refreshed
    assert len(slack.calls_to("usergroups.users.list")) == 3


# ---------------------------------------------------------------- buttons on the capture reply


def test_promote_button_opens_the_modal_and_the_reply_shows_who_promoted(bot, slack):
    case_id, card = capture(slack, question="Is the Ridgeback stove in stock?", reply="Try the shop next door.")
    click(slack, card, "evalbot_promote")
    view = opened_view(slack)
    assert json.loads(view["private_metadata"])["case_id"] == case_id
    submit(slack, view, rubric="Checks stock and does not send the customer elsewhere.", not_contains="next door")
    after = updated_card(slack, card)
    shown = texts(after["blocks"])
    assert "Promoted by <@U0LEAD001> <!date^" in shown and "with 2 expectations." in shown
    assert "evalbot_promote" not in shown and "evalbot_reject" not in shown
    assert answer(slack, containing="Promoted")["text"].startswith(f":white_check_mark: Promoted `{case_id}`")
    assert bot.runtime.corpus.get(case_id).status == "promoted"


def test_reject_button_asks_for_a_reason_and_the_reply_shows_who_rejected(bot_on_both, slack):
    bot = bot_on_both
    case_id, card = capture(slack, question="Is the Ridgeback stove in stock?", reply="Try the shop next door.")
    click(slack, card, "evalbot_reject")
    view = opened_view(slack)
    reason = next(b for b in view["blocks"] if b.get("block_id") == "reason")
    assert "initial_value" not in reason["element"]  # no near-duplicate: nothing to prefill
    assert submit(slack, view, reason="  ").payload["errors"] == {
        "reason": "Say why it is not a case: the reason is kept with the rejection."}
    submit(slack, view, reason="the shop next door is ours")
    shown = texts(updated_card(slack, card)["blocks"])
    assert "Rejected by <@U0LEAD001> <!date^" in shown and "the shop next door is ours" in shown
    assert case_id not in bot.runtime.corpus.ids()
    with session_scope(bot.runtime.engine) as session:
        assert session.get(Rejection, case_id).reason == "the shop next door is ours"


def test_buttons_refuse_non_maintainers_privately(bot, slack):
    case_id, card = capture(slack, question="Is the Ridgeback stove in stock?", reply="Try the shop next door.")
    for action in ("evalbot_promote", "evalbot_reject"):
        start = len(slack.calls)
        click(slack, card, action, user=SECOND)
        assert answer(slack, start=start)["text"].startswith(":warning: only maintainers can do this: <@U0LEAD001>.")
    assert slack.calls_to("views.open") == [] and slack.calls_to("chat.update") == []
    assert bot.runtime.corpus.get(case_id).status == "candidate"


def test_capture_names_near_duplicates_and_reject_prefills_the_reason(bot, slack):
    case_id, card = capture(
        slack, question="Hi! I bought the Ridgeline 3 tent last month. How long do I have to return it?",
        reply="Great question! You have 90 days from purchase to return any item, no questions asked!")
    dupes = next(b for b in card["blocks"] if b.get("block_id") == f"dupes_{case_id}")["text"]["text"]
    assert (f"Looks like: `{TENT}` <https://acme-outdoor.slack.com/archives/C07SUPPORT/p1763600000000100|"
            "Refund answer invents a 90-day window") in dupes
    click(slack, card, "evalbot_reject")
    reason = next(b for b in opened_view(slack)["blocks"] if b.get("block_id") == "reason")
    assert reason["element"]["initial_value"] == f"duplicate of {TENT}"


def test_promotion_names_near_duplicates(bot, slack):
    add_candidates(bot, 0, ids=["dupe0001"], like=TENT)
    command(slack, "promote dupe Says 30 days")
    said = answer(slack, containing="Promoted")["text"]
    assert f"Looks like: `{TENT}` <https://acme-outdoor.slack.com/archives/C07SUPPORT/p1763600000000100|" in said


def test_buttons_on_show_open_the_same_modals(bot, slack):
    command(slack, "show tne8")
    shown = {"ts": "1763800000.000300", "blocks": answer(slack)["blocks"]}
    start = len(slack.calls)
    click(slack, shown, "evalbot_edit")
    view = opened_view(slack, start=start)
    assert view["callback_id"] == "evalbot_edit_modal" and json.loads(view["private_metadata"])["case_id"] == TENT
    submit(slack, view, title="Invents a 90-day return window")
    assert answer(slack, start=start)["text"] == f":pencil2: Edited `{TENT}` *Invents a 90-day return window*."
    command(slack, "show qa31")
    candidate_shown = {"ts": "1763800000.000400", "blocks": answer(slack, containing="Suggested")["blocks"]}
    start = len(slack.calls)
    click(slack, candidate_shown, "evalbot_promote")
    assert opened_view(slack, start=start)["callback_id"] == "evalbot_promote_modal"


def test_an_unexpected_error_is_logged_with_its_traceback_and_the_user_told(bot, slack, monkeypatch, caplog):
    def broken(ref, **_):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(bot.runtime.corpus, "get", broken)
    command(slack, "show qa31")
    assert answer(slack)["text"].startswith(":x: That failed on my side (the error is in evalbot's log).")
    failure = next(r for r in caplog.records if r.getMessage().startswith("unhandled error in Slack listener"))
    assert failure.exc_info and "disk on fire" in str(failure.exc_info[1])


# ---------------------------------------------------------------- the 3-second rule


def test_acks_stay_fast_while_slack_and_git_work_is_slow(bot, slack):
    slack.set_latency("users.info", 1.5)  # the maintainer's display name, looked up for the commit author
    slack.set_latency("views.open", 1.5)
    command(slack, "promote qa31")  # asserts the ack latency
    view = opened_view(slack)
    submit(slack, view)  # asserts the ack latency
    answer(slack, containing="Promoted")
    assert bot.runtime.corpus.get(STOVES).status == "promoted"


# ---------------------------------------------------------------- helpers that seed the corpus


def add_candidates(bot, count: int, *, ids: list[str] | None = None, like: str | None = None) -> list[Case]:
    """Write candidates (flagged 1, 2, … days ago, two flags each) to the corpus and the index."""
    now = clock.utcnow()
    made = []
    for index, case_id in enumerate(ids or [f"cand{i:04d}" for i in range(count)]):
        data = candidate(ts=f"1763000{index:03d}.000100", channel=CHANNEL, title=f"Candidate {index}",
                         flagged_by=(FLAGGER, SECOND)).model_dump()
        data["id"] = case_id
        data["source"]["flagged_at"] = now - timedelta(days=index + 1)
        if like:
            data["conversation"] = [t.model_dump() for t in bot.runtime.corpus.get(like).conversation]
        made.append(Case.model_validate(data))
    with bot.runtime.corpus.change(author=SYSTEM, message="Seed candidates") as tx:
        for case in made:
            tx.write(case)
    with session_scope(bot.runtime.engine) as session:
        for case in made:
            caseindex.upsert(session, case)
    return made


def bot_candidates(bot) -> list[Case]:
    """Candidates newest first (by flag time), as list shows them."""
    return sorted(bot.runtime.corpus.cases("candidate"), key=lambda c: (-c.source.flagged_at.timestamp(), c.id))

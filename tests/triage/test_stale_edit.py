"""The edit form applies only to the version it showed: its private_metadata carries the case's content hash,
and a form opened before someone else's change is refused naming them. Through the real listeners against the
fake Slack, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from bot.corpus.files import case_digest
from bot.corpus.gitrepo import Author
from bot.slack.blocks.modals import Origin
from bot.store.tables import session_scope
from bot.triage import decisions as triage
from tests.fakes.slack import FakeSlack
from tests.helpers.slackbot import CHANNEL, LEAD, SECOND, configure, running_bot, seed

pytestmark = pytest.mark.migrated_db  # the database starts migrated: each test's first use of it migrates in-process

CANCEL = "ewjirjst"  # a promoted example case


@pytest.fixture
def slack():
    with FakeSlack() as fake:
        seed(fake)
        yield fake


@pytest.fixture
def bot(slack, corpus_dir, db_url, monkeypatch):
    configure(monkeypatch, slack, EVALBOT_MAINTAINERS=f"{LEAD},{SECOND}")
    with running_bot(slack) as running:
        yield running


def open_edit(slack: FakeSlack, user: str) -> dict:
    start = len(slack.calls)
    slack.send_slash_command({"command": "/eval", "text": f"edit {CANCEL}", "user_id": user, "channel_id": CHANNEL})
    view = slack.wait_for_call("views.open", start=start).params["view"]
    return json.loads(view) if isinstance(view, str) else view


def submit(slack: FakeSlack, view: dict, user: str, title: str):
    state = {}
    for block in view["blocks"]:
        if block["type"] == "input":
            element = block["element"]
            value = title if block["block_id"] == "title" else element.get("initial_value")
            state[block["block_id"]] = {element["action_id"]: {"type": "plain_text_input", "value": value or None}}
    payload = {"type": "view_submission", "user": {"id": user}, "view": {**view, "id": "V0TEST", "state": {"values": state}}}
    return slack.send_interactive(payload, timeout=10)


def test_the_edit_form_carries_the_version_it_shows(bot, slack):
    view = open_edit(slack, LEAD)
    assert Origin.load(view["private_metadata"]).digest == case_digest(bot.runtime.corpus.get(CANCEL))


def test_a_form_opened_before_another_edit_is_refused_naming_it(bot, slack):
    view = open_edit(slack, LEAD)
    with session_scope(bot.runtime.engine) as session:
        triage.edit(corpus=bot.runtime.corpus, session=session, ref=CANCEL, actor=Author(user_id=SECOND, name="Dev"),
                    title="Dev's title")
    head = bot.runtime.corpus.repo.head()
    ack = submit(slack, view, LEAD, "Lead's title")
    error = ack.payload["errors"]["rubric"]
    # A modal's error is plain text: the person as the domain writes them (a mention would show as markup).
    assert error.startswith(f"{CANCEL} changed since you opened the form (edited by @{SECOND} ") and "nothing was saved" in error
    assert bot.runtime.corpus.get(CANCEL).title == "Dev's title" and bot.runtime.corpus.repo.head() == head


def test_two_forms_on_one_version_submitted_at_once_save_one(bot, slack):
    views = {user: open_edit(slack, user) for user in (LEAD, SECOND)}
    head = bot.runtime.corpus.repo.head()
    start = len(slack.calls)
    with ThreadPoolExecutor(max_workers=2) as pool:
        acks = list(pool.map(lambda user: submit(slack, views[user], user, f"Title by {user}"), (LEAD, SECOND)))
    refused_in_form = [a for a in acks if a.payload and "errors" in a.payload]
    expected_messages = 2 - len(refused_in_form)  # the form's outcome is told where it was opened (/eval's response_url)

    def told_so_far() -> list[str]:
        return [c.params.get("text", "") for c in slack.calls[start:] if c.method == "response_url"]

    slack.wait_for_call("response_url", lambda c: len(told_so_far()) >= expected_messages, start=start)
    told = told_so_far()
    saved = [t for t in told if t.startswith(":pencil2: Edited")]
    assert len(saved) == 1, told
    winner = bot.runtime.corpus.get(CANCEL).title.removeprefix("Title by ")
    in_messages = [t for t in told if t not in saved]  # mrkdwn: the winner as a mention
    in_forms = [a.payload["errors"]["rubric"] for a in refused_in_form]  # plain text: as the domain writes them
    refusals = in_messages + in_forms
    assert len(refusals) == 1 and "changed since you opened the form" in refusals[0] and "nothing was saved" in refusals[0]
    # Who got there first is named even while the winner's change still waits in the group commit.
    named = f"(edited by <@{winner}> " if in_messages else f"(edited by @{winner} "
    assert named in refusals[0], refusals
    log = bot.runtime.corpus.repo.run("log", "--format=%ae|%s", f"{head}..HEAD").splitlines()
    assert log == [f"{winner}@users.slack|Edit {CANCEL}: Title by {winner}"]

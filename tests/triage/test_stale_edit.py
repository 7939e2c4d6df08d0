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
THIRD, FOURTH = "U0THIRD01", "U0FOURTH1"
MAINTAINERS = (LEAD, SECOND, THIRD, FOURTH)


@pytest.fixture
def slack():
    with FakeSlack() as fake:
        seed(fake)
        fake.add_user(THIRD, "third", display_name="Third")
        fake.add_user(FOURTH, "fourth", display_name="Fourth")
        yield fake


@pytest.fixture
def bot(slack, corpus_dir, db_url, monkeypatch):
    configure(monkeypatch, slack, EVALBOT_MAINTAINERS=",".join(MAINTAINERS))
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


def submit_at_once(slack: FakeSlack, views: dict[str, dict], *, title: str) -> dict:
    """Every user's form submitted at the same time (`title` with the user in `{}`): user -> ack."""
    with ThreadPoolExecutor(max_workers=len(views)) as pool:
        return dict(zip(views, pool.map(lambda u: submit(slack, views[u], u, title.format(u)), views)))


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


def test_every_form_submitted_at_once_gets_one_answer(bot, slack):
    """Rounds of four maintainers submitting forms on one version at once: one saves, each other one is refused, and
    every submitter hears exactly once, in the form or where /eval was typed, whenever the others' saves land.

    Each submit is validated once: a second validation after the ack could meet someone else's save made in
    between and stay silent (the ack said nothing, the answer never came). Rounds make that interleaving likely."""
    head = bot.runtime.corpus.repo.head()
    rounds, winners, in_forms = 25, [], set()

    def told(start: int = 0) -> dict[str, list[str]]:  # response_id of the /eval that opened a form: what it was told
        out: dict[str, list[str]] = {}
        for call in slack.calls[start:]:
            if call.method == "response_url":
                out.setdefault(call.params["response_id"], []).append(call.params.get("text", ""))
        return out

    for round_ in range(rounds):
        views = {user: open_edit(slack, user) for user in MAINTAINERS}
        where = {user: Origin.load(views[user]["private_metadata"]).response_url.rsplit("/", 1)[-1] for user in MAINTAINERS}
        start = len(slack.calls)
        acks = submit_at_once(slack, views, title=f"Round {round_} by {{}}")
        refused_in_form = {u: a.payload["errors"]["rubric"] for u, a in acks.items() if a.payload and "errors" in a.payload}
        waiting = {where[u] for u in MAINTAINERS if u not in refused_in_form}
        slack.wait_for_call("response_url", lambda c, waiting=waiting, start=start: waiting <= told(start).keys(), start=start)
        messages = told(start)
        answer = {u: refused_in_form.get(u) or messages[where[u]][0] for u in MAINTAINERS}
        saved = [u for u in MAINTAINERS if answer[u].startswith(":pencil2: Edited")]
        assert len(saved) == 1, (round_, answer)
        assert all("changed since you opened the form" in answer[u] for u in MAINTAINERS if u not in saved), answer
        winners.append(saved[0])
        in_forms |= {where[u] for u in refused_in_form}
    # Exactly once: no message for a form refused in place, one for each other submit (late ones included).
    messages = told()
    assert not in_forms & messages.keys(), messages
    assert len(messages) + len(in_forms) == rounds * len(MAINTAINERS) and all(len(m) == 1 for m in messages.values()), messages
    log = bot.runtime.corpus.repo.run("log", "--reverse", "--format=%ae", f"{head}..HEAD").splitlines()
    assert log == [f"{user}@users.slack" for user in winners]

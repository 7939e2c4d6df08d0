"""The digest's [Judge wrong: ID] buttons: the Block Kit, and a click through the real Bolt app against the fake Slack."""

from __future__ import annotations

import pytest

from bot.digest.data import load_digest
from bot.evals.evaluate import run_eval
from bot.evals.reviews import agreement, few_shot
from bot.slack.blocks import digest as db
from bot.store.tables import session_scope
from tests.fakes.slack import FakeSlack
from tests.helpers.evals import GOOD, PassingJudge, replies
from tests.helpers.slackbot import CHANNEL, LEAD, SECOND, configure, running_bot, seed

pytestmark = pytest.mark.migrated_db  # the database starts migrated: each test's first use of it migrates in-process

TENT = "tne841s8"  # promoted: a rubric first, then not_contains and regex
FAILS_THE_JUDGE = "BAD: you can return unused items within 30 days of delivery."  # PassingJudge fails 'BAD'


@pytest.fixture
def slack():
    with FakeSlack() as fake:
        seed(fake)
        yield fake


@pytest.fixture
def bot(slack, corpus_dir, db_url, monkeypatch):
    configure(monkeypatch, slack, EVALBOT_MAINTAINERS=LEAD)
    with running_bot(slack) as running:
        yield running


def regression_digest(runtime):
    run_eval(runtime, case_ids=[TENT], target=replies(GOOD), judge=PassingJudge())
    run = run_eval(runtime, case_ids=[TENT], target=replies({TENT: FAILS_THE_JUDGE}), judge=PassingJudge())
    with session_scope(runtime.engine) as session:
        return load_digest(session, run.run_id)


def click(slack, message, *, user=LEAD):
    block = next(b for b in message["blocks"] if b["type"] == "actions")
    button = block["elements"][0]
    payload = {"type": "block_actions", "user": {"id": user}, "channel": {"id": CHANNEL}, "message": message,
               "container": {"type": "message", "message_ts": message["ts"], "channel_id": CHANNEL, "is_ephemeral": False},
               "actions": [{"type": "button", "action_id": button["action_id"], "block_id": block["block_id"],
                            "value": button["value"], "action_ts": "1763800000.000001"}]}
    start = len(slack.calls)
    slack.send_interactive(payload)
    return slack.wait_for_call("response_url", start=start).params["text"]


def test_a_maintainer_marks_the_judge_wrong_from_the_digest(bot, slack):
    digest = regression_digest(bot.runtime)
    assert [(i.case_id, i.judged) for i in digest.regressions] == [(TENT, True)]
    message = db.digest_message(digest)
    buttons = [b for b in message.blocks if b["type"] == "actions"]
    assert len(buttons) == 1 and buttons[0]["elements"][0]["value"] == f"{digest.run_id}|{TENT}"
    assert buttons[0]["elements"][0]["text"]["text"] == f"Judge wrong: {TENT}"
    said = click(slack, {"ts": "1763800000.000100", "blocks": message.blocks})
    assert said.startswith(f":scales: Noted: the judge was wrong on `{TENT}` in run #{digest.run_id} (trial 1)")
    assert "judge agrees with people on 0 of 1 reviewed verdicts (0%)" in said
    rubric = bot.runtime.corpus.get(TENT).expect[0].rubric
    with session_scope(bot.runtime.engine) as session:
        assert agreement(session).per_rubric == {rubric.strip(): (0, 1)}
        [example] = few_shot(session, [rubric])[rubric.strip()]
        assert (example.reply, example.passed) == (FAILS_THE_JUDGE, True)


def test_only_maintainers_correct_the_judge(bot, slack):
    message = db.digest_message(regression_digest(bot.runtime))
    said = click(slack, {"ts": "1763800000.000100", "blocks": message.blocks}, user=SECOND)
    assert said.startswith(":warning: only maintainers can do this")
    with session_scope(bot.runtime.engine) as session:
        assert agreement(session).reviewed == 0


def test_no_button_when_no_regression_failed_the_judge(bot):
    run_eval(bot.runtime, case_ids=[TENT], target=replies(GOOD), judge=PassingJudge())
    run = run_eval(bot.runtime, case_ids=[TENT], target=replies({TENT: "You have 90 days."}), judge=PassingJudge())
    with session_scope(bot.runtime.engine) as session:
        digest = load_digest(session, run.run_id)
    assert [(i.case_id, i.judged) for i in digest.regressions] == [(TENT, False)]  # not_contains and regex failed it
    assert [b for b in db.digest_message(digest).blocks if b["type"] == "actions"] == []

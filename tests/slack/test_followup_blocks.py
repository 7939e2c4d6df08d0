"""Follow-up messages as Block Kit (bot/slack/blocks/followups.py), tested as dicts."""

from __future__ import annotations

import pytest

from bot.digest.followups import FollowUp
from bot.slack.blocks.followups import followup_message, metadata

BASE = {"case_id": "k3m9x2qa", "title": "Refund answer invents a 90-day window", "channel": "C1", "thread_ts": "1.000100",
        "flaggers": ("U0A", "U0B")}


@pytest.mark.parametrize(("followup", "expected"), [
    (FollowUp("promoted", **BASE, actor="U0C", expectations=("rubric: States the 30-day window", "not contains: 90 days")),
     "<@U0A> <@U0B> :white_check_mark: Your flag is now a test: *Refund answer invents a 90-day window* (`k3m9x2qa`), "
     "promoted by <@U0C>, checking 2 expectations:\n• rubric: States the 30-day window\n• not contains: 90 days\n"
     "Every eval run checks it from now on; I'll tell you here when it is fixed or breaks again."),
    (FollowUp("rejected", **BASE, actor="U0C", reason="duplicate of abcd1234"),
     "<@U0A> <@U0B> :no_entry_sign: Your flag *Refund answer invents a 90-day window* (`k3m9x2qa`) was not added to "
     "the evals: <@U0C> rejected it — _duplicate of abcd1234_"),
    (FollowUp("first_result", **BASE, run_id=41, reproduces=True, detail="not_contains: found '90 days'"),
     "<@U0A> <@U0B> :dart: First eval of *Refund answer invents a 90-day window* (`k3m9x2qa`) in run #41: it "
     "*reproduces the failure* you reported — it fails today: not_contains: found '90 days'. I'll tell you here when "
     "it passes."),
    (FollowUp("first_result", **BASE, run_id=41, reproduces=False),
     "<@U0A> <@U0B> :thinking_face: First eval of *Refund answer invents a 90-day window* (`k3m9x2qa`) in run #41: it "
     "*passes today* — the failure does not reproduce (already fixed, or the expectations miss it: a maintainer can "
     "`edit` them)."),
    (FollowUp("fixed", **BASE, run_id=42, previous_run=41, changes=("prompts/system.md at abc1234",)),
     "<@U0A> <@U0B> :tada: *Refund answer invents a 90-day window* (`k3m9x2qa`) is *fixed*: it passes since run #42 "
     "(it failed in run #41) — changed since: `prompts/system.md at abc1234`."),
    (FollowUp("regressed", **BASE, run_id=43, previous_run=42, detail="rubric: invents a window"),
     "<@U0A> <@U0B> :rotating_light: *Refund answer invents a 90-day window* (`k3m9x2qa`) *regressed*: it passed in "
     "run #42 and fails again in run #43: rubric: invents a window"),
])
def test_each_follow_up_message(followup, expected):
    message = followup_message(followup, followup.flaggers)
    assert message.blocks[0] == {"type": "section", "text": {"type": "mrkdwn", "text": expected}}
    assert message.text.startswith("<@U0A> <@U0B> ") and "`/eval mute`" in str(message.blocks[1])


def test_user_text_is_escaped_and_the_metadata_names_the_event():
    followup = FollowUp("rejected", **{**BASE, "title": "<!channel> & co"}, actor="U0C", reason="<@U0Z> said so")
    text = followup_message(followup, ["U0A"]).blocks[0]["text"]["text"]
    assert "&lt;!channel&gt; &amp; co" in text and "&lt;@U0Z&gt; said so" in text and "<@U0B>" not in text
    assert metadata("run:4:k3m9x2qa") == {"event_type": "evalbot_followup", "event_payload": {"key": "run:4:k3m9x2qa"}}

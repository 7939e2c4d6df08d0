"""The digest's [Judge wrong: ID] buttons: a maintainer says the LLM judge failed a reply it should have passed.

Acked at once; the lazy listener checks the maintainer, records the review (`bot.evals.reviews.correct_judge`: the
case's first failed rubric verdict in that run, now passed by a person) and answers the clicker alone with the
judge–human agreement. The correction is shown to the judge as a labelled example of that rubric on later runs.
"""

from __future__ import annotations

import re
from typing import Any

from slack_bolt import Ack, App

from bot.core.errors import EvalbotError
from bot.evals.reviews import agreement, correct_judge
from bot.slack.blocks import digest as db
from bot.slack.deps import SlackDeps
from bot.slack.flows.triage_ops import TriageOps, guarded, ops_for
from bot.slack.listeners import bind
from bot.slack.listeners.actions import click
from bot.store.tables import session_scope

BUTTONS = re.compile(rf"^{db.JUDGE_WRONG_ACTION}_\d+$")


def _ack(ack: Ack) -> None:
    ack()


def judge_wrong(body: dict[str, Any], *, ops: TriageOps) -> None:
    """Record the correction and tell the clicker."""
    user_id, value, origin = click(body)
    try:
        ops.maintainers.require(user_id)
        run_id, case_id = db.parse_judge_value(value)
        with session_scope(ops.rt.engine) as session:
            review = correct_judge(session, ops.rt.corpus, run_id=run_id, case_id=case_id, reviewer=user_id)
            summary = agreement(session).summary()
        ops.tell(user_id, origin, f":scales: Noted: the judge was wrong on `{review.case_id}` in run #{run_id} "
                                  f"(trial {review.trial + 1}); later runs show it this reply as a pass. {summary or ''}".strip())
    except (EvalbotError, ValueError) as exc:
        ops.tell(user_id, origin, f":warning: {exc}")


def register(app: App, deps: SlackDeps) -> None:
    """Attach the digest's judge buttons."""
    ops = ops_for(app, deps)
    app.action(BUTTONS)(ack=_ack, lazy=[guarded(ops, bind(judge_wrong, name="judge_wrong_clicked", ops=ops))])

"""Modal submissions: promote, edit and reject.

The submission is validated once (pure parsing and one case-file read, no Slack or git): a bad regex, a missing
expectation, a blank reason or a form opened on an older version is answered inside the modal (`response_action:
errors`); otherwise it is acked and, on the same listener thread after the ack, the commit runs and the maintainer
is told how it went where the modal was opened (the domain call re-checks the case inside the corpus lock).

Not a lazy listener: Bolt starts those alongside the ack on a copy of the request, so the lazy one would have to
validate again, and a change saved by someone else between the two validations would leave a submitter with a
plain ack and no answer at all. One validation decides both, so every submit gets exactly one answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App

from bot.core.errors import EvalbotError
from bot.slack.blocks import modals
from bot.slack.deps import SlackDeps
from bot.slack.flows.triage_ops import TriageOps, guarded, ops_for
from bot.slack.listeners import bind

Validate = Callable[[str, dict[str, Any]], tuple[Any, dict[str, str]]]


def submit(ack: Ack, body: dict[str, Any], *, ops: TriageOps, validate: Validate, act: Callable[[str, Any], str]) -> None:
    """A modal submission: the problems in what was typed shown in the modal; else ack, act and tell the maintainer."""
    user_id, view = body["user"]["id"], body["view"]
    plan, errors = validate(user_id, view)
    if errors or plan is None:
        ack(response_action="errors", errors=errors)
        return
    ack()  # Slack gets it now (process_before_response is off); what follows runs on after it
    guarded(ops, apply)(body=body, plan=plan, ops=ops, act=act)


def apply(body: dict[str, Any], plan: Any, *, ops: TriageOps, act: Callable[[str, Any], str]) -> None:
    """After the ack: act on the validated plan and tell the maintainer how it went."""
    user_id, view = body["user"]["id"], body["view"]
    origin = modals.Origin.load(view.get("private_metadata"))
    try:
        text = act(user_id, plan)
    except EvalbotError as exc:
        text = f":warning: {exc}"
    ops.tell(user_id, origin, text)


def promote(user_id: str, plan: Any, *, ops: TriageOps) -> str:
    """Promote as a validated promote form says."""
    return ops.promote(user_id=user_id, ref=plan.case_id, expect=plan.expect, title=plan.title, tags=plan.tags)


def edit(user_id: str, plan: Any, *, ops: TriageOps) -> str:
    """Save a validated edit form."""
    return ops.edit(user_id=user_id, plan=plan)


def reject(user_id: str, plan: tuple[str, str], *, ops: TriageOps) -> str:
    """Reject the candidate with the reason typed."""
    return ops.reject(user_id=user_id, ref=plan[0], reason=plan[1])


def plan_edit(_user: str, view: dict[str, Any], *, ops: TriageOps) -> tuple[Any, dict[str, str]]:
    """`TriageOps.plan_edit` as a `Validate` (it needs no user)."""
    return ops.plan_edit(view)


def plan_reject(_user: str, view: dict[str, Any], *, ops: TriageOps) -> tuple[Any, dict[str, str]]:
    """`TriageOps.plan_reject` as a `Validate`."""
    return ops.plan_reject(view)


def register(app: App, deps: SlackDeps) -> None:
    """Attach the promote, edit and reject modal submissions."""
    ops = ops_for(app, deps)
    for callback_id, validate, act in (
        (modals.PROMOTE_VIEW, ops.plan_promotion, promote),
        (modals.EDIT_VIEW, bind(plan_edit, ops=ops), edit),
        (modals.REJECT_VIEW, bind(plan_reject, ops=ops), reject),
    ):
        app.view(callback_id)(bind(submit, ops=ops, validate=validate, act=bind(act, ops=ops)))

"""Modal submissions: promote, edit and reject.

The ack validates what was typed (pure parsing and one case-file read, no Slack or git) and answers a bad regex,
a missing expectation or a blank reason inside the modal (`response_action: errors`). The commit runs in a lazy
listener, which Bolt starts alongside the ack: it validates again and acts only on valid input, then tells the
maintainer where the modal was opened.
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


def check(ack: Ack, body: dict[str, Any], *, validate: Validate) -> None:
    """The ack of a modal submission: the problems in what was typed shown in the modal, or a plain ack."""
    _, errors = validate(body["user"]["id"], body["view"])
    if errors:
        ack(response_action="errors", errors=errors)
    else:
        ack()


def apply(body: dict[str, Any], *, ops: TriageOps, validate: Validate, act: Callable[[str, Any], str]) -> None:
    """After the ack: validate again, act on valid input and tell the maintainer how it went."""
    user_id, view = body["user"]["id"], body["view"]
    plan, errors = validate(user_id, view)
    if errors or plan is None:
        return  # the ack showed the problems in the modal
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


def _submission(ops: TriageOps, validate: Validate, act: Callable[[str, Any], str]) -> tuple[Callable[..., None], Callable[..., None]]:
    """The (ack, lazy) pair of one modal: errors inline in the ack; the work, and the answer, after it."""
    # Bolt tells lazy listeners apart by name
    return bind(check, validate=validate), guarded(ops, bind(apply, name=f"apply_{act.__name__}", ops=ops, validate=validate, act=act))


def register(app: App, deps: SlackDeps) -> None:
    """Attach the promote, edit and reject modal submissions."""
    ops = ops_for(app, deps)
    for callback_id, validate, act in (
        (modals.PROMOTE_VIEW, ops.plan_promotion, promote),
        (modals.EDIT_VIEW, bind(plan_edit, ops=ops), edit),
        (modals.REJECT_VIEW, bind(plan_reject, ops=ops), reject),
    ):
        ack_with_errors, lazy_apply = _submission(ops, validate, bind(act, ops=ops))
        app.view(callback_id)(ack=ack_with_errors, lazy=[lazy_apply])

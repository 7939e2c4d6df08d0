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

Validate = Callable[[str, dict[str, Any]], tuple[Any, dict[str, str]]]


def _submission(ops: TriageOps, validate: Validate, act: Callable[[str, Any], str]) -> tuple[Callable[..., None], Callable[..., None]]:
    """The (ack, lazy) pair of one modal: errors inline in the ack; the work, and the answer, after it."""

    def check(ack: Ack, body: dict[str, Any]) -> None:
        _, errors = validate(body["user"]["id"], body["view"])
        if errors:
            ack(response_action="errors", errors=errors)
        else:
            ack()

    def apply(body: dict[str, Any]) -> None:
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

    apply.__name__ = f"apply_{act.__name__}"  # Bolt tells lazy listeners apart by name
    return check, guarded(ops, apply)


def register(app: App, deps: SlackDeps) -> None:
    """Attach the promote, edit and reject modal submissions."""
    ops = ops_for(app, deps)

    def promote(user_id: str, plan: Any) -> str:
        return ops.promote(user_id=user_id, ref=plan.case_id, expect=plan.expect, title=plan.title, tags=plan.tags)

    def edit(user_id: str, plan: Any) -> str:
        return ops.edit(user_id=user_id, plan=plan)

    def reject(user_id: str, plan: tuple[str, str]) -> str:
        return ops.reject(user_id=user_id, ref=plan[0], reason=plan[1])

    for callback_id, validate, act in (
        (modals.PROMOTE_VIEW, ops.plan_promotion, promote),
        (modals.EDIT_VIEW, lambda _user, view: ops.plan_edit(view), edit),
        (modals.REJECT_VIEW, lambda _user, view: ops.plan_reject(view), reject),
    ):
        check, apply = _submission(ops, validate, act)
        app.view(callback_id)(ack=check, lazy=[apply])

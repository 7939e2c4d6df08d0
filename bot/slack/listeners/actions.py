"""Buttons: [Promote…] [Reject…] on the capture reply and on `show`, [Edit…] on `show`, and list paging.

Each button is acked at once; the lazy listener checks the maintainer and opens the modal with the click's
trigger_id, or answers the clicker alone (ephemeral) with why not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, Respond

from bot.core.errors import EvalbotError
from bot.slack.blocks import capture as blocks
from bot.slack.blocks import triage as tb
from bot.slack.blocks.modals import Origin
from bot.slack.deps import SlackDeps
from bot.slack.flows.triage_ops import TriageOps, guarded, ops_for
from bot.slack.listeners import bind


def _ack(ack: Ack) -> None:
    ack()


def click(body: dict[str, Any]) -> tuple[str, str, Origin]:
    """(user id, the button's value, where it was clicked) of a block_actions payload."""
    action = (body.get("actions") or [{}])[0]
    container = body.get("container") or {}
    message = body.get("message") or {}
    origin = Origin(
        case_id=str(action.get("value") or ""),
        channel=container.get("channel_id") or (body.get("channel") or {}).get("id"),
        thread_ts=message.get("thread_ts") or container.get("thread_ts"),
        response_url=body.get("response_url"),
    )
    return body["user"]["id"], origin.case_id, origin


def open_from_button(body: dict[str, Any], *, ops: TriageOps, open_modal: Callable[..., None], with_reason: bool = False) -> None:
    """Open `open_modal` for the clicked case (a duplicate's reason filled in), or tell the clicker why not."""
    user_id, ref, origin = click(body)
    extra: dict[str, Any] = {}
    if with_reason:
        duplicate = blocks.duplicate_in_block_id((body.get("actions") or [{}])[0].get("block_id"))
        extra["reason"] = f"duplicate of {duplicate}" if duplicate else None
    try:
        open_modal(user_id=user_id, trigger_id=body["trigger_id"], ref=ref, origin=origin, **extra)
    except EvalbotError as exc:
        ops.tell(user_id, origin, f":warning: {exc}")


def turn_page(body: dict[str, Any], respond: Respond, *, ops: TriageOps) -> None:
    """Replace the listing with the page the button names."""
    which, page = tb.parse_page_value((body.get("actions") or [{}])[0].get("value") or "")
    rows, total = ops.listing(which=which, page=page)
    respond(text=f"{which}: {total}", blocks=tb.listing_blocks(rows, total=total, which=which, page=page),
            response_type="ephemeral", replace_original=True)


def _opener(ops: TriageOps, open_modal: Callable[..., None], *, with_reason: bool = False) -> Callable[..., None]:
    # Bolt tells lazy listeners apart by name
    opener = bind(open_from_button, name=f"open_{open_modal.__name__}", ops=ops, open_modal=open_modal, with_reason=with_reason)
    return guarded(ops, opener)


def register(app: App, deps: SlackDeps) -> None:
    """Attach the triage buttons."""
    ops = ops_for(app, deps)
    app.action(blocks.PROMOTE_ACTION)(ack=_ack, lazy=[_opener(ops, ops.open_promote)])
    app.action(blocks.REJECT_ACTION)(ack=_ack, lazy=[_opener(ops, ops.open_reject, with_reason=True)])
    app.action(blocks.EDIT_ACTION)(ack=_ack, lazy=[_opener(ops, ops.open_edit)])
    app.action(tb.LIST_PAGE_ACTION)(ack=_ack, lazy=[guarded(ops, bind(turn_page, ops=ops))])

"""What every triage surface (slash command, buttons, modals) does around the domain call.

`TriageOps` checks the maintainer, opens the modals, validates what was typed into them (cheap: pure parsing and
one file read, so it runs inside the ack), runs `bot.triage.decisions` as the maintainer, updates the capture reply in the
thread (`capture.reply_of` + chat.update) and tells the maintainer how it went. One per Bolt app (`ops_for`).
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from weakref import WeakKeyDictionary

from pydantic import BaseModel
from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.capture.candidate import reply_of
from bot.core.errors import EvalbotError, SlackRefusedError
from bot.corpus.files import case_digest
from bot.corpus.gitrepo import Author
from bot.corpus.refresh import current_listing
from bot.corpus.schema import Case
from bot.corpus.similarity import NearDuplicate, near_duplicates
from bot.slack.blocks import capture as blocks
from bot.slack.blocks import modals
from bot.slack.blocks import triage as tb
from bot.slack.deps import SlackDeps
from bot.slack.flows.notify import tell_user
from bot.slack.flows.permissions import Maintainers
from bot.store.tables import CaseIndex, session_scope
from bot.triage import decisions as triage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PromotionPlan:
    """A validated promote form: which candidate, and what to write."""

    case_id: str
    expect: list[BaseModel]
    title: str
    tags: list[str]


@dataclass(frozen=True)
class EditPlan:
    """A validated edit form, and the version of the case it was opened on."""

    case_id: str
    title: str
    tags: list[str]
    expect: list[BaseModel]
    digest: str | None = None


class TriageOps:
    """Triage for the Slack edge: permissions, modals, validation, the domain call, the card and the reply."""

    def __init__(self, deps: SlackDeps, client: WebClient):
        self.deps = deps
        self.rt = deps.runtime
        self.client = client
        self.maintainers = Maintainers(self.rt.settings.maintainers, client)
        self.judge = triage.rubric_judge(self.rt.settings)

    # -- reads

    def case(self, ref: str) -> Case:
        """The case (or candidate) whose id starts with `ref`."""
        return self.rt.corpus.get(ref)

    def listing(self, *, which: str, page: int) -> tuple[list[CaseIndex], int]:
        """One page of the index (brought up to date with the files first), newest first, and the total."""
        with session_scope(self.rt.engine) as session:
            rows, total, _ = current_listing(session, self.rt.corpus, status=tb.LISTS[which], limit=tb.PAGE_SIZE,
                                             offset=(page - 1) * tb.PAGE_SIZE)
            return rows, total

    def author(self, user_id: str) -> Author:
        """The Slack user as a commit author, with their display name."""
        return Author(user_id=user_id, name=self.deps.source.user_name(user_id))

    # -- modals (called after the ack, with a trigger_id that lives 3 s)

    def open_promote(self, *, user_id: str, trigger_id: str, ref: str, origin: modals.Origin) -> None:
        """Open the promote modal for a candidate, prefilled with capture's suggestions."""
        self.maintainers.require(user_id)
        case = triage.promotable(self.rt.corpus, triage.locate(self.rt.corpus, ref))
        triage.preview_promotion(case, actor=Author(user_id), expect=case.suggested_expect or [_PLACEHOLDER])
        self._open(trigger_id, modals.promote_modal(case, _for(origin, case)))

    def open_reject(self, *, user_id: str, trigger_id: str, ref: str, origin: modals.Origin, reason: str | None = None) -> None:
        """Open the reject modal (reason prefilled when known, e.g. a near-duplicate)."""
        self.maintainers.require(user_id)
        case = triage.rejectable(self.rt.corpus, triage.locate(self.rt.corpus, ref))
        self._open(trigger_id, modals.reject_modal(case, _for(origin, case), reason=reason))

    def open_edit(self, *, user_id: str, trigger_id: str, ref: str, origin: modals.Origin) -> None:
        """Open the edit modal with the case's current values."""
        self.maintainers.require(user_id)
        case = triage.editable(self.rt.corpus, triage.locate(self.rt.corpus, ref))
        self._open(trigger_id, modals.edit_modal(case, replace(_for(origin, case), digest=case_digest(case))))

    def _open(self, trigger_id: str, view: dict[str, Any]) -> None:
        try:
            self.client.views_open(trigger_id=trigger_id, view=view)
        except SlackApiError as exc:
            error = exc.response.get("error", "unknown_error")
            raise SlackRefusedError(f"Slack did not open the form ({error}); try again.") from None

    # -- validation of modal submissions (inside the ack: no Slack, no git)

    def plan_promotion(self, user_id: str, view: dict[str, Any]) -> tuple[PromotionPlan | None, dict[str, str]]:
        """The promotion a submitted promote modal asks for, or the errors to show in it."""
        form, errors = modals.read_expectation_form(_values(view))
        if errors:
            return None, errors
        try:
            candidate = triage.promotable(self.rt.corpus, triage.locate(self.rt.corpus, modals.Origin.load(view.get("private_metadata")).case_id))
            raw = modals.merged_expectations(form.expect, modals.split_expectations(candidate.suggested_expect).kept, [])
            if not raw:
                return None, {modals.RUBRIC: modals.NO_EXPECTATION}
            expect = triage.parse_expectations(raw)
            triage.preview_promotion(candidate, actor=Author(user_id), expect=expect, title=form.title, tags=form.tags)
        except EvalbotError as exc:
            return None, {modals.RUBRIC: str(exc)}
        return PromotionPlan(case_id=candidate.id, expect=expect, title=form.title, tags=form.tags), {}

    def plan_edit(self, view: dict[str, Any]) -> tuple[EditPlan | None, dict[str, str]]:
        """The edit a submitted edit modal asks for, or the errors to show in it."""
        form, errors = modals.read_expectation_form(_values(view))
        if errors:
            return None, errors
        try:
            origin = modals.Origin.load(view.get("private_metadata"))
            current = triage.editable(self.rt.corpus, triage.locate(self.rt.corpus, origin.case_id), digest=origin.digest)
            before = current.expect if current.status == "promoted" else current.suggested_expect
            raw = modals.merged_expectations(form.expect, modals.split_expectations(before).kept, before)
            if not raw and current.status == "promoted":
                return None, {modals.RUBRIC: modals.NO_EXPECTATION}
            expect = triage.parse_expectations(raw)
            triage.preview_edit(current, title=form.title, tags=form.tags, expect=expect)
        except EvalbotError as exc:
            return None, {modals.RUBRIC: str(exc)}
        return EditPlan(case_id=current.id, title=form.title, tags=form.tags, expect=expect, digest=origin.digest), {}

    @staticmethod
    def plan_reject(view: dict[str, Any]) -> tuple[tuple[str, str] | None, dict[str, str]]:
        """(case id, reason) of a submitted reject modal, or the errors to show in it."""
        reason, errors = modals.read_reason(_values(view))
        if errors:
            return None, errors
        try:
            return (modals.Origin.load(view.get("private_metadata")).case_id, reason), {}
        except EvalbotError as exc:
            return None, {modals.REASON: str(exc)}

    # -- writes (after the ack)

    def promote(self, *, user_id: str, ref: str, expect: list[BaseModel], title: str | None = None,
                tags: list[str] | None = None) -> str:
        """Promote as the maintainer, update the capture card; returns what to tell them."""
        self.maintainers.require(user_id)
        with session_scope(self.rt.engine) as session:
            result = triage.promote(corpus=self.rt.corpus, session=session, ref=ref, actor=self.author(user_id),
                                    expect=expect, title=title, tags=tags, judge=self.judge)
        self.refresh_card(result.case, outcome=tb.promoted_outcome(result.case))
        return tb.promoted_message(result)

    def reject(self, *, user_id: str, ref: str, reason: str) -> str:
        """Reject as the maintainer, update the capture card; returns what to tell them."""
        self.maintainers.require(user_id)
        with session_scope(self.rt.engine) as session:
            result = triage.reject_candidate(corpus=self.rt.corpus, session=session, ref=ref,
                                             actor=self.author(user_id), reason=reason)
        self.refresh_card(result.case, outcome=tb.rejected_outcome(result.rejection))
        return tb.rejected_message(result)

    def edit(self, *, user_id: str, plan: EditPlan) -> str:
        """Edit as the maintainer, refresh the capture card; returns what to tell them."""
        self.maintainers.require(user_id)
        before = triage.editable(self.rt.corpus, triage.locate(self.rt.corpus, plan.case_id))
        with session_scope(self.rt.engine) as session:
            case = triage.edit(corpus=self.rt.corpus, session=session, ref=plan.case_id, actor=self.author(user_id),
                               title=plan.title, tags=plan.tags, expect=plan.expect, digest=plan.digest)
        if case == before:
            return tb.edited_message(case, changed=False)
        warnings = triage.catches_failure(case, case.expect, judge=self.judge) if case.expect != before.expect else []
        dupes = near_duplicates(case, self.rt.corpus) if case.status == "candidate" else []
        self.refresh_card(case, outcome=tb.promoted_outcome(case), dupes=dupes)
        return tb.edited_message(case, changed=True, warnings=warnings, dupes=dupes)

    def refresh_card(self, case: Case, *, outcome: str | None, dupes: list[NearDuplicate] | None = None) -> None:
        """Re-render the bot's capture reply in the thread, if it posted one (a failure is logged, not fatal)."""
        where = reply_of(self.rt.engine, case_id=case.id)
        if where is None:
            return
        channel, ts = where
        try:
            self.client.chat_update(channel=channel, ts=ts, text=blocks.capture_text(case),
                                    blocks=blocks.case_card(case, outcome=outcome, near_duplicates=dupes or ()))
        except SlackApiError as exc:
            log.warning("could not update the capture reply of %s: %s", case.id, exc.response.get("error"))

    def tell(self, user_id: str, origin: modals.Origin, text: str) -> None:
        """Tell the maintainer privately, where the modal or the button was."""
        tell_user(self.client, user=user_id, text=text, channel=origin.channel, thread_ts=origin.thread_ts,
                  response_url=origin.response_url)


# A stand-in expectation: opening the promote modal only checks the candidate could be promoted at all.
_PLACEHOLDER = triage.parse_expectations([{"rubric": "placeholder"}])[0]


def _values(view: dict[str, Any]) -> dict[str, Any]:
    return ((view.get("state") or {}).get("values")) or {}


def _for(origin: modals.Origin, case: Case) -> modals.Origin:
    return modals.Origin(case_id=case.id, channel=origin.channel, thread_ts=origin.thread_ts, response_url=origin.response_url)


FAILED = ":x: That failed on my side (the error is in evalbot's log). Check with `show` before trying again."


def guarded(ops: TriageOps, func: Callable[..., None]) -> Callable[..., None]:
    """Wrap a lazy listener (or what a listener does after its ack) so an unexpected error is logged with its
    traceback and the user hears of it.

    Bolt catches a lazy listener's exception itself and logs one line without the traceback; it never reaches
    `@app.error`. Listeners still turn EvalbotError into their own answers; this is for everything else.
    """

    @functools.wraps(func)  # Bolt reads the wrapped function's argument names to inject them
    def wrapper(**kwargs: Any) -> None:
        try:
            func(**kwargs)
        except Exception:
            body = kwargs.get("body") or {}
            log.exception("unhandled error in Slack listener %s (%s)", func.__name__, body.get("type") or body.get("command"))
            user = body.get("user_id") or (body.get("user") or {}).get("id")
            if user:
                ops.tell(user, _origin_of(body), FAILED)

    return wrapper


def _origin_of(body: dict[str, Any]) -> modals.Origin:
    """Where to answer the user of a slash command, button or modal payload."""
    response_url = body.get("response_url")
    if response_url is None and body.get("view"):
        try:
            return modals.Origin.load(body["view"].get("private_metadata"))
        except EvalbotError:
            pass
    channel = body.get("channel_id") or (body.get("container") or {}).get("channel_id")
    return modals.Origin(case_id="", channel=channel, response_url=response_url)


_OPS: WeakKeyDictionary[App, TriageOps] = WeakKeyDictionary()
_OPS_GUARD = threading.Lock()


def ops_for(app: App, deps: SlackDeps) -> TriageOps:
    """The app's TriageOps, shared by the command, action and view listeners (one maintainer cache)."""
    with _OPS_GUARD:
        if app not in _OPS:
            _OPS[app] = TriageOps(deps, app.client)
        return _OPS[app]

"""Triage: promote a candidate to a case, reject it, or edit a case. Called by the CLI and by Slack.

Each operation reads, checks and writes inside the corpus lock (a compare-and-set on the case's state: a
refusal names who decided first, and when, and changes nothing), is one corpus commit authored by the
maintainer, and writes the database only once that commit exists.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pydantic import BaseModel, TypeAdapter, ValidationError
from sqlmodel import Session

from bot.core.clock import utcnow
from bot.core.errors import CaseNotFoundError, CaseStateError, InvalidCaseError, PermissionDeniedError
from bot.corpus import index as caseindex
from bot.corpus.files import Corpus, case_digest
from bot.corpus.gitrepo import Author
from bot.corpus.ids import ID_LENGTH, check_prefix
from bot.corpus.schema import Case, Expectation, Rubric
from bot.corpus.similarity import NearDuplicate, near_duplicates
from bot.digest import outbox
from bot.evals.graders import grade_deterministic, is_deterministic
from bot.store.tables import CaptureReply, Rejection
from bot.triage import history

if TYPE_CHECKING:
    from bot.core.settings import Settings

log = logging.getLogger(__name__)
_EXPECTATIONS = TypeAdapter(list[Expectation])

JUDGE_TIMEOUT_S = 30.0
RubricJudge = Callable[[Case, str], "bool | None"]
"""Hook for the LLM judge: does the case's recorded, flagged reply satisfy this rubric? None when it cannot tell."""


@dataclass
class PromoteResult:
    """The promoted case and what the maintainer should know about it."""

    case: Case
    warnings: list[str] = field(default_factory=list)
    near_duplicates: list[NearDuplicate] = field(default_factory=list)


@dataclass
class RejectResult:
    """The removed candidate (as it was) and the rejection recorded for it."""

    case: Case
    rejection: Rejection


def rubric_judge(settings: Settings) -> RubricJudge | None:
    """The judge that checks rubric expectations against the flagged reply at promotion; None without an API key.

    This is the hook between triage and the eval engine: `bot.evals.judge.flagged_reply_judge` (the LLM judge run
    synchronously, one call per rubric, after the commit). Deterministic expectations need no judge.
    """
    from bot.evals.judge import flagged_reply_judge  # late: only the edges that promote need the Anthropic client

    return flagged_reply_judge(settings, timeout=JUDGE_TIMEOUT_S)


def require_maintainer(user_id: str, *, allowed_users: Iterable[str] | None, who: str) -> None:
    """Refuse `user_id` unless maintainers are unrestricted (None) or the user is among them."""
    if allowed_users is None:
        return
    if user_id not in set(allowed_users):
        raise PermissionDeniedError(f"only maintainers can do this: {who}. Ask one of them, or an admin to add you to EVALBOT_MAINTAINERS.")


def parse_expectations(data: Sequence[object]) -> list[BaseModel]:
    """Validate raw expectation dicts (as in YAML), raising InvalidCaseError naming the bad entry."""
    try:
        return list(_EXPECTATIONS.validate_python(list(data)))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"][:1])
        raise InvalidCaseError(f"expectation {where}: {first['msg'].removeprefix('Value error, ')}") from None


def catches_failure(case: Case, expect: Sequence[BaseModel], *, judge: RubricJudge | None = None) -> list[str]:
    """Warnings when no expectation would fail on the recorded, flagged reply (so the case catches nothing).

    Deterministic expectations are graded here; rubrics only when a `judge` is given (see `rubric_judge`).
    """
    recorded = case.flagged_reply
    deterministic = [e for e in expect if is_deterministic(e)]
    rubrics = [e.rubric for e in expect if isinstance(e, Rubric)] if judge is not None else []
    if recorded is None or not (deterministic or rubrics):
        return []
    if any(not grade_deterministic(e, recorded).passed for e in deterministic):
        return []
    verdicts = [_judged(judge, case, rubric) for rubric in rubrics] if judge is not None else []
    if any(verdict is False for verdict in verdicts):
        return []
    if rubrics and not deterministic:
        if any(verdict is None for verdict in verdicts):
            return []  # the judge could not tell: no claim either way
        return ["The judge finds that the flagged reply satisfies the rubric, so this case would not have caught "
                "the failure it was flagged for. Make the rubric say what was wrong with that reply."]
    return [
        "None of the deterministic expectations fails on the flagged reply, so this case would not have caught "
        "the failure it was flagged for. Tighten them, or rely on the rubric."
    ]


def _judged(judge: RubricJudge, case: Case, rubric: str) -> bool | None:
    try:
        return judge(case, rubric)
    except Exception:  # noqa: BLE001 - the check is advice given after the commit; it must not fail the promotion
        log.warning("judging the rubric of %s against its flagged reply failed", case.id, exc_info=True)
        return None


def promote(
    *,
    corpus: Corpus,
    session: Session,
    ref: str,
    actor: Author,
    expect: Sequence[BaseModel],
    title: str | None = None,
    tags: Sequence[str] | None = None,
    judge: RubricJudge | None = None,
) -> PromoteResult:
    """Move a candidate to cases/ with its expectations, in one commit authored by `actor`.

    A compare-and-set: inside the corpus lock the case must still be a candidate, else nothing changes and
    the refusal says who decided first. The index is updated once the commit exists.
    """
    case_id = locate(corpus, ref)
    with corpus.change(author=actor) as tx:
        case = preview_promotion(promotable(corpus, case_id), actor=actor, expect=expect, title=title, tags=tags)
        tx.message = f"Promote {case.id}: {case.title}"
        tx.write(case)

        def record() -> None:
            caseindex.upsert(session, case)
            outbox.record_promotion(session, case)  # the flaggers' follow-up, in this transaction (sent by the outbox)

        tx.after_commit(lambda: _recorded(session, record))
    log.info("promoted %s with %d expectation(s) by %s", case.id, len(case.expect), actor.user_id,
             extra={"event": "promote", "case_id": case.id, "user": actor.user_id})
    return PromoteResult(
        case=case, warnings=catches_failure(case, case.expect, judge=judge), near_duplicates=near_duplicates(case, corpus)
    )


def locate(corpus: Corpus, ref: str) -> str:
    """The id of the case `ref` names. A full id is taken as it is: whether that case is still there, and
    what became of it if not, is checked inside the corpus lock (`promotable`, `rejectable`, `editable`)."""
    checked = check_prefix(ref)
    if len(checked) == ID_LENGTH:
        return checked
    return corpus.resolve(checked)[0]


def _current(corpus: Corpus, case_id: str) -> Case:
    case = corpus.find(case_id)
    if case is None:
        if history.last_decision(corpus, case_id) is None:
            raise CaseNotFoundError(f"no case has an id starting with '{case_id}' (see `list`)")
        raise CaseStateError(history.gone(corpus, case_id))
    return case


def promotable(corpus: Corpus, case_id: str) -> Case:
    """The candidate `case_id` as it is now; CaseStateError naming who decided on it when it is not one."""
    case = _current(corpus, case_id)
    if case.status != "candidate":
        raise CaseStateError(f"{case.id} is already a promoted case ({history.promotion(case).told()}): use edit to change it")
    return case


def rejectable(corpus: Corpus, case_id: str) -> Case:
    """The candidate `case_id` as it is now; CaseStateError naming who decided on it when it is not one."""
    case = _current(corpus, case_id)
    if case.status != "candidate":
        raise CaseStateError(f"{case.id} is a promoted case ({history.promotion(case).told()}); only candidates can be rejected")
    return case


def editable(corpus: Corpus, case_id: str, *, digest: str | None = None) -> Case:
    """The case `case_id` as it is now; CaseStateError when it changed since a form showed it as `digest`."""
    case = _current(corpus, case_id)
    if digest is not None and case_digest(case) != digest:
        decision = history.last_decision(corpus, case_id)
        if case.status == "promoted" and (decision is None or decision.verb == "promoted"):
            decision = history.promotion(case)
        what = decision.told() if decision is not None else "changed"
        raise CaseStateError(f"{case.id} changed since you opened the form ({what}); nothing was saved. "
                             "Open it again to edit the current version.")
    return case


def _recorded(session: Session, write: Callable[[], object]) -> None:
    """Write to the database once the corpus commit exists, and commit (still inside the corpus lock)."""
    write()
    session.commit()


def preview_promotion(
    candidate: Case, *, actor: Author, expect: Sequence[BaseModel], title: str | None = None, tags: Sequence[str] | None = None
) -> Case:
    """The case `promote` would write (validated, nothing written): the cheap check a form runs before submitting."""
    if candidate.status != "candidate":
        raise CaseStateError(f"{candidate.id} is already a promoted case ({history.promotion(candidate).told()}): use edit to change it")
    if not expect:
        raise InvalidCaseError("a promoted case needs at least one expectation (a rubric, or a must/must-not contain line)")
    data = candidate.model_dump()
    data.update(
        status="promoted",
        expect=[e.model_dump() for e in expect],
        suggested_expect=[],
        promoted_by=actor.user_id,
        promoted_at=utcnow(),
    )
    if title is not None:
        data["title"] = title.strip()
    if tags is not None:
        data["tags"] = list(tags)
    return _validated(data)


def reject(*, corpus: Corpus, session: Session, ref: str, actor: Author, reason: str) -> Rejection:
    """Remove a candidate, keeping the reason in the commit message and the database."""
    return reject_candidate(corpus=corpus, session=session, ref=ref, actor=actor, reason=reason).rejection


def reject_candidate(*, corpus: Corpus, session: Session, ref: str, actor: Author, reason: str) -> RejectResult:
    """`reject`, also returning the candidate as it was (to show what was rejected).

    A compare-and-set like `promote`: the candidate must still be there, and still a candidate, inside the
    lock; the rejection row is written and the index row removed once the commit exists.
    """
    reason = (reason or "").strip()
    if not reason:
        raise InvalidCaseError("say why you reject it: reject ID <reason>")
    case_id = locate(corpus, ref)
    with corpus.change(author=actor) as tx:
        candidate = rejectable(corpus, case_id)
        tx.message = f"Reject {candidate.id}: {candidate.title}\n\nReason: {reason}"
        tx.delete(candidate)
        tx.record = True  # in a folder never committed, the decision is still a commit
        rejection = Rejection(
            case_id=candidate.id,
            title=candidate.title,
            channel=candidate.source.channel,
            ts=candidate.source.ts,
            rejected_by=actor.user_id,
            reason=reason,
        )

        def record() -> None:
            caseindex.remove(session, case_id=candidate.id)
            result.append(session.merge(rejection))
            outbox.record_rejection(session, candidate, rejected_by=actor.user_id, reason=reason)

        result: list[Rejection] = []
        tx.after_commit(lambda: _recorded(session, record))
    log.info("rejected %s by %s", candidate.id, actor.user_id, extra={"event": "reject", "case_id": candidate.id, "user": actor.user_id})
    return RejectResult(case=candidate, rejection=result[0])


def edit(
    *,
    corpus: Corpus,
    session: Session,
    ref: str,
    actor: Author,
    title: str | None = None,
    tags: Sequence[str] | None = None,
    expect: Sequence[BaseModel] | None = None,
    digest: str | None = None,
) -> Case:
    """Change a case's title, tags or expectations in one commit; unchanged input makes no commit.

    With `digest` (the `case_digest` of the version a form showed), a compare-and-set: if the case changed
    since, nothing is written and the refusal says who changed it.
    """
    case_id = locate(corpus, ref)
    with corpus.change(author=actor) as tx:
        current = editable(corpus, case_id, digest=digest)
        case = preview_edit(current, title=title, tags=tags, expect=expect)
        if case == current:
            return current
        tx.message = f"Edit {case.id}: {case.title}"
        tx.write(case)
        tx.after_commit(lambda: _recorded(session, lambda: caseindex.upsert(session, case)))
    log.info("edited %s by %s", case.id, actor.user_id, extra={"event": "edit", "case_id": case.id, "user": actor.user_id})
    return case


def preview_edit(
    current: Case, *, title: str | None = None, tags: Sequence[str] | None = None, expect: Sequence[BaseModel] | None = None
) -> Case:
    """The case `edit` would write (validated, nothing written); a candidate's expectations are its suggestions."""
    data = current.model_dump()
    if title is not None:
        data["title"] = title.strip()
    if tags is not None:
        data["tags"] = list(tags)
    if expect is not None:
        key = "expect" if current.status == "promoted" else "suggested_expect"
        data[key] = [e.model_dump() for e in expect]
    return _validated(data)


def capture_reply(session: Session, *, case_id: str) -> CaptureReply | None:
    """The bot's thread reply for a case, if it posted one."""
    return session.get(CaptureReply, case_id)


def _validated(data: dict) -> Case:
    try:
        return Case.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "case"
        raise InvalidCaseError(f"{loc}: {first['msg'].removeprefix('Value error, ')}") from None

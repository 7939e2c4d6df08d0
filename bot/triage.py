"""Triage: promote a candidate to a case, reject it, or edit a case. Called by the CLI and by Slack.

Each operation is one corpus commit authored by the maintainer, followed by the database update.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel, TypeAdapter, ValidationError
from sqlmodel import Session

from bot import caseindex
from bot.cases import Case, Expectation, utcnow
from bot.corpus import Corpus
from bot.errors import CaseStateError, InvalidCaseError, PermissionDeniedError
from bot.evals.graders import grade_deterministic, is_deterministic
from bot.gitrepo import Author
from bot.store import CaptureReply, Rejection

_EXPECTATIONS = TypeAdapter(list[Expectation])


@dataclass
class PromoteResult:
    """The promoted case and what the maintainer should know about it."""

    case: Case
    warnings: list[str] = field(default_factory=list)


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


def catches_failure(case: Case, expect: Sequence[BaseModel]) -> list[str]:
    """Warnings when the deterministic expectations would all pass on the recorded, flagged reply."""
    recorded = case.flagged_reply
    deterministic = [e for e in expect if is_deterministic(e)]
    if recorded is None or not deterministic:
        return []
    if any(not grade_deterministic(e, recorded).passed for e in deterministic):
        return []
    return [
        "None of the deterministic expectations fails on the flagged reply, so this case would not have caught "
        "the failure it was flagged for. Tighten them, or rely on the rubric."
    ]


def promote(
    *,
    corpus: Corpus,
    session: Session,
    ref: str,
    actor: Author,
    expect: Sequence[BaseModel],
    title: str | None = None,
    tags: Sequence[str] | None = None,
) -> PromoteResult:
    """Move a candidate to cases/ with its expectations, in one commit authored by `actor`."""
    candidate = corpus.get(ref)
    if candidate.status != "candidate":
        raise CaseStateError(f"{candidate.id} is already a promoted case: use edit to change it")
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
    case = _validated(data)
    with corpus.change(author=actor, message=f"Promote {case.id}: {case.title}") as tx:
        tx.write(case)
    caseindex.upsert(session, case)
    return PromoteResult(case=case, warnings=catches_failure(case, case.expect))


def reject(*, corpus: Corpus, session: Session, ref: str, actor: Author, reason: str) -> Rejection:
    """Remove a candidate, keeping the reason in the commit message and the database."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidCaseError("say why you reject it: reject ID <reason>")
    candidate = corpus.get(ref)
    if candidate.status != "candidate":
        raise CaseStateError(f"{candidate.id} is a promoted case; only candidates can be rejected")
    with corpus.change(author=actor, message=f"Reject {candidate.id}: {candidate.title}\n\nReason: {reason}") as tx:
        tx.delete(candidate)
    caseindex.remove(session, case_id=candidate.id)
    rejection = Rejection(
        case_id=candidate.id,
        title=candidate.title,
        channel=candidate.source.channel,
        ts=candidate.source.ts,
        rejected_by=actor.user_id,
        reason=reason,
    )
    return session.merge(rejection)


def edit(
    *,
    corpus: Corpus,
    session: Session,
    ref: str,
    actor: Author,
    title: str | None = None,
    tags: Sequence[str] | None = None,
    expect: Sequence[BaseModel] | None = None,
) -> Case:
    """Change a case's title, tags or expectations in one commit; unchanged input makes no commit."""
    current = corpus.get(ref)
    data = current.model_dump()
    if title is not None:
        data["title"] = title.strip()
    if tags is not None:
        data["tags"] = list(tags)
    if expect is not None:
        key = "expect" if current.status == "promoted" else "suggested_expect"
        data[key] = [e.model_dump() for e in expect]
    case = _validated(data)
    if case == current:
        return current
    with corpus.change(author=actor, message=f"Edit {case.id}: {case.title}") as tx:
        tx.write(case)
    caseindex.upsert(session, case)
    return case


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

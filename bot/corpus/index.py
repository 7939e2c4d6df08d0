"""Keeps the `case_index` table in step with the corpus files, and answers listing queries from it."""

from __future__ import annotations

from sqlmodel import Session, col, delete, func, select

from bot.corpus.files import Corpus
from bot.corpus.schema import Case
from bot.store.tables import CaseIndex


def index_row(case: Case) -> CaseIndex:
    """The index row describing `case`."""
    return CaseIndex(
        id=case.id,
        status=case.status,
        title=case.title,
        tags=list(case.tags),
        source_kind=case.source.kind,
        channel=case.source.channel,
        ts=case.source.ts,
        permalink=case.source.permalink,
        flag_count=max(1, len(case.source.flagged_by)),
        flagged_at=case.source.flagged_at,
        promoted_by=case.promoted_by,
        promoted_at=case.promoted_at,
        turns=len(case.conversation),
        expectations=len(case.expect),
    )


def upsert(session: Session, case: Case) -> None:
    """Record the current state of `case` in the index."""
    session.merge(index_row(case))


def remove(session: Session, *, case_id: str) -> None:
    """Drop a case from the index (its file is gone)."""
    session.exec(delete(CaseIndex).where(col(CaseIndex.id) == case_id))


def reindex(session: Session, corpus: Corpus) -> tuple[int, list[str]]:
    """Rebuild the index from the files; returns the number indexed and a message per unreadable file."""
    cases, problems = corpus.scan()
    session.exec(delete(CaseIndex))
    for case in cases:
        session.add(index_row(case))
    return len(cases), problems


def listing(session: Session, *, status: str | None = None, limit: int = 20, offset: int = 0) -> tuple[list[CaseIndex], int]:
    """Index rows newest first (by flag time), with the total count for paging."""
    query = select(CaseIndex)
    counted = select(func.count()).select_from(CaseIndex)
    if status:
        query = query.where(col(CaseIndex.status) == status)
        counted = counted.where(col(CaseIndex.status) == status)
    total = session.exec(counted).one()
    rows = session.exec(query.order_by(col(CaseIndex.flagged_at).desc(), col(CaseIndex.id)).offset(offset).limit(limit)).all()
    return list(rows), total

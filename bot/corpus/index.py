"""The `case_index` rows: what a case file is indexed as, single-row updates, and listing queries.

Bringing the whole index in step with the files is `bot.corpus.refresh`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, delete, func, select

from bot.corpus.schema import Case, Rubric
from bot.store import writes
from bot.store.tables import CaseIndex


def index_fields(case: Case) -> dict[str, Any]:
    """The column values of the index row describing `case` (what a bulk insert takes, without building a row)."""
    return dict(
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
        quarantined=bool(case.quarantined),
        judged=any(isinstance(e, Rubric) for e in case.expect),
    )


def index_row(case: Case) -> CaseIndex:
    """The index row describing `case`."""
    return CaseIndex(**index_fields(case))


def upsert(session: Session, case: Case) -> None:
    """Record the current state of `case` in the index."""
    session.merge(index_row(case))


def write(engine: Engine, case: Case) -> None:
    """Record `case` in the index at once: one upsert statement, committed as it completes (the capture path)."""
    writes.write(engine, writes.upsert(engine, CaseIndex, index_row(case).model_dump(), keys=["id"]))


def remove(session: Session, *, case_id: str) -> None:
    """Drop a case from the index (its file is gone)."""
    session.exec(delete(CaseIndex).where(col(CaseIndex.id) == case_id))


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

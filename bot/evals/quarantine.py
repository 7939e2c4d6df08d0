"""Quarantining a flaky case: a `quarantined: true` field in its case file, committed like any edit.

A quarantined case is still run and reported (so its pass rate keeps being measured), but `bot.evals.gate` never
fails a run because of it. Unquarantining removes the field.
"""

from __future__ import annotations

import logging

from sqlmodel import Session

from bot.core.errors import InvalidCaseError
from bot.corpus import index as caseindex
from bot.corpus.files import Corpus
from bot.corpus.gitrepo import Author
from bot.corpus.schema import Case

log = logging.getLogger(__name__)


def set_quarantine(*, corpus: Corpus, session: Session, ref: str, actor: Author, on: bool,
                   reason: str | None = None) -> tuple[Case, bool]:
    """Quarantine (`on`) or release a promoted case in one commit; returns the case and whether it changed."""
    current = corpus.get(ref)
    if current.status != "promoted":
        raise InvalidCaseError(f"{current.id} is a candidate: only promoted cases run, so only they can be quarantined")
    if bool(current.quarantined) == on:
        return current, False
    case = current.model_copy(update={"quarantined": True if on else None})
    verb = "Quarantine" if on else "Unquarantine"
    message = f"{verb} {case.id}: {case.title}" + (f"\n\n{reason}" if reason else "")
    with corpus.change(author=actor, message=message) as tx:
        tx.write(case)
    caseindex.upsert(session, case)
    log.info("%s %s by %s", verb.lower(), case.id, actor.user_id, extra={"event": verb.lower(), "case_id": case.id})
    return case, True

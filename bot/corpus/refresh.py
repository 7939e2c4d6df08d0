"""Keeps the database's case index current with the corpus files, parsing only what git says changed.

Files are the truth; the index (`case_index`) is what listings read. `refresh` compares the corpus with the
commit the index was built from (`index_state`): the files `git diff` names since that commit, the files
`git status` shows uncommitted now, and the ones that were uncommitted last time are parsed again (`changes`);
nothing else is. An index that is current costs one `git rev-parse` and one `git status`. A corpus outside git, an
index built from a commit git no longer knows (a force-push), or `full=True` rebuild the whole index, parsing
the files in parallel processes when there are many (`bot.corpus.bulk`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import insert
from sqlmodel import Session, col, delete, func, select

from bot.core.clock import utcnow
from bot.core.errors import EvalbotError
from bot.corpus import changes
from bot.corpus.bulk import map_chunks
from bot.corpus.changes import case_file
from bot.corpus.files import STATUS_DIRS, Corpus
from bot.corpus.index import index_fields, listing
from bot.store.tables import CaseIndex, IndexState

Mode = Literal["full", "incremental", "unchanged"]
__all__ = ["Refreshed", "case_file", "current_listing", "refresh"]


@dataclass
class Refreshed:
    """What a refresh did: how, how many files it parsed, the rows now indexed, and each unreadable file."""

    mode: Mode
    parsed: int
    indexed: int
    problems: list[str] = field(default_factory=list)


Kept = dict[str, tuple[Any, Any]]  # case id -> what the near-duplicate cache keeps of it (similarity.keep)


def _parse_chunk(root: str, items: list[tuple[str, str]]) -> tuple[list[dict[str, Any]], list[tuple[str, str]], Kept]:
    """Index rows of the readable files among (case id, status) `items`, (path, problem) for the others, and what
    the near-duplicate cache keeps of each readable one."""
    from bot.corpus import similarity  # rapidfuzz: not for a `corpus list` that has nothing to parse

    corpus = Corpus(Path(root))
    rows: list[dict[str, Any]] = []
    problems: list[tuple[str, str]] = []
    kept: Kept = {}
    for case_id, status in items:
        path = corpus.path_for(case_id, status)  # once: it checks for symbolic links, a stat or two each time
        stat = similarity.stat_key(path)  # before reading: a later change is noticed
        try:
            case = corpus.load(case_id, status, path=path)
        except EvalbotError as exc:
            problems.append((f"{STATUS_DIRS[status]}/{case_id}.yaml", str(exc)))
            continue
        rows.append(index_fields(case))
        if stat is not None:
            kept[case_id] = (stat, similarity.cache_entry(case))
    return rows, problems, kept


def _state(session: Session, corpus: Corpus) -> IndexState | None:
    return session.get(IndexState, str(corpus.root))


def _full(session: Session, corpus: Corpus) -> tuple[int, dict[str, str]]:
    items = sorted(corpus.ids().items())
    session.exec(delete(CaseIndex))
    problems: dict[str, str] = {}
    parsed = 0
    kept: Kept = {}
    for rows, chunk_problems, chunk_kept in map_chunks(corpus, items, _parse_chunk):
        _insert(session, rows)
        parsed += len(rows) + len(chunk_problems)
        problems.update(chunk_problems)
        kept.update(chunk_kept)
    from bot.corpus import similarity

    similarity.keep(corpus, kept)  # the capture worker's first warm reads these instead of every file again
    return parsed, problems


def _apply(session: Session, corpus: Corpus, paths: set[str], problems: dict[str, str]) -> int:
    """Re-read the cases behind `paths` (changed, added or removed files); returns how many files were read."""
    ids = {found[0] for found in map(case_file, paths) if found}
    parsed = 0
    for case_id in sorted(ids):
        for folder in STATUS_DIRS.values():
            problems.pop(f"{folder}/{case_id}.yaml", None)
        session.exec(delete(CaseIndex).where(col(CaseIndex.id) == case_id))
        # Like Corpus.ids(): when a file exists in both folders, the promoted one counts.
        on_disk = [status for status in STATUS_DIRS if corpus.path_for(case_id, status).is_file()]
        if not on_disk:
            continue
        rows, found, _ = _parse_chunk(str(corpus.root), [(case_id, on_disk[-1])])
        parsed += 1
        problems.update(found)
        _insert(session, rows)
    return parsed


def _insert(session: Session, rows: list[dict[str, Any]]) -> None:
    # A Core executemany on the session's connection: the ORM's bulk insert costs 4 times as much per row.
    if rows:
        session.connection().execute(insert(CaseIndex.__table__), rows)  # type: ignore[attr-defined]


def refresh(session: Session, corpus: Corpus, *, full: bool = False) -> Refreshed:
    """Bring the index in step with the files: incrementally when it can, in full when it must or is asked."""
    state = _state(session, corpus)
    view = changes.since(corpus, state.commit if state is not None else None, state.dirty if state is not None else ())
    changed = None if full else view.paths
    problems: dict[str, str] = dict(state.problems) if state is not None and changed is not None else {}
    if changed is None:
        mode: Mode = "full"
        parsed, problems = _full(session, corpus)
    elif changed:
        mode = "incremental"
        parsed = _apply(session, corpus, changed, problems)
    else:
        mode, parsed = "unchanged", 0
    if state is None:
        state = IndexState(root=str(corpus.root))
    if mode != "unchanged" or state.commit != view.head:
        state.commit = view.head
        state.dirty = sorted(view.dirty)
        state.problems = problems
        state.refreshed_at = utcnow()
        session.add(state)
    indexed = session.exec(select(func.count()).select_from(CaseIndex)).one()
    return Refreshed(mode=mode, parsed=parsed, indexed=indexed, problems=[problems[path] for path in sorted(problems)])


def current_listing(session: Session, corpus: Corpus, *, status: str | None = None, limit: int = 20,
                    offset: int = 0) -> tuple[list[CaseIndex], int, list[str]]:
    """A page of the index (newest first), its total and the unreadable files, after bringing it up to date."""
    problems = refresh(session, corpus).problems
    rows, total = listing(session, status=status, limit=limit, offset=offset)
    return rows, total, problems

"""Reads the case index without SQLAlchemy when it is already current with the files: the fast `corpus list`.

The index is current when its `index_state` names the corpus's HEAD, no case file is uncommitted now or was
uncommitted at the last refresh, and the schema is the newest: then `refresh` would parse nothing, and a page of
the listing is two queries through a plain DB-API connection (`bot.store.dbapi`). In every other case these
return None and the caller brings the index up to date through `bot.corpus.refresh` first, so what a listing
shows is always what the files say.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from bot.corpus import changes
from bot.corpus.files import Corpus
from bot.store import dbapi

T = TypeVar("T")


@dataclass(frozen=True)
class Listed:
    """One line of a listing: what `corpus list` prints of an index row."""

    id: str
    status: str
    flag_count: int
    flagged_at: datetime
    title: str
    tags: list[str]


@dataclass(frozen=True)
class Page:
    """A page of the index, newest first: its rows, how many match, and the unreadable files it skipped."""

    rows: list[Listed]
    total: int
    problems: list[str]


def page(url: str, corpus: Corpus, *, status: str | None = None, limit: int = 20, offset: int = 0) -> Page | None:
    """A page of a current index, or None when the index must be refreshed (or opened the ordinary way) first."""
    where, params = ("WHERE status = ?", [status]) if status else ("", [])

    def read(reader: dbapi.Reader) -> tuple[int, list[tuple[Any, ...]]]:
        total = reader.rows(f"SELECT count(*) FROM case_index {where}", params)[0][0]
        return int(total), reader.rows(f"SELECT id, status, flag_count, flagged_at, title, tags FROM case_index {where} "
                                       "ORDER BY flagged_at DESC, id LIMIT ? OFFSET ?", [*params, limit, offset])

    done = _read_current(url, corpus, read)
    if done is None:
        return None
    (total, found), problems = done
    rows = [Listed(id=row[0], status=row[1], flag_count=row[2], flagged_at=dbapi.as_datetime(row[3]), title=row[4],
                   tags=list(dbapi.as_json(row[5]))) for row in found]
    return Page(rows=rows, total=total, problems=problems)


def count(url: str, corpus: Corpus) -> tuple[int, list[str]] | None:
    """(rows indexed, unreadable files) of a current index, or None when a refresh has something to do."""
    return _read_current(url, corpus, lambda reader: int(reader.rows("SELECT count(*) FROM case_index")[0][0]))


def _read_current(url: str, corpus: Corpus, read: Callable[[dbapi.Reader], T]) -> tuple[T, list[str]] | None:
    """`read(reader)` and the unreadable files of a current index, or None when it is not current or cannot be
    read: a missing table, a dropped connection, anything the ordinary path will then report in one line."""
    with dbapi.connect(url) as reader:
        if reader is None:
            return None
        try:
            problems = _current_problems(reader, corpus)
            return None if problems is None else (read(reader), problems)
        except Exception:  # noqa: BLE001 - see the docstring
            return None


def _current_problems(reader: dbapi.Reader, corpus: Corpus) -> list[str] | None:
    """The unreadable files the current index skipped, or None when the index is not current."""
    if not reader.at_head():
        return None
    found = reader.rows('SELECT "commit", dirty, problems FROM index_state WHERE root = ?', [str(corpus.root)])
    if not found or found[0][0] is None:
        return None
    commit, dirty, problems = found[0][0], dbapi.as_json(found[0][1]), dbapi.as_json(found[0][2])
    view = changes.since(corpus, commit, dirty)
    if view.head != commit or view.paths:
        return None
    return [problems[path] for path in sorted(problems)]

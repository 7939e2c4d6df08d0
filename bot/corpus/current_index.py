"""Reads the case index without SQLAlchemy when it is already current with the files: the fast `corpus list`.

The index is current when its `index_state` names the corpus's HEAD, no case file is uncommitted now or was
uncommitted at the last refresh, and the schema is the newest: then `refresh` would parse nothing, and a page of
the listing is two queries through a plain DB-API connection (`bot.store.dbapi`). In every other case these
return None and the caller brings the index up to date through `bot.corpus.refresh` first, so what a listing
shows is always what the files say.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.corpus import changes
from bot.corpus.files import Corpus
from bot.store import dbapi


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
    with dbapi.connect(url) as reader:
        if reader is None:
            return None
        problems = _current_problems(reader, corpus)
        if problems is None:
            return None
        where, params = ("WHERE status = ?", [status]) if status else ("", [])
        try:
            total = reader.rows(f"SELECT count(*) FROM case_index {where}", params)[0][0]
            found = reader.rows(f"SELECT id, status, flag_count, flagged_at, title, tags FROM case_index {where} "
                                "ORDER BY flagged_at DESC, id LIMIT ? OFFSET ?", [*params, limit, offset])
        except Exception:  # noqa: BLE001 - the database went away mid-read: the ordinary path says so in one line
            return None
    rows = [Listed(id=row[0], status=row[1], flag_count=row[2], flagged_at=dbapi.as_datetime(row[3]), title=row[4],
                   tags=list(dbapi.as_json(row[5]))) for row in found]
    return Page(rows=rows, total=int(total), problems=problems)


def count(url: str, corpus: Corpus) -> tuple[int, list[str]] | None:
    """(rows indexed, unreadable files) of a current index, or None when a refresh has something to do."""
    with dbapi.connect(url) as reader:
        if reader is None:
            return None
        problems = _current_problems(reader, corpus)
        if problems is None:
            return None
        try:
            return int(reader.rows("SELECT count(*) FROM case_index")[0][0]), problems
        except Exception:  # noqa: BLE001 - as in `page`
            return None


def _current_problems(reader: dbapi.Reader, corpus: Corpus) -> list[str] | None:
    """The unreadable files the current index skipped, or None when the index is not current."""
    try:
        if not reader.at_head():
            return None
        found = reader.rows('SELECT "commit", dirty, problems FROM index_state WHERE root = ?', [str(corpus.root)])
    except Exception:  # noqa: BLE001 - a missing table or a dropped connection: the ordinary path will say which
        return None
    if not found or found[0][0] is None:
        return None
    commit, dirty, problems = found[0][0], dbapi.as_json(found[0][1]), dbapi.as_json(found[0][2])
    view = changes.since(corpus, commit, dirty)
    if view.head != commit or view.paths:
        return None
    return [problems[path] for path in sorted(problems)]

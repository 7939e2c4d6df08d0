"""A plain DB-API connection to the state database, for the read-only fast paths that need no SQLAlchemy.

Importing SQLAlchemy and SQLModel costs half a second; a command that reads a few rows of an index that is
already current (`corpus list`, a `corpus reindex` with nothing to do) reads them through Python's sqlite3 or
psycopg instead. `connect` opens nothing it would have to create: a database file that does not exist, an
in-memory URL or a server that refuses is None, and the caller takes the ordinary path, which creates, migrates
and explains what failed in one line.
"""

from __future__ import annotations

import json
import os
import sqlite3
import urllib.parse
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.store.migrations.heads import declared_head


@dataclass
class Reader:
    """An open DB-API connection and its placeholder (`?` for sqlite3, `%s` for psycopg)."""

    connection: Any
    mark: str

    def rows(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """The rows of `sql`, written with `?` placeholders whatever the driver."""
        cursor = self.connection.cursor()
        try:
            cursor.execute(sql.replace("?", self.mark), tuple(params))
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def at_head(self) -> bool:
        """Whether the schema is the newest (else the ordinary path migrates it first)."""
        head = declared_head()
        return head is not None and self.rows("SELECT version_num FROM alembic_version") == [(head,)]


def sqlite_path(url: str) -> str | None:
    """The file behind an `sqlite:///path` URL (relative to the working folder, as SQLAlchemy has it), else None."""
    if not url.startswith("sqlite:///"):
        return None
    path = url[len("sqlite:///"):].split("?", 1)[0]
    return path if path and path != ":memory:" else None


@contextmanager
def connect(url: str) -> Iterator[Reader | None]:
    """A read-only connection to the database at `url`, or None when only the ordinary path can open it."""
    reader: Reader | None = None
    try:
        reader = _open(url)
    except Exception:  # noqa: BLE001 - any failure here means "take the ordinary path", which reports it properly
        reader = None
    try:
        yield reader
    finally:
        if reader is not None:
            reader.connection.close()


def _open(url: str) -> Reader | None:
    path = sqlite_path(url)
    if path is not None:
        if not Path(path).is_file():
            return None
        uri = "file:" + urllib.parse.quote(os.path.abspath(path)) + "?mode=ro"
        return Reader(sqlite3.connect(uri, uri=True, timeout=30), "?")
    if url.startswith("postgresql+psycopg://"):
        import psycopg

        connection = psycopg.connect("postgresql://" + url[len("postgresql+psycopg://"):], connect_timeout=3,
                                     autocommit=True)
        return Reader(connection, "%s")
    return None


def as_json(value: Any) -> Any:
    """A JSON column's value: text on SQLite, already decoded by psycopg."""
    return json.loads(value) if isinstance(value, str) else value


def as_datetime(value: Any) -> datetime:
    """A datetime column's value: ISO text on SQLite, a datetime from psycopg."""
    return datetime.fromisoformat(value) if isinstance(value, str) else value

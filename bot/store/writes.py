"""Writes of one statement that commit as they complete: the writes next to the flag inbox's ack path.

On SQLite one writer lock serves the whole database, and a transaction holds it from its first write to its
commit. Inside a session that span includes Python (the ORM's flush bookkeeping, the commit call), and a thread
of the capture worker (32 of them share its interpreter lock) can wait there many milliseconds for its turn,
while the ack's insert waits for the lock. A single INSERT/UPDATE run in autocommit mode is its own transaction:
SQLite takes the lock, writes and commits inside the one `sqlite3_step`, with no Python in between. On
PostgreSQL it is one round trip instead of three (BEGIN, the statement, COMMIT), and it commits (and flushes the
WAL) as a transaction does. So a write done here is exactly as durable as one in `session_scope`.

`insert_ignore` and `upsert` build the dialect's `INSERT … ON CONFLICT`, so "write it unless it is there" and
"write or replace" are one statement too, not a read and a write.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Connection, CursorResult, Engine
from sqlalchemy.sql.dml import Insert, UpdateBase
from sqlmodel import SQLModel

AUTOCOMMIT = {"isolation_level": "AUTOCOMMIT", "preserve_rowcount": True}


def _table(model: type[SQLModel]) -> Table:
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return table


def _insert(engine: Engine | Connection, model: type[SQLModel], values: Mapping[str, Any]) -> Any:
    dialect = engine.dialect.name
    # Each dialect's insert is imported when used: PostgreSQL's pulls in all its drivers' modules (25 ms).
    if dialect == "sqlite":
        from sqlalchemy.dialects import sqlite

        return sqlite.insert(_table(model)).values(**values)
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(_table(model)).values(**values)
    raise NotImplementedError(f"INSERT … ON CONFLICT on {dialect}")


def insert_ignore(engine: Engine | Connection, model: type[SQLModel], values: Mapping[str, Any], *,
                  keys: Iterable[str]) -> Insert:
    """INSERT the row unless one with the same `keys` (a primary key or unique constraint) exists."""
    statement: Insert = _insert(engine, model, values).on_conflict_do_nothing(index_elements=list(keys))
    return statement


def upsert(engine: Engine | Connection, model: type[SQLModel], values: Mapping[str, Any], *,
           keys: Iterable[str]) -> Insert:
    """INSERT the row, or UPDATE the row with the same `keys` to these values."""
    keys = list(keys)
    statement = _insert(engine, model, values)
    updated = {name: statement.excluded[name] for name in values if name not in keys}
    result: Insert = statement.on_conflict_do_update(index_elements=keys, set_=updated)
    return result


def write(engine: Engine, statement: UpdateBase) -> int:
    """Run one INSERT/UPDATE/DELETE as its own transaction (committed when it returns); the rows it changed."""
    with engine.connect().execution_options(**AUTOCOMMIT) as connection:
        result: CursorResult[Any] = connection.execute(statement)
        return result.rowcount or 0

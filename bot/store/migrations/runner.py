"""Runs the alembic migrations programmatically against an engine (at start and for `evalbot db upgrade`).

Every command opens the database through `upgrade`, and importing alembic costs a quarter of a second, so a
database already at the newest revision is recognised without it: `upgrade` compares `alembic_version` with
`heads.declared_head` (read from the version files). Anything else goes through alembic.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from bot.store.migrations.heads import declared_head

if TYPE_CHECKING:
    from alembic.config import Config

HERE = Path(__file__).parent
# An arbitrary constant: replicas starting together on PostgreSQL take turns migrating.
_PG_MIGRATION_LOCK = 727_001


def _at_head(engine: Engine) -> bool:
    head_id = declared_head()
    if head_id is None:
        return False
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except DBAPIError as exc:
        if exc.connection_invalidated or "alembic_version" not in str(exc):
            raise
        return False  # a new database: no version table yet
    return rows == [head_id]


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Upgrade the database behind `engine` to `revision`."""
    if revision == "head" and _at_head(engine):
        return
    from alembic import command

    config = alembic_config(engine)
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
            connection.commit()
            try:
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
                connection.commit()
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_MIGRATION_LOCK})
                connection.commit()
        return
    from filelock import FileLock

    # SQLite has no advisory locks: processes sharing the file take turns through a lock file beside it.
    database = engine.url.database
    guard = FileLock(f"{database}.migrate.lock", timeout=120) if database and database != ":memory:" else nullcontext()
    with guard, engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def current(engine: Engine) -> str | None:
    """The database's current revision, or None before the first migration."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(HERE)).get_current_head()

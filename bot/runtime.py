"""Wires Settings to the corpus and the database, for every edge (CLI, scheduler, Slack)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine

from bot.config import Settings, get_settings
from bot.corpus import Corpus
from bot.store import advisory_lock, get_engine, migrate

CORPUS_LOCK_KEY = 727_002  # arbitrary, distinct from the migration lock


@dataclass
class Runtime:
    """What a command or a listener needs: settings, the corpus and a migrated database engine."""

    settings: Settings
    corpus: Corpus
    engine: Engine


def readiness(runtime: Runtime) -> dict[str, str]:
    """What keeps this process from serving: component -> problem (empty when ready)."""
    from sqlalchemy import text

    problems: dict[str, str] = {}
    try:
        with runtime.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - reported, not raised: this is a health probe
        problems["database"] = exc.__class__.__name__
    if not runtime.corpus.root.is_dir():
        problems["corpus"] = f"{runtime.corpus.root} is missing"
    return problems


def open_runtime(settings: Settings | None = None, *, migrate_db: bool = True) -> Runtime:
    """Build the runtime from Settings, migrating the database to the newest schema first."""
    settings = settings or get_settings()
    engine = get_engine(settings.database_url)
    if migrate_db:
        migrate(engine)
    corpus = Corpus(
        settings.corpus_path,
        push_remote=settings.git_push,
        # Replicas share the database: its lock serialises their corpus changes (pull, commit, push).
        shared_lock=(lambda: advisory_lock(engine, CORPUS_LOCK_KEY)) if settings.git_push else None,
    )
    return Runtime(settings=settings, corpus=corpus, engine=engine)

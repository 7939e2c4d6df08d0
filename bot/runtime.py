"""Wires Settings to the corpus and the database, for every edge (CLI, scheduler, Slack)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine

from bot.config import Settings, get_settings
from bot.corpus import Corpus
from bot.store import get_engine, migrate


@dataclass
class Runtime:
    """What a command or a listener needs: settings, the corpus and a migrated database engine."""

    settings: Settings
    corpus: Corpus
    engine: Engine


def open_runtime(settings: Settings | None = None, *, migrate_db: bool = True) -> Runtime:
    """Build the runtime from Settings, migrating the database to the newest schema first."""
    settings = settings or get_settings()
    engine = get_engine(settings.database_url)
    if migrate_db:
        migrate(engine)
    corpus = Corpus(settings.corpus_path, push_remote=settings.git_push)
    return Runtime(settings=settings, corpus=corpus, engine=engine)

"""Wires Settings to the corpus and the database, for every edge (CLI, scheduler, Slack)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.core.errors import ConfigError, DatabaseUnavailableError
from bot.core.settings import Settings, get_settings
from bot.corpus.files import Corpus

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

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


def _where(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def open_database(url: str, *, migrate_db: bool = True) -> Engine:
    """The engine for `url`, migrated; an unreachable or unopenable database is one DatabaseUnavailableError."""
    from sqlalchemy.exc import DBAPIError, OperationalError

    from bot.store.tables import get_engine, migrate

    try:
        engine = get_engine(url)
        if migrate_db:
            migrate(engine)
        else:
            with engine.connect():
                pass
    except (OperationalError, DBAPIError) as exc:
        reason = str(exc.orig or exc).strip().splitlines()[0] if str(exc.orig or exc).strip() else type(exc).__name__
        raise DatabaseUnavailableError(f"cannot open the database {_where(url)}: {reason} "
                                       "(is it running? check EVALBOT_DATABASE_URL)") from None
    except OSError as exc:
        raise DatabaseUnavailableError(f"cannot open the database {_where(url)}: {exc.strerror or exc} "
                                       f"({exc.filename or 'its folder'}; check EVALBOT_DATABASE_URL)") from None
    return engine


def open_runtime(settings: Settings | None = None, *, migrate_db: bool = True, existing_corpus: bool = False) -> Runtime:
    """Build the runtime from Settings, migrating the database to the newest schema first.

    `existing_corpus`: the corpus folder must already exist (commands that read it); `serve` creates one.
    """
    from bot.store.tables import advisory_lock

    settings = settings or get_settings()
    if existing_corpus:
        open_corpus(settings)
    engine = open_database(settings.database_url, migrate_db=migrate_db)
    corpus = Corpus(
        settings.corpus_path,
        push_remote=settings.git_push,
        # Replicas share the database: its lock serialises their corpus changes (pull, commit, push).
        shared_lock=(lambda: advisory_lock(engine, CORPUS_LOCK_KEY)) if settings.git_push else None,
    )
    return Runtime(settings=settings, corpus=corpus, engine=engine)


def open_corpus(settings: Settings | None = None) -> Corpus:
    """The existing corpus folder alone, for commands that only read files (no database is opened)."""
    settings = settings or get_settings()
    if not settings.corpus_path.is_dir():
        raise ConfigError(f"EVALBOT_CORPUS_DIR {settings.corpus_path} does not exist: point it at your corpus folder")
    return Corpus(settings.corpus_path, push_remote=settings.git_push)

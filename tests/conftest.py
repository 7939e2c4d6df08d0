"""Test isolation: every test gets its own corpus folder, database and settings under tmp_path.

`db_url` is parametrized over SQLite and PostgreSQL (127.0.0.1:5432, database `test`, a schema per test),
so every test that uses the database runs on both.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from bot.core import clock
from bot.core.settings import get_settings
from bot.store.tables import dispose_engines
from tests.helpers.paths import EXAMPLE_CORPUS, REPO  # noqa: F401 - REPO: still importable from here by tests written before tests/helpers/paths.py

PG_SERVER = os.environ.get("EVALBOT_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

_ENV_PREFIXES = ("SLACK_", "EVALBOT_", "ANTHROPIC_")


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point settings, the corpus and the database at tmp_path; no .env or machine state leaks in."""
    for name in list(os.environ):
        if name.startswith(_ENV_PREFIXES) and name != clock.OFFSET_ENV:
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EVALBOT_CORPUS_DIR", str(tmp_path / "corpus"))
    monkeypatch.setenv("EVALBOT_DATABASE_URL", f"sqlite:///{tmp_path / 'evalbot.db'}")
    # No git identity or config from the machine: HOME is an empty folder and the system config is off, so
    # every commit and rebase must name its author and committer itself (as in a bare container).
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in ("GIT_CONFIG_GLOBAL", "XDG_CONFIG_HOME", *(n for n in os.environ if n.startswith(("GIT_AUTHOR_", "GIT_COMMITTER_")))):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()
    dispose_engines()


YEAR_AHEAD = timedelta(days=365)
FAR_ZONE = "Pacific/Kiritimati"  # UTC+14: a local date that is a day ahead of UTC most of the time


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "dates: reads the clock; also run a year ahead in a far time zone")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test marked `dates` runs twice: on today's clock, and a year ahead in UTC+14."""
    if metafunc.definition.get_closest_marker("dates"):
        metafunc.fixturenames.append("clock_variant")
        metafunc.parametrize("clock_variant", ["today", "year-ahead"], indirect=True)


@pytest.fixture
def clock_variant(request: pytest.FixtureRequest) -> Iterator[str]:
    """Shift evalbot's clock (in this process and, through the environment, in the ones it starts) and the zone."""
    if request.param == "today":
        yield request.param
        return
    saved = {name: os.environ.get(name) for name in (clock.OFFSET_ENV, "TZ")}
    os.environ[clock.OFFSET_ENV] = str(YEAR_AHEAD.days)
    os.environ["TZ"] = FAR_ZONE
    time.tzset()
    try:
        with clock.shift(YEAR_AHEAD):
            yield request.param
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        time.tzset()


def _pg_available() -> bool:
    try:
        engine = create_engine(PG_SERVER)
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:
        return False


_PG = _pg_available()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh, empty database on SQLite or on PostgreSQL (its own schema), set as EVALBOT_DATABASE_URL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'state.db'}"
        monkeypatch.setenv("EVALBOT_DATABASE_URL", url)
        get_settings.cache_clear()
        yield url
        return
    if not _PG:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable at {PG_SERVER}; .ci/run should have started it")
        pytest.skip("PostgreSQL is not reachable")
    schema = "t_" + uuid.uuid4().hex[:12]
    admin = create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{PG_SERVER}?options=-csearch_path%3D{schema}"
    monkeypatch.setenv("EVALBOT_DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        yield url
    finally:
        dispose_engines()
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    """A copy of the shipped example corpus in its own git repository, with one initial commit."""
    target = tmp_path / "corpus"
    shutil.copytree(EXAMPLE_CORPUS, target)
    from bot.corpus.files import Corpus
    from bot.corpus.gitrepo import SYSTEM

    corpus = Corpus(target)
    corpus.repo.commit([target], message="Example corpus", author=SYSTEM)
    return target

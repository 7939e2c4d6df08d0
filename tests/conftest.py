"""Test isolation: every test gets its own corpus folder, database and settings under tmp_path.

`db_url` is parametrized over SQLite and PostgreSQL (127.0.0.1:5432, database `test`, a schema per test),
so every test that uses the database runs on both.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

from bot.core import clock
from bot.core.settings import get_settings
from bot.store.tables import dispose_engines
from tests.helpers.paths import EXAMPLE_CORPUS, REPO  # noqa: F401 - REPO: still importable from here by tests written before tests/helpers/paths.py

PG_SERVER = os.environ.get("EVALBOT_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

_ENV_PREFIXES = ("SLACK_", "EVALBOT_", "ANTHROPIC_")


@pytest.fixture(autouse=True)
def isolated(request: pytest.FixtureRequest, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point settings, the corpus and the database at tmp_path; no .env or machine state leaks in.

    The database starts migrated for tests marked `migrated_db` (see `db_url`)."""
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
    if _starts_migrated(request):
        shutil.copyfile(_sqlite_template(tmp_path_factory.getbasetemp()), tmp_path / "evalbot.db")
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()
    dispose_engines()


YEAR_AHEAD = timedelta(days=365)
FAR_ZONE = "Pacific/Kiritimati"  # UTC+14: a local date that is a day ahead of UTC most of the time


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "dates: reads the clock; also run a year ahead in a far time zone")
    config.addinivalue_line("markers", "migrated_db: the test's database (`db_url`, else the default SQLite file) "
                                       "starts migrated to the newest schema, a copy of one migrated once per worker; "
                                       "for tests whose first use of it is an in-process migration; migrated_db(False): an empty one")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test marked `dates` runs twice: on today's clock, and a year ahead in UTC+14."""
    if metafunc.definition.get_closest_marker("dates"):
        metafunc.fixturenames.append("clock_variant")
        metafunc.parametrize("clock_variant", ["today", "year-ahead"], indirect=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_collection(session: pytest.Session) -> Iterator[None]:
    """Let pytest keep its rewritten test modules (__pycache__/*-pytest-*.pyc) on machines that set
    PYTHONDONTWRITEBYTECODE: otherwise every worker rewrites the asserts of every test module again, seconds per
    worker at each run. Only while collecting; the processes the tests start still inherit the variable."""
    saved = sys.dont_write_bytecode
    sys.dont_write_bytecode = False
    try:
        yield
    finally:
        sys.dont_write_bytecode = saved


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """`-n auto`: one worker more than there are cores (PYTEST_XDIST_AUTO_NUM_WORKERS still decides if set).

    A worker spends much of its time waiting on what its test started (`evalbot` processes, the fake servers,
    git, PostgreSQL); on 2 cores two workers kept the CPU about half busy, and a third fills those waits."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return cores + 1


# The tests that take seconds (real `evalbot` processes, bursts of flags), longest first. pytest-xdist hands the
# first quarter of the collected tests out in turn and the rest as workers free up: started first, these are shared
# between the workers instead of leaving one of them finishing a 15-second test alone at the end of the run.
SLOW_FIRST = (
    "tests/serve/test_crash.py::test_sigkill_mid_burst_then_restart_loses_and_duplicates_nothing",
    "tests/evals/test_resume.py::test_a_run_killed_half_way_and_resumed_grades_each_case_once_and_records_one_run",
    "tests/serve/test_http_replicas.py::test_two_replicas_share_dedupe_and_the_corpus",
    "tests/serve/test_nightly_replicas.py::test_two_replicas_run_the_nightly_slot_once_and_post_one_digest",
    "tests/serve/test_catchup.py::test_flags_made_while_serve_was_stopped_are_captured_after_it_starts",
    "tests/serve/test_resume_nightly.py::test_serve_resumes_the_interrupted_nightly_run_and_posts_its_digest",
    "tests/serve/test_shutdown.py::test_sigterm_soon_after_start_stops_serve_cleanly_and_loses_nothing",
    "tests/serve/test_serve.py::test_serve_over_socket_mode_captures_a_flag_and_stops_cleanly",
    "tests/serve/test_serve.py::test_serve_http_verifies_signatures_and_captures",
    "tests/evals/test_batch.py::test_a_run_killed_mid_batch_is_finished_by_resume_without_creating_its_batches_again",
    "tests/slack/test_capture_worker.py::test_a_dead_worker_is_replaced_and_its_leased_flags_captured",
    "tests/cli/test_failures.py::test_serve_that_cannot_sign_in_to_slack_exits_2_with_one_line",
    "tests/deploy/test_image.py::test_the_images_command_starts_alone_on_a_fresh_data_folder_and_becomes_ready",
    "tests/slack/test_followups.py::test_a_run_that_fixes_300_cases_posts_300_follow_ups_paced_with_no_loss_on_429s",
    "tests/slack/test_flag_writes.py::test_a_flag_the_inbox_cannot_take_is_not_acked_and_its_redelivery_is_captured",
    "tests/evals/test_resume.py::test_ctrl_c_keeps_the_run_and_says_how_to_resume_it",
    "tests/evals/test_cli.py::test_a_model_that_only_answers_529_exits_3_from_a_real_process",
    "tests/slack/test_digest_post.py::test_two_processes_posting_the_same_digest_post_it_once",
    "tests/capture/test_slack_shapes.py::test_the_fidelity_benchmark_counts_messages_and_names_each_miss",
    "tests/corpus/test_concurrent_writers.py::test_capture_and_promote_in_two_processes_lose_nothing",
    "tests/slack/test_capture_worker.py::test_the_worker_ends_when_its_parent_is_killed",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run SLOW_FIRST first, in its order; every other test keeps its place (the order is the same on every worker)."""
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("[", 1)[0], len(rank)))


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


# Migrating costs a test about 30 ms on SQLite and 80 ms on PostgreSQL (more on a loaded machine), and most tests
# that use the database start by migrating it in-process. Tests marked `migrated_db` get a copy of a database each
# worker migrated once, with the same `migrate()`, in a test's environment: a broken migration fails them all the
# same. Tests about migrating itself, and ones that start processes on a fresh database, keep an empty one.
_TEMPLATES: dict[str, object] = {}


def _starts_migrated(request: pytest.FixtureRequest) -> bool:
    """Whether the test is marked `migrated_db` (`migrated_db(False)` on a test undoes its module's mark)."""
    marker = request.node.get_closest_marker("migrated_db")
    return marker is not None and marker.args[:1] != (False,)


def _sqlite_template(base: Path) -> Path:
    """A SQLite file migrated to the newest schema, made once per worker."""
    if "sqlite" not in _TEMPLATES:
        from bot.store.tables import make_engine, migrate

        folder = base / "db-template"
        folder.mkdir(exist_ok=True)
        path = folder / "state.db"
        engine = make_engine(f"sqlite:///{path}")
        migrate(engine)
        engine.dispose()  # the last connection checkpoints the WAL: the file alone is the database
        assert not (folder / "state.db-wal").exists()
        _TEMPLATES["sqlite"] = path
    return _TEMPLATES["sqlite"]  # type: ignore[return-value]


_SCHEMA_PLACEHOLDER = "evalbot_template_0e7c2d41"


def _pg_template_sql() -> str | None:
    """SQL that creates a migrated schema named _SCHEMA_PLACEHOLDER (pg_dump of one migrated once per worker),
    or None when pg_dump cannot make it (then each test migrates its own schema)."""
    if "postgresql" not in _TEMPLATES:
        from bot.store.tables import make_engine, migrate

        schema = _SCHEMA_PLACEHOLDER + "_" + uuid.uuid4().hex[:8]
        admin = create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        sql: str | None = None
        try:
            engine = make_engine(f"{PG_SERVER}?options=-csearch_path%3D{schema}")
            migrate(engine)
            engine.dispose()
            url = make_url(PG_SERVER).set(drivername="postgresql")
            # The password, if any, goes in the environment: a command line is visible to every user of the machine.
            env = {**os.environ, **({"PGPASSWORD": url.password} if url.password else {})}
            dump = subprocess.run(["pg_dump", "--schema", schema, "--inserts", "--no-owner", "--no-privileges",
                                   "--dbname", url.set(password=None).render_as_string(hide_password=False)],
                                  capture_output=True, text=True, timeout=60, env=env)
            if dump.returncode == 0 and f"{schema}.alembic_version" in dump.stdout:
                # psql meta-commands (\restrict) and settings an older server may not know are left out.
                lines = [line for line in dump.stdout.splitlines()
                         if not line.startswith("\\") and not line.startswith("SET transaction_timeout")]
                sql = "\n".join(lines).replace(schema, _SCHEMA_PLACEHOLDER)
        except (OSError, subprocess.SubprocessError):
            sql = None
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
        _TEMPLATES["postgresql"] = sql
    return _TEMPLATES["postgresql"]  # type: ignore[return-value]


def _create_migrated_schema(schema: str) -> bool:
    """Create `schema` as a copy of the migrated template; False when there is no template."""
    sql = _pg_template_sql()
    if sql is None:
        return False
    import psycopg

    server = make_url(PG_SERVER).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(server, autocommit=True) as connection:
        connection.execute("SET synchronous_commit TO off")  # a test schema need not outlive a server crash
        connection.execute(sql.replace(_SCHEMA_PLACEHOLDER, schema))  # no parameters: one multi-statement query
    return True


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh database on SQLite or on PostgreSQL (its own schema), set as EVALBOT_DATABASE_URL.

    Empty, or migrated to the newest schema for tests marked `migrated_db`.
    """
    migrated = _starts_migrated(request)
    if request.param == "sqlite":
        path = tmp_path / "state.db"
        if migrated:
            shutil.copyfile(_sqlite_template(tmp_path_factory.getbasetemp()), path)
        url = f"sqlite:///{path}"
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
    if not (migrated and _create_migrated_schema(schema)):
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        if migrated:  # no pg_dump: migrate it here, as the test would have
            from bot.store.tables import make_engine, migrate

            engine = make_engine(f"{PG_SERVER}?options=-csearch_path%3D{schema}")
            migrate(engine)
            engine.dispose()
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


def _example_repo_template(base: Path) -> Path:
    """The example corpus committed once in its own repository, made once per worker and per shift of the clock."""
    from datetime import datetime, timezone

    from bot.corpus.files import Corpus
    from bot.corpus.gitrepo import SYSTEM

    hours_ahead = round((clock.utcnow() - datetime.now(timezone.utc)).total_seconds() / 3600)
    key = f"corpus{hours_ahead:+d}h"
    if key not in _TEMPLATES:
        target = base / "corpus-template" / key / "corpus"
        shutil.copytree(EXAMPLE_CORPUS, target)
        corpus = Corpus(target)
        corpus.repo.commit([target], message="Example corpus", author=SYSTEM)
        _TEMPLATES[key] = target
    return _TEMPLATES[key]  # type: ignore[return-value]


@pytest.fixture
def corpus_dir(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the shipped example corpus in its own git repository, with one initial commit.

    Committing takes ten git processes: each worker commits once (in a test's environment, with the same
    Corpus.repo.commit) and every test gets a copy of that repository, .git and all.
    """
    target = tmp_path / "corpus"
    shutil.copytree(_example_repo_template(tmp_path_factory.getbasetemp()), target, symlinks=True)
    return target

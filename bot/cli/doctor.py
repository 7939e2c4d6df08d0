"""`evalbot doctor`: checks settings, corpus, git, database, Slack and Anthropic; says what to fix.

Every check runs (a malformed setting does not hide the rest) and none changes anything: no database file is
created, no migration applied, no `git init` run; what `serve` would do at start is reported instead. The exit
code is 1 when something is broken or `evalbot serve` (or `serve --http` with `--http`) could not start.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from bot.core.errors import EvalbotError
from bot.core.settings import Settings, check_settings

Check = Callable[[Settings], str]


def _check_git(_settings: Settings) -> str:
    path = shutil.which("git")
    if path is None:
        raise EvalbotError("git is not installed: install it so evalbot can version the corpus")
    return f"git at {path}"


def _check_corpus(settings: Settings) -> str:
    from bot.corpus.files import Corpus
    from bot.corpus.gitrepo import GitRepo
    from bot.evals.config import load_eval_config

    root = settings.corpus_path
    if not root.is_dir():
        raise EvalbotError(f"corpus folder {root} does not exist: set EVALBOT_CORPUS_DIR or create it")
    config = load_eval_config(root)
    cases, problems = Corpus(root).scan()
    if problems:
        raise EvalbotError(f"{len(problems)} invalid case file(s), first: {problems[0]} (run `evalbot corpus validate`)")
    repo = GitRepo.find(root)
    where = f"git work tree {repo.top}" if repo else "not in a git repository yet (`serve` runs `git init` there)"
    return f"corpus {root}: {len(cases)} case files, target {config.target.kind}, {where}"


def _sqlite_path(url: str) -> Path | None:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).expanduser().resolve()


def _can_create_in(folder: Path) -> bool:
    """Whether a file can be created in `folder` (tried for real, then removed: permissions lie to root)."""
    try:
        handle, name = tempfile.mkstemp(dir=folder, prefix=".evalbot-doctor-")
    except OSError:
        return False
    os.close(handle)
    os.unlink(name)
    return True


def _check_database(settings: Settings) -> str:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from bot.store.migrations.runner import current, head

    url = make_url(settings.database_url).render_as_string(hide_password=True)
    path = _sqlite_path(settings.database_url)
    if path is not None and not path.exists():
        folder = next((p for p in path.parents if p.exists()), Path("/"))
        if not _can_create_in(folder):
            raise EvalbotError(f"database {url}: {folder} is not writable, so `serve` cannot create {path}: "
                               "choose a writable EVALBOT_DATABASE_URL")
        return f"database {url}: does not exist yet (`serve` creates it with schema {head()})"
    if path is not None and not os.access(path, os.W_OK):
        raise EvalbotError(f"database {url}: {path} is read-only: make it writable or move it")
    engine = create_engine(settings.database_url)  # its own engine, disposed below: nothing cached, nothing created
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        revision = current(engine)
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise EvalbotError(f"cannot reach EVALBOT_DATABASE_URL ({url}): {reason}") from None
    finally:
        engine.dispose()
    if revision != head():
        return f"database {url}: schema {revision or 'empty'}, upgraded to {head()} at start (or run `evalbot db upgrade`)"
    return f"database {url}: schema up to date ({revision})"


def _check_slack(settings: Settings) -> str:
    from bot.slack.client import make_web_client, sign_in, signing_in

    if settings.slack_bot_token is None:
        return "skip: SLACK_BOT_TOKEN not set"
    client = make_web_client(settings)
    auth = sign_in(settings, client)
    found = f"Slack: signed in as {auth.get('user')} in team {auth.get('team')}"
    if settings.slack_app_token is not None:
        app_token = settings.slack_app_token.get_secret_value()
        signing_in(settings, "SLACK_APP_TOKEN", lambda: client.apps_connections_open(app_token=app_token))
        found += "; the app token opens Socket Mode"
    return found


def _check_anthropic(settings: Settings) -> str:
    import anthropic

    if settings.anthropic_api_key is None:
        return "skip: ANTHROPIC_API_KEY not set (rubric judging, drafted titles and the anthropic target need it)"
    client = anthropic.Anthropic(
        api_key=settings.anthropic_api_key.get_secret_value(), base_url=settings.anthropic_base_url, max_retries=1, timeout=15
    )
    try:
        client.models.list(limit=1)
    except anthropic.AuthenticationError:
        raise EvalbotError("Anthropic refused ANTHROPIC_API_KEY: create a new key in the Anthropic console") from None
    except anthropic.APIError as exc:
        raise EvalbotError(f"cannot use the Anthropic API at {settings.anthropic_base_url or 'api.anthropic.com'}: "
                           f"{exc.__class__.__name__}") from None
    return "Anthropic: API key accepted"


def _check_inbox(settings: Settings) -> str:
    """Flags waiting in the inbox, and the ones parked as failed (each named: they need someone to look)."""
    from sqlalchemy import create_engine, inspect

    from bot.capture import inbox

    path = _sqlite_path(settings.database_url)
    if path is not None and not path.exists():
        return "skip: no database yet"
    engine = create_engine(settings.database_url)
    try:
        if not inspect(engine).has_table("pending_flags"):
            return "skip: the database has no flag inbox yet (created at start)"
        waiting, failed = inbox.pending_count(engine), inbox.parked(engine, limit=10)
    except Exception as exc:  # noqa: BLE001 - the database check above already says why it cannot be read
        return f"skip: cannot read the flag inbox ({exc.__class__.__name__})"
    finally:
        engine.dispose()
    if failed:
        listed = "; ".join(f"{row.trigger} by {row.user_id} on {row.channel}/{row.ts} "
                           f"({row.updated_at:%Y-%m-%d %H:%M} UTC): {row.error}" for row in failed)
        raise EvalbotError(f"{len(failed)} flag(s) failed every attempt and were parked: {listed} "
                           "(flag the message again once the cause is fixed)")
    return f"flag inbox: {waiting} waiting, none failed"


CHECKS: list[tuple[str, Check]] = [
    ("git", _check_git),
    ("corpus", _check_corpus),
    ("database", _check_database),
    ("slack", _check_slack),
    ("anthropic", _check_anthropic),
    ("inbox", _check_inbox),
]

SERVE_NEEDS = {"git", "corpus", "database", "slack"}  # a failure here stops `serve` at start (Anthropic does not)


def doctor(
    http: Annotated[bool, typer.Option("--http", help="Check for `serve --http` instead of Socket Mode.")] = False,
) -> None:
    """Check the setup and say what to fix; exits 1 when something is broken or `serve` could not start."""
    settings, malformed = check_settings()
    for problem in malformed:
        typer.echo(f"FAIL settings: {problem}")
    if not malformed:
        typer.echo("ok   settings: every value that is set is well-formed")
    failed = len(malformed)
    blocking = bool(malformed)
    for name, check in CHECKS:
        try:
            message = check(settings)
        except EvalbotError as exc:
            failed += 1
            blocking = blocking or name in SERVE_NEEDS
            typer.echo(f"FAIL {name}: {exc}")
            continue
        status = "skip" if message.startswith("skip: ") else "ok  "
        typer.echo(f"{status} {name}: {message.removeprefix('skip: ')}")
    mode = "serve --http" if http else "serve"
    missing = settings.missing_for_serve(http=http)
    for line in missing:
        typer.echo(f"FAIL `evalbot {mode}` needs: {line}")
    if not missing:
        typer.echo(f"ok   `evalbot {mode}` has the settings it needs")
    if failed or missing:
        stops = f": `evalbot {mode}` would not start until they are fixed" if blocking or missing else " to fix"
        typer.echo(f"{failed + len(missing)} problem(s){stops}")
        raise typer.Exit(1)

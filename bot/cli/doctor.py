"""`evalbot doctor`: checks settings, corpus, git, database, Slack and Anthropic; says what to fix."""

from __future__ import annotations

import shutil
from collections.abc import Callable

import typer

from bot.config import Settings, load_settings
from bot.corpus import Corpus
from bot.errors import ConfigError, EvalbotError
from bot.evalconfig import load_eval_config


def _check_git(_settings: Settings) -> str:
    path = shutil.which("git")
    if path is None:
        raise EvalbotError("git is not installed: install it so evalbot can version the corpus")
    return f"git at {path}"


def _check_corpus(settings: Settings) -> str:
    root = settings.corpus_path
    if not root.is_dir():
        raise EvalbotError(f"corpus folder {root} does not exist: set EVALBOT_CORPUS_DIR or create it")
    corpus = Corpus(root)
    top = corpus.repo.top
    config = load_eval_config(root)
    cases, problems = corpus.scan()
    if problems:
        raise EvalbotError(f"{len(problems)} invalid case file(s), first: {problems[0]} (run `evalbot corpus validate`)")
    return f"corpus {root}: {len(cases)} case files, target {config.target.kind}, git work tree {top}"


def _check_database(settings: Settings) -> str:
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    from bot.migrations.runner import current, head
    from bot.store import get_engine

    try:
        engine = get_engine(settings.database_url)
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        revision = current(engine)
    except SQLAlchemyError as exc:
        raise EvalbotError(f"cannot reach EVALBOT_DATABASE_URL ({engine.url.render_as_string(hide_password=True)}): {exc.__class__.__name__}: {str(exc).splitlines()[0]}") from None
    url = engine.url.render_as_string(hide_password=True)
    if revision != head():
        return f"database {url}: schema {revision or 'empty'}, will be upgraded to {head()} at start (or run `evalbot db upgrade`)"
    return f"database {url}: schema up to date ({revision})"


def _check_slack(settings: Settings) -> str:
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    if settings.slack_bot_token is None:
        return "skip: SLACK_BOT_TOKEN not set"
    client = WebClient(token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url, timeout=10)
    try:
        auth = client.auth_test()
    except SlackApiError as exc:
        raise EvalbotError(f"Slack refused SLACK_BOT_TOKEN ({exc.response.get('error')}): reinstall the app and copy the bot token") from None
    except OSError as exc:
        raise EvalbotError(f"cannot reach Slack at {settings.slack_api_url}: {exc}") from None
    return f"Slack: signed in as {auth.get('user')} in team {auth.get('team')}"


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
        raise EvalbotError(f"cannot use the Anthropic API: {exc.__class__.__name__}") from None
    return "Anthropic: API key accepted"


def doctor() -> None:
    """Check the setup and say what to fix; exits 1 when something is broken."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        typer.echo(f"FAIL settings: {exc}")
        raise typer.Exit(1) from None
    typer.echo("ok   settings: every value that is set is well-formed")
    checks: list[tuple[str, Callable[[Settings], str]]] = [
        ("git", _check_git),
        ("corpus", _check_corpus),
        ("database", _check_database),
        ("slack", _check_slack),
        ("anthropic", _check_anthropic),
    ]
    failed = 0
    for name, check in checks:
        try:
            message = check(settings)
        except EvalbotError as exc:
            failed += 1
            typer.echo(f"FAIL {name}: {exc}")
            continue
        status = "skip" if message.startswith("skip: ") else "ok  "
        typer.echo(f"{status} {name}: {message.removeprefix('skip: ')}")
    for mode, http in (("serve", False), ("serve --http", True)):
        missing = settings.missing_for_serve(http=http)
        if missing:
            typer.echo(f"todo `evalbot {mode}` still needs:")
            for line in missing:
                typer.echo(f"       - {line}")
        else:
            typer.echo(f"ok   `evalbot {mode}` has the settings it needs")
    if failed:
        raise typer.Exit(1)

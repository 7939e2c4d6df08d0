"""Shared CLI plumbing: turning EvalbotError into a one-line message and an exit code, and the acting user."""

from __future__ import annotations

import functools
import getpass
import subprocess
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from bot.core.errors import EvalbotError
from bot.corpus.gitrepo import Author

F = TypeVar("F", bound=Callable[..., Any])


def cli_errors(func: F) -> F:
    """Print an EvalbotError as `error: …` on stderr and exit with its code, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except EvalbotError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(exc.exit_code) from None

    return wrapper  # type: ignore[return-value]


def _git_config(key: str) -> str | None:
    try:
        done = subprocess.run(["git", "config", "--get", key], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None


def cli_author(as_user: str | None) -> Author:
    """The person running the CLI: --as USER, else git's user.name/email, else the login name."""
    if as_user:
        return Author(user_id=as_user)
    name = _git_config("user.name") or getpass.getuser()
    return Author(user_id=name, name=name, email=_git_config("user.email") or f"{getpass.getuser()}@localhost")

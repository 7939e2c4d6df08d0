"""`evalbot serve`: runs the Slack app (Socket Mode by default, or HTTP) with the nightly scheduler."""

from __future__ import annotations

from typing import Annotated

import typer

from bot.cli.common import cli_errors
from bot.core.errors import ConfigError
from bot.core.settings import get_settings


@cli_errors
def serve(
    http: Annotated[bool, typer.Option("--http", help="Serve Slack's HTTP events API instead of Socket Mode.")] = False,
    port: Annotated[int, typer.Option(envvar="EVALBOT_PORT", help="Port for --http and the probes.")] = 3000,
) -> None:
    """Run the bot."""
    settings = get_settings()
    missing = settings.missing_for_serve(http=http)
    if missing:
        raise ConfigError(missing[0] + (f" (and {len(missing) - 1} more: run `evalbot doctor`)" if len(missing) > 1 else ""))
    from bot.serve import run

    run(settings, http=http, port=port)

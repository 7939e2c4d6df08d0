"""`evalbot db`: database schema management."""

from __future__ import annotations

import typer

from bot.cli.common import cli_errors
from bot.core.settings import get_settings
from bot.runtime import open_database
from bot.store.migrations.runner import current, head
from bot.store.tables import migrate

app = typer.Typer(help="Database schema.", no_args_is_help=True, add_completion=False)


@app.command("upgrade")
@cli_errors
def upgrade() -> None:
    """Apply pending migrations (also done automatically at start)."""
    engine = open_database(get_settings().database_url, migrate_db=False)
    before = current(engine)
    migrate(engine)
    after = current(engine)
    if before == after:
        typer.echo(f"database is up to date (revision {after})")
    else:
        typer.echo(f"database upgraded from {before or 'empty'} to {after} (head {head()})")

"""The `evalbot` command line: one Typer sub-app per command family, loaded only when it runs.

`evalbot --help` and a command like `corpus list` must answer at once, so this module imports no command module:
`LazyGroup` knows each command's import path and one-line help, and imports the module (and what it pulls in:
SQLAlchemy, anthropic, matplotlib, slack_bolt) only when that command, or its own `--help`, is asked for.
"""

from __future__ import annotations

import importlib
from typing import Any

import typer
import typer.core

# Typer 0.2x vendors Click as typer._click; its group hooks take and return that copy's types.
from typer._click.core import Command, Context
from typer._click.formatting import HelpFormatter

# name -> ("module:attribute", short help: the command's own help, which a test keeps equal).
# The attribute is a Typer sub-app or a plain command function.
COMMANDS: dict[str, tuple[str, str]] = {
    "corpus": ("bot.cli.corpus:app", "The eval corpus: candidates and cases."),
    "eval": ("bot.cli.evals:app", "Evaluate the corpus against the system under test and compare runs."),
    "db": ("bot.cli.db:app", "Database schema."),
    "doctor": ("bot.cli.doctor:doctor", "Check the setup and say what to fix; exits 1 when something is broken or `serve` could not start."),
    "serve": ("bot.cli.serve:serve", "Run the bot."),
}


class LazyGroup(typer.core.TyperGroup):
    """A Click group whose sub-commands are imported on first use; help lists them from `COMMANDS`."""

    def list_commands(self, ctx: Context) -> list[str]:
        return [*super().list_commands(ctx), *COMMANDS]

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        if cmd_name not in COMMANDS:
            return super().get_command(ctx, cmd_name)
        target, _ = COMMANDS[cmd_name]
        module_name, attribute = target.split(":")
        loaded: Any = getattr(importlib.import_module(module_name), attribute)
        command: Command
        if isinstance(loaded, typer.Typer):
            command = typer.main.get_group(loaded)
        else:
            helper = typer.Typer(add_completion=False)
            helper.command(cmd_name)(loaded)
            command = typer.main.get_command(helper)
        command.name = cmd_name
        return command

    def format_commands(self, ctx: Context, formatter: HelpFormatter) -> None:
        rows = [(name, help_text) for name, (_, help_text) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


app = typer.Typer(
    name="evalbot",
    cls=LazyGroup,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)


@app.callback()
def main() -> None:
    """Turn flagged AI failures into a git-tracked eval corpus, run it and report."""

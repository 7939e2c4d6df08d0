"""The `evalbot` command line: one Typer sub-app per command family, errors turned into clean exits."""

from __future__ import annotations

import typer

from bot.cli import corpus, db, doctor, evals, export, serve

app = typer.Typer(
    name="evalbot",
    help="Turn flagged AI failures into a git-tracked eval corpus, run it and report.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(corpus.app, name="corpus")
corpus.app.command("export")(export.export)
app.add_typer(evals.app, name="eval")
app.add_typer(db.app, name="db")
app.command("doctor")(doctor.doctor)
app.command("serve")(serve.serve)

"""`evalbot corpus export`: the promoted cases as promptfoo tests, an Inspect AI dataset or plain JSONL."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from bot.cli.common import cli_errors
from bot.core.settings import get_settings
from bot.corpus.files import Corpus


class Format(str, Enum):
    promptfoo = "promptfoo"
    inspect = "inspect"
    jsonl = "jsonl"


@cli_errors
def export(
    format: Annotated[Format, typer.Option("--format", help="promptfoo (test YAML), inspect (JSONL samples) or jsonl.")],
    out: Annotated[Path | None, typer.Option("--out", help="Write to this file instead of stdout.")] = None,
) -> None:
    """Write the promoted cases in another eval tool's format."""
    from bot.evals.render.export import export_cases  # its targets and YAML writers cost `corpus list` 0.1 s at start

    settings = get_settings()
    corpus = Corpus(settings.corpus_path)
    cases = corpus.cases("promoted")
    text = export_cases(cases, format.value)
    if out is None:
        typer.echo(text, nl=False)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    typer.echo(f"exported {len(cases)} case(s) as {format.value} to {out}", err=True)

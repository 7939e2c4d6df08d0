"""`evalbot corpus export`: the promoted cases as a promptfoo config, an Inspect AI dataset and task, or JSONL."""

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
    format: Annotated[Format, typer.Option("--format", help="promptfoo (a config to run with `promptfoo eval -c`), "
                                           "inspect (a .jsonl dataset and a task file) or jsonl.")],
    out: Annotated[Path | None, typer.Option("--out", help="Write to this file instead of stdout (inspect: "
                                             "<stem>.jsonl and <stem>_task.py).")] = None,
) -> None:
    """Write the promoted cases in another eval tool's format, with evalbot.toml's target and system prompt."""
    # Loaded here: its targets and YAML writers cost `corpus list` 0.1 s at start.
    from bot.evals.config import load_eval_config
    from bot.evals.render.export import export_corpus, output_files, system_prompt_of

    settings = get_settings()
    corpus = Corpus(settings.corpus_path)
    cases = corpus.cases("promoted")
    config = load_eval_config(corpus.root) if format is not Format.jsonl else None
    main, notes = output_files(format.value, out) if out is not None else (None, [])
    result = export_corpus(cases, format.value, name=main.name if main else "cases", config=config,
                           system_prompt=system_prompt_of(config, corpus.root))
    for case_id, reason in result.refused:
        typer.echo(f"refused {case_id}: {reason}", err=True)
    for note in notes + result.notes:
        typer.echo(note, err=True)
    exported = len(cases) - len(result.refused)
    if main is None:
        typer.echo(result.main, nl=False)
        if len(result.files) > 1:
            typer.echo(f"(with --out, also writes {', '.join(list(result.files)[1:])})", err=True)
        return
    main.parent.mkdir(parents=True, exist_ok=True)
    for name, text in result.files.items():
        (main.parent / name).write_text(text, encoding="utf-8")
    written = ", ".join(str(main.parent / name) for name in result.files)
    typer.echo(f"exported {exported} case(s) as {format.value} to {written}"
               + (f"; {len(result.refused)} refused" if result.refused else ""), err=True)

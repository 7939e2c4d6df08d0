"""Export the promoted cases for other eval tools, so that they run as exported and agree with evalbot.

- promptfoo: one config file (`promptfoo eval -c <file>`) with evalbot.toml's provider, system prompt and judge;
  see `bot.evals.render.promptfoo`. Cases with an expectation promptfoo cannot grade as evalbot does are left out
  and reported with their id and the reason.
- inspect: a `.jsonl` dataset (Inspect picks its reader by extension) and a task file beside it that replays each
  case with the system prompt and scores it with evalbot's graders; see `bot.evals.render.inspect_task`.
- jsonl: one case per line, exactly the case file's data as JSON.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bot.core.redaction_exits import redact_case
from bot.corpus.schema import Case
from bot.evals.config import AnthropicTarget, EvalConfig, inside_corpus
from bot.evals.render.inspect_task import inspect_dataset, inspect_sample, inspect_task_file
from bot.evals.render.jsregex import js_regex
from bot.evals.render.promptfoo import promptfoo_assert, promptfoo_config

FORMATS = ("promptfoo", "inspect", "jsonl")
__all__ = ["FORMATS", "Export", "export_cases", "export_corpus", "inspect_sample", "js_regex", "output_files",
           "promptfoo_assert", "system_prompt_of"]


class _BlockDumper(yaml.SafeDumper):
    """SafeDumper writing multi-line strings as `|` blocks, so conversations stay readable."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_BlockDumper.add_representer(str, _str)


@dataclass
class Export:
    """What an export writes: file name -> text (the first is the main file), and the cases it left out."""

    files: dict[str, str]
    refused: list[tuple[str, str]] = field(default_factory=list)  # (case id, reason)
    notes: list[str] = field(default_factory=list)

    @property
    def main(self) -> str:
        return next(iter(self.files.values()))


def system_prompt_of(config: EvalConfig | None, corpus_root: Path) -> str | None:
    """The system prompt text evalbot sends ([target] system_prompt), or None."""
    if config is None or not isinstance(config.target, AnthropicTarget) or not config.target.system_prompt:
        return None
    return inside_corpus(corpus_root, config.target.system_prompt, what="[target] system_prompt").read_text(encoding="utf-8")


def output_files(fmt: str, out: Path) -> tuple[Path, list[str]]:
    """Where the main file goes for `--out out`, and a note when it is not `out` itself.

    Inspect reads a dataset by its extension, so the inspect dataset is always `<stem>.jsonl` (`x.inspect` ->
    `x.jsonl`, task `x_task.py`)."""
    if fmt == "inspect" and out.suffix != ".jsonl":
        dataset = out.with_suffix(".jsonl")
        return dataset, [f"writing the dataset to {dataset.name} (Inspect AI reads a dataset by its extension, .jsonl)"]
    return out, []


def export_corpus(cases: Sequence[Case], fmt: str, *, name: str = "cases", config: EvalConfig | None = None,
                  system_prompt: str | None = None) -> Export:
    """The cases in format `fmt` (promptfoo | inspect | jsonl); `name` is the main file's name.

    An export is an exit: the cases and the system prompt are redacted on the way out.
    """
    from bot.core.redaction import redact

    cases = [redact_case(case) for case in cases]
    system_prompt = redact(system_prompt, contacts=False) if system_prompt else system_prompt
    if fmt == "promptfoo":
        document, refused = promptfoo_config(cases, config=config, system_prompt=system_prompt)
        if name.endswith(".json"):
            text = json.dumps(document, ensure_ascii=False, indent=2) + "\n"
        else:
            text = yaml.dump(document, Dumper=_BlockDumper, sort_keys=False, allow_unicode=True, width=4096)
        notes = [] if config is None or isinstance(config.target, AnthropicTarget) else [
            f"[target] kind {config.target.kind} has no promptfoo provider: replace the `echo` provider in {name}"]
        return Export({name: text}, refused, notes)
    if fmt == "inspect":
        dataset = name if name.endswith(".jsonl") else Path(name).stem + ".jsonl"
        task = Path(dataset).stem + "_task.py"
        return Export({dataset: inspect_dataset(cases),
                       task: inspect_task_file(cases, dataset_name=dataset, config=config, system_prompt=system_prompt)})
    if fmt == "jsonl":
        return Export({name: "".join(case.model_dump_json(exclude_none=True) + "\n" for case in cases)})
    raise ValueError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")


def export_cases(cases: Sequence[Case], fmt: str) -> str:
    """The main file's text for the cases in format `fmt`, without evalbot.toml (no provider, no system prompt)."""
    return export_corpus(cases, fmt).main

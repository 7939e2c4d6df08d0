"""The Inspect AI export: a .jsonl dataset plus a task file carrying the system prompt, the model and a scorer
with evalbot's graders (embedded, and giving the verdicts of `bot.evals.graders`); `--out x.inspect` writes
x.jsonl, the extension Inspect reads."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.corpus.files import Corpus
from bot.corpus.schema import Case
from bot.evals.config import load_eval_config
from bot.evals.graders import grade_deterministic
from bot.evals.render import portable_graders
from bot.evals.render.export import export_corpus, output_files, system_prompt_of
from bot.evals.render.inspect_task import TASK_MARK
from tests.helpers.paths import EXAMPLE_CORPUS

CASES = [
    ({"contains": "30 days"}, "within 30 days"), ({"contains": "30 days"}, "30 Days"),
    ({"not_contains": "90"}, "90 days"), ({"not_contains": "90"}, "30 days"),
    ({"regex": r"\b30[- ]day"}, "a 30-day window"), ({"regex": r"\Aok\Z"}, "ok\n"),
    ({"not_regex": r"(?i)card number"}, "your CARD NUMBER"), ({"equals": "YES"}, " YES \n"), ({"equals": "YES"}, "yes"),
    ({"json_schema": {"type": "object", "required": ["a"]}}, '```json\n{"a": 1}\n```'),
    ({"json_schema": {"type": "object", "required": ["a"]}}, '{"b": 1}'), ({"json_schema": {"type": "object"}}, "prose"),
    ({"max_chars": 5}, "😀😀😀😀😀"), ({"max_chars": 4}, "😀😀😀😀😀"),
]


def expectation(data: dict):
    return Case.model_validate({
        "id": "zzzz0001", "title": "t", "status": "promoted", "source": {"kind": "file", "flagged_at": "2026-11-20T00:00:00Z"},
        "conversation": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}], "expect": [data],
    }).expect[0]


@pytest.mark.parametrize(("data", "reply"), CASES)
def test_the_portable_graders_give_evalbots_verdicts(data, reply):
    assert portable_graders.grade(data, reply)[0] is grade_deterministic(expectation(data), reply).passed


def example_export():
    config = load_eval_config(EXAMPLE_CORPUS)
    cases = Corpus(EXAMPLE_CORPUS).cases("promoted")
    return cases, export_corpus(cases, "inspect", name="cases.jsonl", config=config,
                                system_prompt=system_prompt_of(config, EXAMPLE_CORPUS))


def test_the_export_is_a_jsonl_dataset_and_a_task_file_beside_it():
    cases, result = example_export()
    assert list(result.files) == ["cases.jsonl", "cases_task.py"]
    samples = [json.loads(line) for line in result.files["cases.jsonl"].splitlines()]
    assert [s["id"] for s in samples] == [c.id for c in cases]
    task = result.files["cases_task.py"]
    compile(task, "cases_task.py", "exec")
    assert "DATASET_NAME = 'cases.jsonl'" in task
    assert f"SYSTEM_PROMPT = {(EXAMPLE_CORPUS / 'prompts' / 'system.md').read_text()!r}" in task
    assert "MODEL = 'anthropic/claude-haiku-4-5'" in task and "MAX_TOKENS = 1024" in task
    assert "JUDGE_MODEL = 'anthropic/claude-sonnet-4-6'" in task


def test_the_task_files_embedded_graders_run_without_evalbot(tmp_path):
    _, result = example_export()
    graders_part = result.files["cases_task.py"].split(TASK_MARK)[0]
    assert "from bot" not in graders_part and "import bot" not in graders_part
    namespace: dict = {"__file__": str(tmp_path / "cases_task.py")}
    exec(compile(graders_part, "cases_task.py", "exec"), namespace)
    for data, reply in CASES:
        assert namespace["grade"](data, reply)[0] is grade_deterministic(expectation(data), reply).passed


@pytest.mark.parametrize(("out", "dataset"), [("x.inspect", "x.jsonl"), ("x.jsonl", "x.jsonl"), ("x", "x.jsonl")])
def test_the_dataset_always_gets_the_extension_inspect_reads(tmp_path, out, dataset):
    assert output_files("inspect", tmp_path / out)[0] == tmp_path / dataset


def test_export_inspect_out_x_inspect_writes_x_jsonl_and_x_task(corpus_dir, tmp_path):
    result = CliRunner().invoke(app, ["corpus", "export", "--format", "inspect", "--out", str(tmp_path / "out" / "x.inspect")])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["x.jsonl", "x_task.py"]
    assert "Inspect AI reads a dataset by its extension" in result.stderr
    assert "DATASET_NAME = 'x.jsonl'" in (tmp_path / "out" / "x_task.py").read_text()

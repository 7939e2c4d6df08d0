"""`corpus list`, `show` and `validate` against the files: the index read by `list` is brought up to date with the
corpus's HEAD first, and `validate` names exactly the files that are invalid, read one by one or in workers."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.corpus import bulk
from bot.corpus.casefile import dump_case
from bot.corpus.files import Corpus

runner = CliRunner()


def git(folder: Path, *args: str) -> None:
    """git as a person editing the corpus by hand would run it (tests have no machine-wide identity)."""
    subprocess.run(["git", "-c", "user.name=Hand Editor", "-c", "user.email=hand@example.com", *args], cwd=folder,
                   check=True, capture_output=True)


def listed(output: str) -> dict[str, tuple[str, str]]:
    """id -> (status, the rest of the line) of each case line `corpus list` printed."""
    rows = {}
    for line in output.splitlines():
        parts = line.split(maxsplit=2)
        if len(parts) == 3 and parts[1] in ("candidate", "promoted"):
            rows[parts[0]] = (parts[1], parts[2])
    return rows


def assert_list_agrees_with_files(corpus_dir: Path) -> None:
    result = runner.invoke(app, ["corpus", "list"])
    assert result.exit_code == 0, result.output
    cases, problems = Corpus(corpus_dir).scan()
    assert problems == []
    rows = listed(result.output)
    assert set(rows) == {case.id for case in cases}
    for case in cases:
        status, rest = rows[case.id]
        assert status == case.status and rest.endswith(case.title + (f" [{', '.join(case.tags)}]" if case.tags else ""))
    assert f"{len(cases)} total" in result.output


def test_list_refreshes_an_index_that_is_behind_head(db_url, corpus_dir):
    assert_list_agrees_with_files(corpus_dir)  # builds the index
    # Commits made without evalbot: the index is now behind the corpus's HEAD.
    path = corpus_dir / "cases" / "tne841s8.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("title: ", "title: Retitled by hand, ", 1), encoding="utf-8")
    git(corpus_dir, "rm", "-q", "cases/2tj51dm1.yaml")
    copy = corpus_dir / "cases" / "zzzz0001.yaml"
    shutil.copy(corpus_dir / "cases" / "1breqg51.yaml", copy)
    copy.write_text(copy.read_text(encoding="utf-8").replace("id: 1breqg51", "id: zzzz0001"), encoding="utf-8")
    git(corpus_dir, "add", "-A")
    git(corpus_dir, "commit", "-qm", "edited by hand")
    assert_list_agrees_with_files(corpus_dir)
    # And an edit not committed yet counts too: the files are the truth.
    path.write_text(path.read_text(encoding="utf-8").replace("Retitled by hand, ", "Edited again, ", 1), encoding="utf-8")
    assert_list_agrees_with_files(corpus_dir)


def test_show_prints_the_file_as_it_is_now(db_url, corpus_dir):
    corpus = Corpus(corpus_dir)
    path = corpus_dir / "cases" / "tne841s8.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("title: ", "title: Not committed, ", 1), encoding="utf-8")
    result = runner.invoke(app, ["corpus", "show", "tne8"])
    assert result.exit_code == 0, result.output
    assert result.output == f"# corpus/cases/tne841s8.yaml\n{dump_case(corpus.load('tne841s8', 'promoted'))}"
    assert "title: Not committed, " in result.output


INVALID = {
    "cases/bad00001.yaml": ("id: bad00001\ncolour: red\n", "colour: unknown field"),
    "cases/bad00002.yaml": ("title: [unclosed\n", "not valid YAML"),
    "candidates/bad00003.yaml": (None, "must match the file's name and folder"),  # a promoted case in candidates/
    "cases/bad00004.yaml": (None, "id 'tne841s8'"),  # another case's content under this name
}


@pytest.mark.parametrize("parallel", [False, True], ids=["in-process", "worker-processes"])
def test_validate_names_exactly_the_invalid_files(corpus_dir, monkeypatch, parallel):
    if parallel:
        monkeypatch.setattr(bulk, "PARALLEL_FROM", 2)
        monkeypatch.setattr(bulk, "CHUNK", 3)
    valid = (corpus_dir / "cases" / "tne841s8.yaml").read_text(encoding="utf-8")
    for rel, (text, _) in INVALID.items():
        (corpus_dir / rel).write_text(text if text is not None else valid, encoding="utf-8")
    result = runner.invoke(app, ["corpus", "validate"])
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == len(INVALID)
    for rel, (_, message) in INVALID.items():
        assert sum(f"corpus/{rel}:" in line for line in errors) == 1, rel
        assert any(f"corpus/{rel}:" in line and message in line for line in errors), (rel, errors)
    assert f"6 cases, 1 candidates, {len(INVALID)} problem(s)" in result.output

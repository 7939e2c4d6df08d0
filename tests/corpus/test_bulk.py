"""Reading every case file, in worker processes when there are many: the same verdicts as one by one."""

from __future__ import annotations

import pytest

from bot.corpus import bulk
from bot.corpus.files import Corpus

GITHUB = "ghp_" + "FakeGitHubToken0123456789abcdefghijk"  # fake, assembled so scanners of this file find nothing


@pytest.mark.parametrize("parallel", [False, True], ids=["in-process", "worker-processes"])
def test_check_all_counts_valid_files_and_names_each_invalid_one(corpus_dir, monkeypatch, parallel):
    if parallel:
        monkeypatch.setattr(bulk, "PARALLEL_FROM", 2)
        monkeypatch.setattr(bulk, "CHUNK", 2)
    (corpus_dir / "cases" / "bad00000.yaml").write_text("id: bad00000\n", encoding="utf-8")
    (corpus_dir / "candidates" / "bad11111.yaml").write_text("title: [\n", encoding="utf-8")
    leaky = corpus_dir / "cases" / "tne841s8.yaml"
    text = leaky.read_text(encoding="utf-8")
    leaky.write_text(text + f"note: '{GITHUB}'\n", encoding="utf-8")
    line = text.count("\n") + 1
    checked = bulk.check_all(Corpus(corpus_dir))
    assert checked.counts == {"candidate": 1, "promoted": 5}
    problems = checked.problems
    assert len(problems) == 3
    assert "bad00000.yaml" in problems[0] and "bad11111.yaml" in problems[1] and "not valid YAML" in problems[1]
    assert "tne841s8.yaml" in problems[2] and "note: unknown field" in problems[2]
    # An invalid file is still scanned: the secret is reported beside the problem, with its line.
    assert [str(finding) for finding in checked.secrets] == [f"{corpus_dir.name}/cases/tne841s8.yaml:{line}: github_token"]

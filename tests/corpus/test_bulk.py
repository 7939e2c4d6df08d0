"""Reading every case file, in worker processes when there are many: the same verdicts as one by one."""

from __future__ import annotations

import pytest

from bot.corpus import bulk
from bot.corpus.files import Corpus


@pytest.mark.parametrize("parallel", [False, True], ids=["in-process", "worker-processes"])
def test_check_all_counts_valid_files_and_names_each_invalid_one(corpus_dir, monkeypatch, parallel):
    if parallel:
        monkeypatch.setattr(bulk, "PARALLEL_FROM", 2)
        monkeypatch.setattr(bulk, "CHUNK", 2)
    (corpus_dir / "cases" / "bad00000.yaml").write_text("id: bad00000\n", encoding="utf-8")
    (corpus_dir / "candidates" / "bad11111.yaml").write_text("title: [\n", encoding="utf-8")
    counts, problems = bulk.check_all(Corpus(corpus_dir))
    assert counts == {"candidate": 1, "promoted": 6}
    assert len(problems) == 2
    assert "bad00000.yaml" in problems[0] and "bad11111.yaml" in problems[1] and "not valid YAML" in problems[1]

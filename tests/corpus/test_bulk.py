"""Reading every case file, in worker processes when there are many: the same verdicts, in the same order."""

from __future__ import annotations

import pytest

from bot.corpus import bulk
from bot.corpus.files import Corpus

GITHUB = "ghp_" + "FakeGitHubToken0123456789abcdefghijk"  # fake, assembled so scanners of this file find nothing


@pytest.mark.parametrize("parallel", [False, True], ids=["in-process", "worker-processes"])
def test_check_chunk_judges_each_file_and_scans_it(corpus_dir, monkeypatch, parallel):
    if parallel:
        monkeypatch.setattr(bulk, "PARALLEL_FROM", 2)
        monkeypatch.setattr(bulk, "CHUNK", 2)
    (corpus_dir / "cases" / "bad00000.yaml").write_text("id: bad00000\n", encoding="utf-8")
    (corpus_dir / "candidates" / "bad11111.yaml").write_text("title: [\n", encoding="utf-8")
    leaky = corpus_dir / "cases" / "tne841s8.yaml"
    text = leaky.read_text(encoding="utf-8")
    leaky.write_text(text + f"note: '{GITHUB}'\n", encoding="utf-8")
    corpus = Corpus(corpus_dir)
    items = sorted(corpus.ids().items())
    verdicts = [verdict for chunk in bulk.map_chunks(corpus, items, bulk.check_chunk) for verdict in chunk]
    assert [verdict.rel for verdict in verdicts] == [f"{'cases' if s == 'promoted' else 'candidates'}/{i}.yaml" for i, s in items]
    invalid = {verdict.rel: verdict.problem for verdict in verdicts if verdict.problem}
    assert sorted(invalid) == ["candidates/bad11111.yaml", "cases/bad00000.yaml", "cases/tne841s8.yaml"]
    assert "not valid YAML" in invalid["candidates/bad11111.yaml"]
    assert "note: unknown field" in invalid["cases/tne841s8.yaml"]
    # An invalid file is still scanned: the secret is reported beside the problem, with its line.
    secrets = [str(secret) for verdict in verdicts for secret in verdict.secrets]
    assert secrets == [f"corpus/cases/tne841s8.yaml:{text.count(chr(10)) + 1}: github_token"]

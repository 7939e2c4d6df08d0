"""read_ahead: case files in order, parsed a few chunks ahead (in a worker process on a long list), bad ones noted."""

from __future__ import annotations

import pytest

from bot.corpus import prefetch
from bot.corpus.files import Corpus


@pytest.mark.parametrize("in_worker", [False, True], ids=["here", "worker-process"])
def test_cases_come_in_order_and_a_missing_or_broken_file_is_noted(corpus_dir, monkeypatch, in_worker):
    corpus = Corpus(corpus_dir)
    ids = sorted(corpus.ids("promoted"))
    (corpus_dir / "cases" / f"{ids[1]}.yaml").write_text("id: [not a case\n")
    wanted = [ids[0], "zzzzzzzz", *ids[1:]]
    if in_worker:
        monkeypatch.setattr(prefetch, "PARALLEL_FROM", 2)
        monkeypatch.setattr(prefetch, "CHUNK", 2)
        monkeypatch.setattr(prefetch, "AHEAD", 2)
    skipped: list[str] = []
    cases = list(prefetch.read_ahead(corpus, wanted, "promoted", skipped))
    assert [case.id for case in cases] == [ids[0], *ids[2:]]
    assert [line.split(":")[0] for line in skipped] == ["zzzzzzzz", ids[1]]
    assert "not valid YAML" in skipped[1]

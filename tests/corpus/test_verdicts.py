"""`validate`'s kept verdicts: a second validate reads only the case files git says changed, with the same result."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from bot.corpus import verdicts
from bot.corpus.files import Corpus
from bot.corpus.verdicts import validate_cases


def git(folder: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=Hand Editor", "-c", "user.email=hand@example.com", *args], cwd=folder,
                   check=True, capture_output=True)


@pytest.fixture
def reads(monkeypatch) -> list[str]:
    """The case ids whose file is read, in order."""
    read: list[str] = []
    original = Corpus.read_text

    def counting(self, case_id, status, **kwargs):
        read.append(case_id)
        return original(self, case_id, status, **kwargs)

    monkeypatch.setattr(Corpus, "read_text", counting)
    return read


def from_scratch(corpus: Corpus) -> verdicts.Validated:
    for kept in (corpus.root / ".git" / "evalbot").glob("validated-*.json"):
        kept.unlink()
    return validate_cases(corpus)


def same(a: verdicts.Validated, b: verdicts.Validated) -> bool:
    return (a.counts, a.problems, a.secrets, a.files) == (b.counts, b.problems, b.secrets, b.files)


def test_a_second_validate_reads_only_what_changed(corpus_dir, reads):
    corpus = Corpus(corpus_dir)
    first = validate_cases(corpus)
    assert (first.counts, first.problems, first.read) == ({"candidate": 1, "promoted": 6}, [], 7)
    reads.clear()
    again = validate_cases(corpus)
    assert reads == [] and again.read == 0 and same(again, first)
    # A committed edit that breaks a file, a removal, a new file not committed, an edit not committed.
    broken = corpus_dir / "cases" / "tne841s8.yaml"
    broken.write_text(broken.read_text(encoding="utf-8") + "colour: red\n", encoding="utf-8")
    git(corpus_dir, "rm", "-q", "cases/2tj51dm1.yaml")
    git(corpus_dir, "commit", "-qam", "by hand")
    (corpus_dir / "cases" / "new00000.yaml").write_text("id: new00000\n", encoding="utf-8")
    edited = corpus_dir / "cases" / "1breqg51.yaml"
    good = edited.read_text(encoding="utf-8")
    edited.write_text(good.replace("title: ", "title: Edited, ", 1), encoding="utf-8")
    reads.clear()
    changed = validate_cases(corpus)
    assert sorted(reads) == ["1breqg51", "new00000", "tne841s8"]
    assert [problem.split(":")[0] for problem in changed.problems] == ["corpus/cases/new00000.yaml", "corpus/cases/tne841s8.yaml"]
    assert same(changed, from_scratch(corpus))
    # Reverting the uncommitted edit is noticed too (it was dirty last time).
    validate_cases(corpus)
    edited.write_text(good, encoding="utf-8")
    reads.clear()
    validate_cases(corpus)
    assert "1breqg51" in reads


def test_new_code_reads_every_file_again(corpus_dir, reads, monkeypatch):
    corpus = Corpus(corpus_dir)
    validate_cases(corpus)
    monkeypatch.setattr(verdicts, "_fingerprint", lambda: "another evalbot")
    reads.clear()
    assert validate_cases(corpus).read == 7 and len(reads) == 7


def test_damaged_verdicts_only_cost_a_full_read(corpus_dir, reads):
    corpus = Corpus(corpus_dir)
    validate_cases(corpus)
    for kept in (corpus_dir / ".git" / "evalbot").glob("validated-*.json"):
        kept.write_text('{"version": 1, "code": "x", "verdicts": {"cases/x.yaml": [1]}}', encoding="utf-8")
    assert validate_cases(corpus).read == 7


def test_outside_git_every_file_is_read_and_nothing_is_kept(corpus_dir, tmp_path, reads):
    plain = tmp_path / "plain"
    shutil.copytree(corpus_dir, plain, ignore=shutil.ignore_patterns(".git"))
    corpus = Corpus(plain)
    assert validate_cases(corpus).read == 7
    assert validate_cases(corpus).read == 7
    assert not (plain / ".git").exists()

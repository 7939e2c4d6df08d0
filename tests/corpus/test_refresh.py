"""The case index follows the files: parsed again only where git says something changed, rebuilt when it must."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from sqlmodel import select

from bot.corpus import bulk
from bot.corpus import index as caseindex
from bot.corpus import refresh as refreshing
from bot.corpus.files import Corpus
from bot.corpus.refresh import case_file, refresh
from bot.store.tables import CaseIndex, IndexState, get_engine, migrate, session_scope

pytestmark = pytest.mark.migrated_db  # the database starts migrated: each test's first use of it migrates in-process

EXAMPLE_CASES = 7


def git(folder: Path, *args: str) -> str:
    """git as a person editing the corpus by hand would run it (tests have no machine-wide identity)."""
    identity = ["-c", "user.name=Hand Editor", "-c", "user.email=hand@example.com"]
    return subprocess.run(["git", *identity, *args], cwd=folder, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def engine(db_url):
    engine = get_engine(db_url)
    migrate(engine)
    return engine


def run_refresh(engine, corpus: Corpus, **kwargs) -> refreshing.Refreshed:
    with session_scope(engine) as session:
        return refresh(session, corpus, **kwargs)


def rows(engine) -> dict[str, CaseIndex]:
    with session_scope(engine) as session:
        return {row.id: row for row in session.exec(select(CaseIndex)).all()}


def retitle(path: Path, title: str) -> None:
    text = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(f"title: {title}\n" if line.startswith("title:") else line for line in text), encoding="utf-8")


def test_first_refresh_is_full_then_nothing_is_parsed(engine, corpus_dir):
    corpus = Corpus(corpus_dir)
    first = run_refresh(engine, corpus)
    assert (first.mode, first.parsed, first.indexed, first.problems) == ("full", EXAMPLE_CASES, EXAMPLE_CASES, [])
    again = run_refresh(engine, corpus)
    assert (again.mode, again.parsed, again.indexed) == ("unchanged", 0, EXAMPLE_CASES)
    with session_scope(engine) as session:
        state = session.get(IndexState, str(corpus.root))
    assert state is not None and state.commit == git(corpus_dir, "rev-parse", "HEAD").strip()


def test_commits_since_the_index_are_read_and_only_they(engine, corpus_dir, monkeypatch):
    corpus = Corpus(corpus_dir)
    run_refresh(engine, corpus)
    retitle(corpus_dir / "cases" / "tne841s8.yaml", "A new title")
    git(corpus_dir, "rm", "-q", "cases/2tj51dm1.yaml")
    git(corpus_dir, "mv", "candidates/qa31qo8q.yaml", "cases/qa31qo8q.yaml")
    moved = corpus_dir / "cases" / "qa31qo8q.yaml"
    moved.write_text(moved.read_text(encoding="utf-8").replace("status: candidate", "status: promoted")
                     + "expect:\n- contains: sorry\n", encoding="utf-8")
    git(corpus_dir, "add", "-A")
    git(corpus_dir, "commit", "-qm", "three changes")
    read: list[str] = []
    original = refreshing._parse_chunk

    def counting(root, items):
        read.extend(case_id for case_id, _ in items)
        return original(root, items)

    monkeypatch.setattr(refreshing, "_parse_chunk", counting)
    done = run_refresh(engine, corpus)
    assert done.mode == "incremental"
    assert sorted(read) == ["qa31qo8q", "tne841s8"]  # the removed one needs no reading
    index = rows(engine)
    assert "2tj51dm1" not in index and len(index) == EXAMPLE_CASES - 1
    assert index["tne841s8"].title == "A new title"
    assert index["qa31qo8q"].status == "promoted"


def test_uncommitted_files_count_and_a_revert_is_noticed(engine, corpus_dir):
    corpus = Corpus(corpus_dir)
    run_refresh(engine, corpus)
    path = corpus_dir / "cases" / "tne841s8.yaml"
    retitle(path, "Edited, not committed")
    shutil.copy(corpus_dir / "cases" / "1breqg51.yaml", corpus_dir / "cases" / "zzzz0000.yaml")
    copy = corpus_dir / "cases" / "zzzz0000.yaml"
    copy.write_text(copy.read_text(encoding="utf-8").replace("id: 1breqg51", "id: zzzz0000"), encoding="utf-8")
    run_refresh(engine, corpus)
    assert rows(engine)["tne841s8"].title == "Edited, not committed"
    assert "zzzz0000" in rows(engine)
    git(corpus_dir, "checkout", "--", "cases/tne841s8.yaml")
    copy.unlink()
    done = run_refresh(engine, corpus)
    assert done.mode == "incremental"  # the files that were dirty last time are read again
    assert rows(engine)["tne841s8"].title != "Edited, not committed"
    assert "zzzz0000" not in rows(engine)


def test_an_invalid_file_is_reported_until_it_is_fixed(engine, corpus_dir):
    corpus = Corpus(corpus_dir)
    run_refresh(engine, corpus)
    path = corpus_dir / "cases" / "tne841s8.yaml"
    good = path.read_text(encoding="utf-8")
    path.write_text("id: [unclosed\n", encoding="utf-8")
    git(corpus_dir, "commit", "-qam", "broken")
    broken = run_refresh(engine, corpus)
    assert len(broken.problems) == 1 and "tne841s8.yaml" in broken.problems[0]
    assert "tne841s8" not in rows(engine)
    assert run_refresh(engine, corpus).problems == broken.problems  # still reported, not parsed again
    path.write_text(good, encoding="utf-8")
    git(corpus_dir, "commit", "-qam", "fixed")
    assert run_refresh(engine, corpus).problems == []
    assert "tne841s8" in rows(engine)


def test_an_unknown_indexed_commit_rebuilds_in_full(engine, corpus_dir):
    corpus = Corpus(corpus_dir)
    run_refresh(engine, corpus)
    with session_scope(engine) as session:
        state = session.get(IndexState, str(corpus.root))
        assert state is not None
        state.commit = "0" * 40  # e.g. history rewritten by a force-push
        session.add(state)
    assert run_refresh(engine, corpus).mode == "full"
    assert run_refresh(engine, corpus, full=True).mode == "full"
    assert len(rows(engine)) == EXAMPLE_CASES


def test_a_corpus_outside_git_is_indexed_in_full(engine, corpus_dir, tmp_path):
    plain = tmp_path / "plain"
    shutil.copytree(corpus_dir, plain, ignore=shutil.ignore_patterns(".git"))
    corpus = Corpus(plain)
    assert run_refresh(engine, corpus).mode == "full"
    assert run_refresh(engine, corpus).mode == "full"
    assert not (plain / ".git").exists()  # reading the index never initialises a repository


def test_many_files_are_parsed_in_worker_processes(engine, corpus_dir, monkeypatch):
    monkeypatch.setattr(bulk, "PARALLEL_FROM", 2)
    monkeypatch.setattr(bulk, "CHUNK", 3)
    (corpus_dir / "cases" / "bad00000.yaml").write_text("id: bad00000\n", encoding="utf-8")
    done = run_refresh(engine, Corpus(corpus_dir), full=True)
    assert (done.indexed, len(done.problems)) == (EXAMPLE_CASES, 1)
    with session_scope(engine) as session:
        listed, total = caseindex.listing(session, status="promoted", limit=3)
    assert total == 6 and listed[0].id == "tne841s8"


@pytest.mark.parametrize(("path", "expected"), [
    ("cases/abcd1234.yaml", ("abcd1234", "promoted")),
    ("candidates/abcd1234.yaml", ("abcd1234", "candidate")),
    ("cases/.abcd1234.yaml.tmp", None),
    ("cases/sub/abcd1234.yaml", None),
    ("prompts/system.md", None),
    ("cases/abcd1234.yml", None),
])
def test_case_file_names(path, expected):
    assert case_file(path) == expected


def snapshot(engine) -> dict[str, dict]:
    return {case_id: row.model_dump() for case_id, row in rows(engine).items()}


def test_a_full_rebuild_equals_the_incremental_index(engine, corpus_dir):
    corpus = Corpus(corpus_dir)
    run_refresh(engine, corpus)
    # Every kind of change at once: committed edits, a removal, a move, a new file, an invalid one, and some not
    # committed (edited, untracked).
    retitle(corpus_dir / "cases" / "tne841s8.yaml", "Committed retitle")
    git(corpus_dir, "rm", "-q", "cases/2tj51dm1.yaml")
    git(corpus_dir, "mv", "candidates/qa31qo8q.yaml", "cases/qa31qo8q.yaml")
    moved = corpus_dir / "cases" / "qa31qo8q.yaml"
    moved.write_text(moved.read_text(encoding="utf-8").replace("status: candidate", "status: promoted")
                     + "expect:\n- contains: sorry\n", encoding="utf-8")
    (corpus_dir / "cases" / "bad00000.yaml").write_text("id: bad00000\n", encoding="utf-8")
    git(corpus_dir, "add", "-A")
    git(corpus_dir, "commit", "-qm", "several changes")
    retitle(corpus_dir / "cases" / "1breqg51.yaml", "Not committed")
    shutil.copy(corpus_dir / "cases" / "ewjirjst.yaml", corpus_dir / "cases" / "zzzz0000.yaml")
    copy = corpus_dir / "cases" / "zzzz0000.yaml"
    copy.write_text(copy.read_text(encoding="utf-8").replace("id: ewjirjst", "id: zzzz0000"), encoding="utf-8")
    incremental = run_refresh(engine, corpus)
    assert incremental.mode == "incremental"
    kept = snapshot(engine)
    full = run_refresh(engine, corpus, full=True)
    assert full.mode == "full"
    assert snapshot(engine) == kept
    assert full.problems == incremental.problems and len(full.problems) == 1 and "bad00000.yaml" in full.problems[0]
    assert (full.indexed, incremental.indexed) == (len(kept), len(kept))
    # And both agree with the files.
    cases, _ = corpus.scan()
    assert {case.id: (case.status, case.title) for case in cases} == {k: (v["status"], v["title"]) for k, v in kept.items()}


def test_a_full_rebuild_keeps_the_near_duplicate_texts_so_a_first_warm_reads_nothing(engine, corpus_dir, monkeypatch):
    from bot.corpus import similarity

    corpus = Corpus(corpus_dir)
    path = corpus_dir / "cases" / "tne841s8.yaml"
    run_refresh(engine, corpus, full=True)  # what `serve` does at a first start, before its capture worker warms
    retitle(path, "Edited after the rebuild")  # a file changed since: read again, and only it
    read: list[str] = []
    load = Corpus.load

    def counting(self, case_id, status):
        read.append(case_id)
        return load(self, case_id, status)

    monkeypatch.setattr(Corpus, "load", counting)
    monkeypatch.setattr(similarity, "_CACHE", similarity._TextCache())  # a freshly started worker's cache
    assert similarity.warm(corpus) == EXAMPLE_CASES
    assert read == ["tne841s8"]
    found = similarity.near_duplicates(corpus.get("tne841s8"), corpus, threshold=0.0, limit=10)
    assert {d.case_id for d in found} == set(corpus.ids()) - {"tne841s8"}
    assert {d.title for d in found if d.case_id == "1breqg51"} == {corpus.get("1breqg51").title}

"""The fast read of a current case index (plain DB-API, no SQLAlchemy) shows what the ordinary refresh path shows,
and steps aside whenever the index is not current: a new commit, an uncommitted or reverted file, an old schema."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.corpus import current_index
from bot.corpus.files import Corpus
from bot.corpus.refresh import current_listing
from bot.store.tables import get_engine, migrate, session_scope


def git(folder: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=Hand Editor", "-c", "user.email=hand@example.com", *args], cwd=folder,
                   check=True, capture_output=True)


@pytest.fixture
def engine(db_url):
    engine = get_engine(db_url)
    migrate(engine)
    return engine


def ordinary(engine, corpus: Corpus, **kwargs) -> tuple[list[tuple], int, list[str]]:
    with session_scope(engine) as session:
        rows, total, problems = current_listing(session, corpus, **kwargs)
    return [(r.id, r.status, r.flag_count, r.flagged_at.replace(tzinfo=None), r.title, list(r.tags)) for r in rows], total, problems


def fast(db_url: str, corpus: Corpus, **kwargs) -> tuple[list[tuple], int, list[str]] | None:
    page = current_index.page(db_url, corpus, **kwargs)
    if page is None:
        return None
    return ([(r.id, r.status, r.flag_count, r.flagged_at.replace(tzinfo=None), r.title, r.tags) for r in page.rows],
            page.total, page.problems)


@pytest.mark.parametrize("kwargs", [{}, {"status": "candidate"}, {"status": "promoted", "limit": 2, "offset": 1}],
                         ids=["all", "candidates", "a-page-of-cases"])
def test_a_current_index_reads_the_same_as_the_ordinary_path(engine, db_url, corpus_dir, kwargs):
    corpus = Corpus(corpus_dir)
    assert current_index.page(db_url, corpus) is None  # never indexed: the ordinary path must build it
    expected = ordinary(engine, corpus, **kwargs)
    assert expected[1] > 0 and expected[0]
    assert fast(db_url, corpus, **kwargs) == expected
    assert current_index.count(db_url, corpus) == (7, [])


def test_it_steps_aside_until_a_refresh_has_read_what_changed(engine, db_url, corpus_dir):
    corpus = Corpus(corpus_dir)
    ordinary(engine, corpus)
    path = corpus_dir / "cases" / "tne841s8.yaml"
    original = path.read_text(encoding="utf-8")
    path.write_text(original.replace("title: ", "title: Uncommitted, ", 1), encoding="utf-8")
    assert current_index.page(db_url, corpus) is None and current_index.count(db_url, corpus) is None
    assert any(row[4].startswith("Uncommitted, ") for row in ordinary(engine, corpus)[0])
    # Reverted: the file was uncommitted at the last refresh, so it is read once more before the fast path returns.
    path.write_text(original, encoding="utf-8")
    assert current_index.page(db_url, corpus) is None
    ordinary(engine, corpus)
    assert fast(db_url, corpus) == ordinary(engine, corpus)
    # A commit made without evalbot: HEAD moved, so the index is behind until refreshed.
    git(corpus_dir, "rm", "-q", "cases/2tj51dm1.yaml")
    git(corpus_dir, "commit", "-qm", "removed by hand")
    assert current_index.page(db_url, corpus) is None
    listed = ordinary(engine, corpus)
    assert "2tj51dm1" not in {row[0] for row in listed[0]}
    assert fast(db_url, corpus) == listed


def test_it_reports_the_unreadable_files_the_index_skipped(engine, db_url, corpus_dir):
    corpus = Corpus(corpus_dir)
    (corpus_dir / "cases" / "bad00001.yaml").write_text("title: [unclosed\n", encoding="utf-8")
    git(corpus_dir, "add", "-A")
    git(corpus_dir, "commit", "-qm", "a broken file")
    expected = ordinary(engine, corpus)
    assert len(expected[2]) == 1 and "cases/bad00001.yaml" in expected[2][0]
    assert fast(db_url, corpus) == expected


def test_an_older_schema_or_another_corpus_takes_the_ordinary_path(engine, db_url, corpus_dir, tmp_path):
    corpus = Corpus(corpus_dir)
    ordinary(engine, corpus)
    assert fast(db_url, corpus) is not None
    other = tmp_path / "other"
    subprocess.run(["cp", "-r", str(corpus_dir), str(other)], check=True)
    assert current_index.page(db_url, Corpus(other)) is None  # the index describes another folder
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0005'"))
    assert current_index.page(db_url, corpus) is None  # the ordinary path migrates before it reads


def test_a_database_that_is_not_there_is_not_created(tmp_path, corpus_dir):
    url = f"sqlite:///{tmp_path / 'missing' / 'state.db'}"
    assert current_index.page(url, Corpus(corpus_dir)) is None
    assert not (tmp_path / "missing").exists()
    assert current_index.page("postgresql+psycopg://nobody@127.0.0.1:1/none", Corpus(corpus_dir)) is None

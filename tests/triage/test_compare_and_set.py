"""Triage as a compare-and-set: refusals name who decided first; a failure anywhere changes nothing;
a corpus never committed, or with untracked files around, loses nothing. On both databases."""

from __future__ import annotations

import subprocess
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, select

from bot.core import clock
from bot.core.errors import CaseStateError, CorpusError
from bot.corpus.files import Corpus, case_digest
from bot.corpus.gitrepo import Author, GitRepo
from bot.corpus.refresh import refresh
from bot.store.tables import CaseIndex, Rejection, get_engine, migrate, session_scope
from bot.triage import decisions as triage
from tests.helpers.corpora import committed_corpus_with_clutter, git_state, loose_corpus, snapshot

pytestmark = pytest.mark.migrated_db  # the database starts migrated: each test's first use of it migrates in-process

ANA = Author(user_id="U0ANA0001", name="Ana")
BEN = Author(user_id="U0BEN0001", name="Ben")
STOVES = "qa31qo8q"
T0 = datetime(2031, 5, 6, 7, 8, 9, tzinfo=timezone.utc)
EXPECT = triage.parse_expectations([{"not_contains": "another outdoor retailer"}])


@pytest.fixture
def engine(db_url):
    engine = get_engine(db_url)
    migrate(engine)
    return engine


@pytest.fixture(params=["never-committed", "untracked-around"])
def corpus(request, tmp_path, engine):
    make = loose_corpus if request.param == "never-committed" else committed_corpus_with_clutter
    corpus = Corpus(make(tmp_path / "corpus"))
    with session_scope(engine) as session:
        refresh(session, corpus, full=True)
    return corpus


@pytest.fixture
def loose(tmp_path, engine):
    """The harder case for naming who decided: a folder git never saw, whose first commits are the decisions."""
    return Corpus(loose_corpus(tmp_path / "corpus"))


def promote(corpus, engine, who=ANA):
    with session_scope(engine) as session:
        return triage.promote(corpus=corpus, session=session, ref=STOVES, actor=who, expect=EXPECT)


def reject(corpus, engine, who=ANA):
    with session_scope(engine) as session:
        return triage.reject(corpus=corpus, session=session, ref=STOVES, actor=who, reason="we sell no stoves")


def edit(corpus, engine, who=ANA, digest=None, title="Recommends another shop"):
    with session_scope(engine) as session:
        return triage.edit(corpus=corpus, session=session, ref=STOVES, actor=who, title=title, digest=digest)


def db_rows(engine):
    with session_scope(engine) as session:
        index = {(r.id, r.status, r.title) for r in session.exec(select(CaseIndex))}
        rejections = [(r.case_id, r.rejected_by) for r in session.exec(select(Rejection))]
    return index, rejections


def log(corpus, *args):
    return subprocess.run(["git", "log", *args], cwd=corpus.root, capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("operation", [promote, reject, edit])
def test_each_decision_is_one_commit_of_its_own_paths(corpus, engine, operation):
    head, status = git_state(corpus.root)
    # In a folder git never saw, every file is untracked (and stays so: a decision commits its own paths only).
    listed = status.splitlines() if head else [f"?? {name}" for name in snapshot(corpus.root)]
    untracked_before = {line for line in listed if STOVES not in line}
    assert all(line.startswith("?? ") for line in untracked_before)
    operation(corpus, engine)
    verb = {promote: "Promote", reject: "Reject", edit: "Edit"}[operation]
    assert log(corpus, "-1", "--format=%an <%ae>|%cn|%s").startswith(f"Ana <U0ANA0001@users.slack>|evalbot|{verb} {STOVES}")
    changed = set(log(corpus, "-1", "--format=", "--name-only").split())
    assert changed <= {f"candidates/{STOVES}.yaml", f"cases/{STOVES}.yaml"}
    assert set(git_state(corpus.root)[1].splitlines()) == untracked_before  # nothing else committed, staged or lost
    files = snapshot(corpus.root)
    status = {promote: "cases", reject: None, edit: "candidates"}[operation]
    assert {k for k in files if STOVES in k} == ({f"{status}/{STOVES}.yaml"} if status else set())
    index, rejections = db_rows(engine)
    assert (STOVES in {row[0] for row in index}) == (operation is not reject)
    assert rejections == ([(STOVES, "U0ANA0001")] if operation is reject else [])


def _git_fails(*args, **kwargs):
    raise CorpusError("git commit-tree failed: disk full")


def _database_fails(*args, **kwargs):
    raise OperationalError("COMMIT", {}, Exception("disk full"))


@pytest.mark.parametrize("broken", ["git", "database"])
@pytest.mark.parametrize("operation", [promote, reject, edit])
def test_a_failure_leaves_files_git_and_database_as_they_were(corpus, engine, operation, broken, monkeypatch):
    files, git, rows = snapshot(corpus.root), git_state(corpus.root), db_rows(engine)
    with monkeypatch.context() as patched, pytest.raises((CorpusError, OperationalError), match="disk full"):
        if broken == "git":
            patched.setattr(GitRepo, "commit_files", _git_fails)
        else:  # the commit exists when the database write fails: it is taken back
            patched.setattr(Session, "commit", _database_fails)
        operation(corpus, engine)
    assert snapshot(corpus.root) == files
    assert git_state(corpus.root) == git or git == ("", "")  # a loose folder: `git init` is all that happened
    assert git_state(corpus.root)[0] == git[0]
    assert db_rows(engine) == rows


def test_second_promotion_is_refused_naming_the_first(loose, engine):
    corpus = loose
    with clock.frozen_at(T0):
        promote(corpus, engine, ANA)
    head, rows = git_state(corpus.root)[0], db_rows(engine)
    with clock.frozen_at(T0 + timedelta(seconds=3)), pytest.raises(CaseStateError) as refused:
        promote(corpus, engine, BEN)
    assert f"{STOVES} is already a promoted case (promoted by @U0ANA0001 3 s ago)" in str(refused.value)
    assert git_state(corpus.root)[0] == head and db_rows(engine) == rows
    assert corpus.get(STOVES).promoted_by == ANA.user_id


def test_promotion_after_a_rejection_is_refused_naming_it(loose, engine):
    corpus = loose
    with clock.frozen_at(T0):
        reject(corpus, engine, ANA)
    head, rows = git_state(corpus.root)[0], db_rows(engine)
    for late in (promote, reject, edit):
        with clock.frozen_at(T0 + timedelta(minutes=4)), pytest.raises(CaseStateError) as refused:
            late(corpus, engine, BEN)
        assert str(refused.value) == f"{STOVES} was rejected by @U0ANA0001 4 min ago"
    assert git_state(corpus.root)[0] == head and db_rows(engine) == rows


def test_rejection_after_a_promotion_is_refused_naming_it(loose, engine):
    corpus = loose
    with clock.frozen_at(T0):
        promote(corpus, engine, ANA)
    head = git_state(corpus.root)[0]
    with clock.frozen_at(T0 + timedelta(hours=2)), pytest.raises(CaseStateError) as refused:
        reject(corpus, engine, BEN)
    assert str(refused.value) == (f"{STOVES} is a promoted case (promoted by @U0ANA0001 2 h ago); "
                                  "only candidates can be rejected")
    assert git_state(corpus.root)[0] == head and corpus.get(STOVES).status == "promoted"
    assert db_rows(engine)[1] == []


def test_an_edit_of_a_changed_case_is_refused_naming_who_changed_it(loose, engine):
    corpus = loose
    opened = case_digest(corpus.get(STOVES))
    with clock.frozen_at(T0):
        edit(corpus, engine, ANA, digest=opened, title="Ana's title")
    head = git_state(corpus.root)[0]
    with clock.frozen_at(T0 + timedelta(seconds=3)), pytest.raises(CaseStateError) as refused:
        edit(corpus, engine, BEN, digest=opened, title="Ben's title")
    assert str(refused.value).startswith(f"{STOVES} changed since you opened the form (edited by @U0ANA0001 3 s ago)")
    assert git_state(corpus.root)[0] == head and corpus.get(STOVES).title == "Ana's title"
    edit(corpus, engine, BEN, digest=case_digest(corpus.get(STOVES)), title="Ben's title")  # the current version
    assert corpus.get(STOVES).title == "Ben's title"


def test_the_cli_in_a_folder_git_never_saw(tmp_path, db_url, monkeypatch):
    """The reported case: the example corpus copied outside any repository, then `corpus promote --use-suggested`."""
    from typer.testing import CliRunner

    from bot.cli import app
    from bot.core.settings import get_settings

    monkeypatch.setenv("EVALBOT_CORPUS_DIR", str(loose_corpus(tmp_path / "loose")))
    get_settings.cache_clear()
    runner = CliRunner()
    promoted = runner.invoke(app, ["corpus", "promote", "qa31", "--use-suggested", "--as", "U0ANA0001"])
    assert promoted.exit_code == 0, promoted.output
    assert (tmp_path / "loose" / "cases" / f"{STOVES}.yaml").exists()
    assert not (tmp_path / "loose" / "candidates" / f"{STOVES}.yaml").exists()
    for args in (["reject", STOVES, "dup"], ["promote", STOVES, "--use-suggested"]):
        again = runner.invoke(app, ["corpus", *args, "--as", "U0BEN0001"])
        assert again.exit_code == 1 and "promoted by @U0ANA0001 " in again.output, again.output
    assert git_state(tmp_path / "loose")[1].count("??") == len(snapshot(tmp_path / "loose")) - 1  # the rest untracked

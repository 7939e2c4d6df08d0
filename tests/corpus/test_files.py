"""The corpus store: files, atomic writes, one commit per change, prefixes, traversal, locking, push."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bot.core.errors import AmbiguousIdError, CaseNotFoundError, InvalidCaseError, InvalidIdError
from bot.corpus.files import Corpus, atomic_write
from bot.corpus.gitrepo import Author
from tests.helpers import candidate

ALICE = Author(user_id="U0ALICE", name="Alice")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout


def test_git_init_when_folder_is_in_no_work_tree(tmp_path):
    corpus = Corpus(tmp_path / "fresh")
    case = candidate()
    with corpus.change(author=ALICE, message="Capture") as tx:
        tx.write(case)
    assert (tmp_path / "fresh" / ".git").is_dir()
    assert corpus.find(case.id) == case


def test_a_change_is_one_commit_touching_only_the_corpus_authored_as_the_user(tmp_path):
    top = tmp_path / "project"
    top.mkdir()
    git(top, "init", "-q")
    (top / "README.md").write_text("hello\n")
    git(top, "add", "README.md")  # staged by someone else, must not be swept into the bot's commit
    corpus = Corpus(top / "corpus")
    with corpus.change(author=ALICE, message="Capture x") as tx:
        tx.write(candidate())
    log = git(top, "log", "--format=%an <%ae>|%cn|%s", "--name-only")
    assert log.splitlines()[0] == "Alice <U0ALICE@users.slack>|evalbot|Capture x"
    assert "README.md" not in log
    assert git(top, "diff", "--cached", "--name-only").strip() == "README.md"
    assert git(top, "rev-list", "--count", "HEAD").strip() == "1"


def test_unchanged_write_makes_no_commit(corpus_dir):
    corpus = Corpus(corpus_dir)
    before = corpus.repo.head()
    case = corpus.get("qa31")
    with corpus.change(author=ALICE, message="noop") as tx:
        tx.write(case)
    assert corpus.repo.head() == before


def test_failure_inside_a_change_restores_files_and_commits_nothing(corpus_dir):
    corpus = Corpus(corpus_dir)
    before = corpus.repo.head()
    original = (corpus_dir / "candidates" / "qa31qo8q.yaml").read_text()
    new = candidate("1763799999.000001")
    with pytest.raises(RuntimeError):
        with corpus.change(author=ALICE, message="half") as tx:
            tx.write(new)
            promoted = corpus.get("qa31").model_copy(update={"title": "Changed"})
            tx.write(promoted)
            raise RuntimeError("crash before commit")
    assert corpus.repo.head() == before
    assert not corpus.path_for(new.id, "candidate").exists()
    assert (corpus_dir / "candidates" / "qa31qo8q.yaml").read_text() == original
    assert not corpus.repo.is_dirty(corpus_dir)


def test_atomic_write_leaves_no_temp_files(tmp_path):
    target = tmp_path / "out" / "a.yaml"
    atomic_write(target, "one")
    atomic_write(target, "two")
    assert target.read_text() == "two"
    assert [p.name for p in target.parent.iterdir()] == ["a.yaml"]


def test_prefix_lookup(corpus_dir):
    corpus = Corpus(corpus_dir)
    assert corpus.get("tne8").id == "tne841s8"
    assert corpus.get("TNE841S8").id == "tne841s8"


def test_ambiguous_prefix_is_a_clear_error(tmp_path):
    corpus = Corpus(tmp_path / "c")
    first, second = candidate("1.1"), candidate("1.2")
    # Force two ids with a shared prefix by writing files under chosen names.
    for case_id, case in (("abcd1111", first), ("abcd2222", second)):
        with corpus.change(author=ALICE, message="add") as tx:
            tx.write(case.model_copy(update={"id": case_id}))
    with pytest.raises(AmbiguousIdError, match="'abcd' matches 2 cases .*abcd1111, abcd2222.*type more"):
        corpus.get("abcd")
    assert corpus.get("abcd1").id == "abcd1111"


@pytest.mark.parametrize("ref", ["../../etc/passwd", "..%2f..", "/etc/passwd", "cases/../x"])
def test_traversal_ids_are_refused(corpus_dir, ref):
    corpus = Corpus(corpus_dir)
    with pytest.raises(InvalidIdError):
        corpus.get(ref)
    with pytest.raises(InvalidIdError):
        corpus.path_for(ref, "promoted")


def test_unknown_id(corpus_dir):
    with pytest.raises(CaseNotFoundError, match="no case has an id starting with 'zzzz'"):
        Corpus(corpus_dir).get("zzzz")


def test_file_whose_id_disagrees_with_its_name_is_invalid(corpus_dir):
    path = corpus_dir / "cases" / "tne841s8.yaml"
    path.write_text(path.read_text().replace("id: tne841s8", "id: other123"))
    with pytest.raises(InvalidCaseError, match="must match the file's name"):
        Corpus(corpus_dir).get("tne8")


def test_scan_reports_each_invalid_file_and_keeps_the_rest(corpus_dir):
    (corpus_dir / "cases" / "broken01.yaml").write_text("id: broken01\ntitle: [oops\n")
    cases, problems = Corpus(corpus_dir).scan()
    assert len(cases) == 7
    assert len(problems) == 1 and "cases/broken01.yaml: not valid YAML" in problems[0]


def test_push_to_remote_and_failed_push_keeps_the_commit(tmp_path, caplog):
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    corpus = Corpus(tmp_path / "c", push_remote=str(remote))
    with corpus.change(author=ALICE, message="first") as tx:
        tx.write(candidate("1.1"))
    assert git(remote, "log", "--format=%s", "main").strip() == "first"

    broken = Corpus(tmp_path / "c", push_remote=str(tmp_path / "missing.git"))
    with broken.change(author=ALICE, message="second") as tx:
        tx.write(candidate("1.2"))
    assert git(tmp_path / "c", "log", "-1", "--format=%s").strip() == "second"
    assert "corpus push" in caplog.text and "will retry" in caplog.text
    # The next successful push carries the commit that could not be pushed before.
    assert corpus.push()
    assert git(remote, "log", "--format=%s", "main").split() == ["second", "first"]


def test_rejected_push_is_rebased_and_retried(tmp_path):
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    one = Corpus(tmp_path / "one", push_remote=str(remote))
    with one.change(author=ALICE, message="base") as tx:
        tx.write(candidate("1.1"))
    subprocess.run(["git", "clone", "-q", str(remote), str(tmp_path / "two")], check=True)
    two = Corpus(tmp_path / "two", push_remote=str(remote))
    with two.change(author=ALICE, message="from two") as tx:
        tx.write(candidate("2.2"))
    with one.change(author=ALICE, message="from one") as tx:
        tx.write(candidate("3.3"))
    assert git(remote, "log", "--format=%s", "main").split("\n")[:3] == ["from one", "from two", "base"]


def test_deleting_a_missing_file_is_an_error_and_changes_nothing(corpus_dir):
    corpus = Corpus(corpus_dir)
    head = corpus.repo.head()
    gone = candidate("1763799999.000002")
    with pytest.raises(CaseNotFoundError, match="not in the corpus"):
        with corpus.change(author=ALICE, message="Reject") as tx:
            tx.delete(gone)
    assert corpus.repo.head() == head and not corpus.repo.is_dirty(corpus_dir)


def test_a_failed_change_puts_back_files_git_never_saw(tmp_path):
    corpus = Corpus(tmp_path / "loose")
    case = candidate()
    path = corpus.path_for(case.id, "candidate")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"hand-written\r\nnever committed \xff\n")  # CRLF, not even UTF-8: put back byte for byte
    with pytest.raises(RuntimeError):
        with corpus.change(author=ALICE, message="Promote") as tx:
            tx.write(case.model_copy(update={"status": "promoted", "expect": case.suggested_expect, "suggested_expect": []}))
            assert not path.exists()
            raise RuntimeError("crash before commit")
    assert path.read_bytes() == b"hand-written\r\nnever committed \xff\n"
    assert not corpus.path_for(case.id, "promoted").exists()
    assert corpus.repo.head() is None

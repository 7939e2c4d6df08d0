"""Git plumbing without any machine git identity: exact-path commits, never-committed folders, rebases."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bot.core.errors import CorpusError
from bot.corpus.gitrepo import Author, GitRepo

ANA = Author(user_id="U0ANA", name="Ana")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout


def test_the_suite_has_no_git_identity(tmp_path):
    """Every test runs as in a bare container: no global or system identity to fall back on."""
    assert subprocess.run(["git", "config", "user.name"], cwd=tmp_path, capture_output=True).returncode == 1
    assert subprocess.run(["git", "var", "GIT_COMMITTER_IDENT"], cwd=tmp_path, capture_output=True).returncode != 0


def test_first_commit_takes_only_its_paths_and_leaves_untracked_files_alone(tmp_path):
    repo = GitRepo.for_folder(tmp_path / "c")
    (tmp_path / "c" / "notes.txt").write_text("mine\n")
    (tmp_path / "c" / "cases").mkdir()
    case = tmp_path / "c" / "cases" / "a.yaml"
    case.write_text("id: a\n")
    assert repo.commit([case], message="Add a", author=ANA)
    assert git(repo.top, "log", "--format=%an <%ae>|%cn <%ce>|%s").strip() == "Ana <U0ANA@users.slack>|evalbot <evalbot@localhost>|Add a"
    assert git(repo.top, "ls-tree", "-r", "--name-only", "HEAD").split() == ["cases/a.yaml"]
    assert git(repo.top, "status", "--porcelain").strip() == "?? notes.txt"
    assert git(repo.top, "symbolic-ref", "--short", "HEAD").strip() == "main"


def test_deleting_a_file_git_never_saw_commits_nothing(tmp_path):
    repo = GitRepo.for_folder(tmp_path / "c")
    ghost = tmp_path / "c" / "candidates" / "x.yaml"
    assert repo.commit([ghost], message="Reject x", author=ANA) is False
    assert repo.head() is None


def test_commit_files_records_what_was_given_not_what_is_on_disk(tmp_path):
    repo = GitRepo.for_folder(tmp_path / "c")
    path = tmp_path / "c" / "a.yaml"
    path.write_text("later\n")
    assert repo.commit_files({path: "mine\n"}, message="mine", author=ANA)
    assert git(repo.top, "show", "HEAD:a.yaml") == "mine\n"
    assert path.read_text() == "later\n"
    assert repo.commit_files({path: None}, message="gone", author=ANA)
    assert git(repo.top, "ls-tree", "-r", "--name-only", "HEAD").strip() == ""
    assert repo.commit_files({path: None}, message="again", author=ANA) is None


def test_git_errors_keep_the_whole_message(tmp_path):
    repo = GitRepo.for_folder(tmp_path / "c")
    long_name = "n" * 900
    with pytest.raises(CorpusError) as caught:
        repo.run("checkout", long_name)
    assert long_name in str(caught.value)


@pytest.fixture
def diverged(tmp_path):
    """A remote with a commit the local clone lacks, and a clone with an unpushed commit of its own."""
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    clones = []
    for name in ("one", "two"):
        subprocess.run(["git", "clone", "-q", str(remote), str(tmp_path / name)], check=True, capture_output=True)
        clones.append(GitRepo(tmp_path / name))
    one, two = clones
    (one.top / "base.txt").write_text("base\n")
    one.commit([one.top / "base.txt"], message="base", author=ANA)
    one.push(str(remote))
    two.pull(str(remote))
    return remote, one, two


def test_a_rebase_needs_no_global_identity(diverged):
    remote, one, two = diverged
    (two.top / "two.txt").write_text("two\n")
    two.commit([two.top / "two.txt"], message="from two", author=Author(user_id="U0BOB", name="Bob"))
    two.push(str(remote))
    (one.top / "one.txt").write_text("one\n")
    one.commit([one.top / "one.txt"], message="from one", author=ANA)
    one.pull(str(remote))  # rebases the unpushed commit: git needs a committer for it
    assert git(one.top, "log", "--format=%s|%an|%cn").splitlines() == ["from one|Ana|evalbot", "from two|Bob|evalbot", "base|Ana|evalbot"]
    assert not one.rebasing()


def test_a_rebase_that_stops_is_aborted_and_the_local_commit_kept(diverged):
    remote, one, two = diverged
    (two.top / "base.txt").write_text("theirs\n")
    two.commit([two.top / "base.txt"], message="theirs", author=ANA)
    two.push(str(remote))
    (one.top / "base.txt").write_text("ours\n")
    one.commit([one.top / "base.txt"], message="ours", author=ANA)
    with pytest.raises(CorpusError, match="stopped and was aborted"):
        one.pull(str(remote))
    assert not one.rebasing()
    assert git(one.top, "log", "-1", "--format=%s").strip() == "ours"
    assert (one.top / "base.txt").read_text() == "ours\n"
    assert git(one.top, "status", "--porcelain").strip() == ""
    with pytest.raises(CorpusError, match="stopped and was aborted"):
        one.push(str(remote))  # rejected, rebased, stopped: refused, not left half-way
    assert not one.rebasing()


def test_a_change_on_a_clone_that_cannot_rebase_is_refused_and_changes_nothing(diverged):
    from bot.core.errors import RebaseStoppedError
    from bot.corpus.files import Corpus
    from tests.helpers import candidate

    remote, one, two = diverged
    (two.top / "base.txt").write_text("theirs\n")
    two.commit([two.top / "base.txt"], message="theirs", author=ANA)
    two.push(str(remote))
    (one.top / "base.txt").write_text("ours\n")
    one.commit([one.top / "base.txt"], message="ours", author=ANA)
    corpus = Corpus(one.top / "corpus", push_remote=str(remote))
    head = one.head()
    with pytest.raises(RebaseStoppedError):
        with corpus.change(author=ANA, message="Capture") as tx:
            tx.write(candidate())
    assert one.head() == head and not one.rebasing() and not (one.top / "corpus" / "candidates").exists()

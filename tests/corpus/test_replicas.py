"""Replicas with their own clones of the corpus, one shared remote and one database: nothing lost or doubled."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest

from bot.corpus.files import Corpus
from bot.corpus.gitrepo import Author
from bot.runtime import CORPUS_LOCK_KEY
from bot.store.tables import advisory_lock, get_engine
from tests.helpers import candidate


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout


@pytest.fixture
def replicas(tmp_path, db_url):
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    engine = get_engine(db_url)
    clones = []
    for name in ("one", "two"):
        subprocess.run(["git", "clone", "-q", str(remote), str(tmp_path / name)], check=True, capture_output=True)
        clones.append(Corpus(tmp_path / name / "corpus", push_remote=str(remote),
                             shared_lock=lambda: advisory_lock(engine, CORPUS_LOCK_KEY)))
    return remote, clones


def capture_or_flag(corpus: Corpus, ts: str, user: str) -> None:
    """What capture does with a possibly stale clone: decide inside the change, after its pull."""
    case = candidate(ts, flagged_by=[user])
    with corpus.change(author=Author(user_id=user), message=f"Capture {case.id}") as tx:
        existing = corpus.find(case.id)
        if existing is None:
            tx.write(case)
        elif user not in existing.source.flagged_by:
            source = existing.source.model_copy(update={"flagged_by": [*existing.source.flagged_by, user]})
            tx.write(existing.model_copy(update={"source": source}))


def test_concurrent_changes_on_two_clones_all_reach_the_remote(replicas, db_url):
    remote, (one, two) = replicas
    if not db_url.startswith("postgresql"):
        pytest.skip("replicas with separate clones need PostgreSQL's lock; on SQLite there is one host")
    threads = [
        threading.Thread(target=lambda c=c, u=u: [capture_or_flag(c, f"17000000{i:02d}.000100", u) for i in range(8)])
        for c, u in ((one, "U0ONE"), (two, "U0TWO"))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    files = git(remote, "ls-tree", "-r", "--name-only", "main").split()
    assert len(files) == 8  # the same 8 messages flagged on both replicas: 8 cases, not 16
    one.pull()
    flagged = sorted(tuple(sorted(c.source.flagged_by)) for c in one.cases())
    assert flagged == [("U0ONE", "U0TWO")] * 8
    assert git(remote, "rev-list", "--count", "main").strip() == "16"


def test_unreachable_remote_keeps_the_commit_locally(tmp_path, db_url, caplog):
    corpus = Corpus(tmp_path / "solo", push_remote=str(tmp_path / "nowhere.git"))
    capture_or_flag(corpus, "1700000000.000100", "U0A")
    assert corpus.repo.run("log", "--format=%s").startswith("Capture")
    assert "pull from" in caplog.text and "push to" in caplog.text


def test_a_replica_with_an_unpushed_commit_rebases_without_any_git_identity(replicas, tmp_path, db_url):
    """As in a container whose image sets no committer: the rebase onto the remote names one itself."""
    remote, (one, two) = replicas
    capture_or_flag(one, "1700000001.000100", "U0ONE")
    away = tmp_path / "away.git"
    remote.rename(away)  # the remote is unreachable: one's next commit stays local
    capture_or_flag(one, "1700000002.000100", "U0ONE")
    away.rename(remote)
    capture_or_flag(two, "1700000003.000100", "U0TWO")  # the remote moves on without one's commit
    capture_or_flag(one, "1700000004.000100", "U0ONE")  # pull --rebase replays the unpushed commit, then pushes
    assert not one.repo.rebasing()
    subjects = git(remote, "log", "--format=%s|%an|%cn", "main").splitlines()
    assert [s.split("|", 1)[1] for s in subjects] == ["U0ONE|evalbot", "U0ONE|evalbot", "U0TWO|evalbot", "U0ONE|evalbot"]
    assert len(git(remote, "ls-tree", "-r", "--name-only", "main").split()) == 4

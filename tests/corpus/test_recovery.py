"""Recovery at start: temp files, a stale index.lock and uncommitted case files left by a crash are settled."""

from __future__ import annotations

import subprocess
import time

from bot.corpus import recovery
from bot.corpus.casefile import dump_case
from bot.corpus.files import Corpus
from bot.corpus.gitrepo import SYSTEM
from bot.corpus.schema import Case


def status(corpus: Corpus) -> str:
    return corpus.repo.run("status", "--porcelain")


def a_candidate(corpus: Corpus, case_id: str):
    case = corpus.cases("candidate")[0]
    return case.model_copy(update={"id": case_id})


def test_a_crashed_corpus_is_committed_clean(corpus_dir):
    corpus = Corpus(corpus_dir)
    kept = a_candidate(corpus, "zz000001")
    (corpus_dir / "candidates" / "zz000001.yaml").write_text(dump_case(kept))  # written, never committed
    (corpus_dir / "candidates" / "zz000002.yaml").write_text("id: [not a case")  # torn: not valid
    (corpus_dir / "candidates" / ".zz000003.yaml.abc123.tmp").write_text("half")
    (corpus.repo.git_dir / "index.lock").write_text("")
    assert status(corpus)

    done = recovery.recover(corpus)

    assert [p.name for p in done.git_locks_cleared] == ["index.lock"]
    assert [p.name for p in done.temp_files] == [".zz000003.yaml.abc123.tmp"]
    assert [p.name for p in done.committed] == ["zz000001.yaml"] and [p.name for p in done.restored] == ["zz000002.yaml"]
    assert status(corpus) == ""
    assert corpus.find("zz000001") == kept and corpus.find("zz000002") is None
    [moved] = (corpus.repo.git_dir / "evalbot" / "lost+found").iterdir()  # set aside, not deleted
    assert moved.name.endswith("candidates_zz000002.yaml") and moved.read_text() == "id: [not a case"
    assert "left uncommitted by a crash" in corpus.repo.run("log", "-1", "--format=%B")
    assert corpus.repo.run("log", "-1", "--format=%an").strip() == SYSTEM.git_identity[0]


def test_an_interrupted_promotion_is_completed(corpus_dir):
    corpus = Corpus(corpus_dir)
    case = corpus.cases("candidate")[0]
    with corpus.lock():
        promoted = Case.model_validate({**case.model_dump(), "status": "promoted", "expect": [{"contains": "x"}]})
        (corpus_dir / "cases" / f"{case.id}.yaml").write_text(dump_case(promoted))
        (corpus_dir / "candidates" / f"{case.id}.yaml").unlink()
        corpus.repo.run("add", "-A", "--", "cases", "candidates")  # staged, then killed before the commit
    recovery.recover(corpus)
    assert status(corpus) == "" and corpus.find(case.id).status == "promoted"


def test_a_clean_corpus_is_left_alone(corpus_dir):
    corpus = Corpus(corpus_dir)
    head = corpus.repo.head()
    done = recovery.recover(corpus)
    assert not done.anything and corpus.repo.head() == head


def test_an_index_lock_held_by_a_running_git_is_kept(corpus_dir, monkeypatch):
    monkeypatch.setattr(recovery, "HOLDER_WAIT_SECONDS", 0.3)
    corpus = Corpus(corpus_dir)
    lock = corpus.repo.git_dir / "index.lock"
    lock.write_text("")
    busy = subprocess.Popen(["git", "hash-object", "--stdin"], cwd=corpus.repo.top, stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10  # the child shows as `git` once it has exec'd
        while recovery.git_processes_in(corpus.repo.top) != [busy.pid] and time.monotonic() < deadline:
            time.sleep(0.02)
        assert recovery.git_processes_in(corpus.repo.top) == [busy.pid]
        assert recovery._clear_stale_git_locks(corpus.repo) == []
        assert lock.exists()
    finally:
        busy.communicate(b"x", timeout=10)
    assert recovery._clear_stale_git_locks(corpus.repo) == [lock] and not lock.exists()


def test_a_commit_killed_while_it_moved_the_branch_does_not_block_the_next_one(corpus_dir):
    # SIGKILL during `git commit`'s ref update leaves HEAD.lock and the branch's lock: every later commit fails
    # with "cannot lock ref 'HEAD'" until they go.
    corpus = Corpus(corpus_dir)
    branch = corpus.repo.run("symbolic-ref", "HEAD").strip()
    left = [corpus.repo.git_dir / "HEAD.lock", corpus.repo.git_dir / f"{branch}.lock"]
    for lock in left:
        lock.write_text(corpus.repo.head() + "\n")
    kept = a_candidate(corpus, "zz000004")
    (corpus_dir / "candidates" / "zz000004.yaml").write_text(dump_case(kept))

    done = recovery.recover(corpus)

    assert sorted(done.git_locks_cleared) == sorted(left) and not any(lock.exists() for lock in left)
    assert [p.name for p in done.committed] == ["zz000004.yaml"] and status(corpus) == ""

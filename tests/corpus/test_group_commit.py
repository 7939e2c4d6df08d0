"""Group commits: changes that queue behind a running commit each commit exactly what they wrote."""

from __future__ import annotations

import threading
import time

from bot.corpus.casefile import dump_case
from bot.corpus.files import Corpus
from bot.corpus.gitrepo import Author
from tests.helpers import candidate

ANA = Author(user_id="U0ANA0001", name="Ana")
BEN = Author(user_id="U0BEN0001", name="Ben")


def _wait_until(check, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_later_rewrite_of_the_same_file_is_not_swept_into_the_earlier_commit(tmp_path):
    corpus = Corpus(tmp_path / "c")
    first, second = candidate(title="Ana's version"), candidate(title="Ben's version")
    path = corpus.path_for(first.id, "candidate")
    errors: list[BaseException] = []

    def change(author, case):
        try:
            with corpus.change(author=author, message=f"Capture {case.id}: {case.title}") as tx:
                tx.write(case)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    with corpus.lock("git"):  # a commit is running: both changes write, then queue behind it
        ana = threading.Thread(target=change, args=(ANA, first))
        ana.start()
        _wait_until(lambda: path.exists() and path.read_text() == dump_case(first))
        ben = threading.Thread(target=change, args=(BEN, second))
        ben.start()
        _wait_until(lambda: path.read_text() == dump_case(second))
    ana.join(20)
    ben.join(20)
    assert errors == []
    rel = f"candidates/{first.id}.yaml"
    log = corpus.repo.run("log", "--format=%an|%s").splitlines()
    assert log == [f"Ben|Capture {first.id}: Ben's version", f"Ana|Capture {first.id}: Ana's version"]
    assert corpus.repo.run("show", f"HEAD~1:{rel}") == dump_case(first)
    assert corpus.repo.run("show", f"HEAD:{rel}") == dump_case(second)
    assert corpus.repo.run("status", "--porcelain") == ""


def test_a_change_waiting_for_its_commit_is_known_as_the_last_change(tmp_path):
    """Who changed a file last is known while the change still waits in the group commit (git does not know yet)."""
    from bot.triage.history import last_decision

    corpus = Corpus(tmp_path / "c")
    case = candidate(title="Ana's version")
    path = corpus.path_for(case.id, "candidate")
    with corpus.change(author=BEN, message=f"Capture {case.id}: first"):
        pass  # nothing written: no commit, no waiting change
    assert corpus.uncommitted([path]) is None

    def edit() -> None:
        with corpus.change(author=ANA, message=f"Edit {case.id}: Ana's version") as tx:
            tx.write(case)

    with corpus.lock("git"):  # a commit is running: Ana's change is written and waits
        writer = threading.Thread(target=edit)
        writer.start()
        _wait_until(lambda: corpus.uncommitted([path]) is not None)
        waiting = corpus.uncommitted([path])
        assert waiting is not None and waiting.author == ANA and waiting.message.startswith("Edit ")
        decision = last_decision(corpus, case.id)
        assert decision is not None and decision.verb == "edited" and "U0ANA0001" in decision.told()
        assert corpus.uncommitted([corpus.path_for("zzzzzzzz", "candidate")]) is None
    writer.join(20)
    assert corpus.uncommitted([path]) is None  # committed: git knows now
    decision = last_decision(corpus, case.id)
    assert decision is not None and decision.verb == "edited" and "U0ANA0001" in decision.told()


def test_a_change_is_known_from_its_first_write_before_its_block_ends(corpus_dir):
    # A stale form is refused as soon as the other maintainer's file is on disk: naming who made it must not
    # depend on whether their change block has ended yet (it used to fall back to the last commit's author).
    from bot.triage.history import last_decision

    corpus = Corpus(corpus_dir)
    case = corpus.cases("candidate")[0]
    path = corpus.path_for(case.id, "candidate")
    with corpus.change(author=ANA, message=f"Edit {case.id}: Ana's version") as tx:
        tx.write(case.model_copy(update={"title": "Ana's version"}))
        waiting = corpus.uncommitted([path])
        assert waiting is not None and waiting.author == ANA and waiting.message.startswith("Edit ")
        decision = last_decision(corpus, case.id)
        assert decision is not None and decision.verb == "edited" and "U0ANA0001" in decision.told()
    assert corpus.find(case.id).title == "Ana's version"

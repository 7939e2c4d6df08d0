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

"""Two processes writing the corpus at once (one capturing, one promoting) lose nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from bot.corpus.files import Corpus
from bot.corpus.gitrepo import Author
from tests.helpers import candidate
from tests.helpers.paths import REPO

N = 15

WORKER = textwrap.dedent(
    """
    import sys
    from bot.triage import decisions as triage
    from bot.corpus.files import Corpus
    from bot.corpus.gitrepo import Author
    from bot.runtime import open_runtime
    from bot.store.tables import session_scope
    from tests.helpers import candidate

    role, n = sys.argv[1], int(sys.argv[2])
    rt = open_runtime()
    for i in range(n):
        if role == "capture":
            case = candidate(f"2000000000.{i:06d}", title=f"captured {i}")
            with rt.corpus.change(author=Author(user_id="U0FLAGGER"), message=f"Capture {case.id}") as tx:
                tx.write(case)
        else:
            case = candidate(f"1000000000.{i:06d}")
            with session_scope(rt.engine) as session:
                triage.promote(corpus=rt.corpus, session=session, ref=case.id, actor=Author(user_id="U0LEAD"),
                               expect=triage.parse_expectations([{"not_contains": "90 days"}]))
    """
)


def test_capture_and_promote_in_two_processes_lose_nothing(db_url, corpus_dir):
    corpus = Corpus(corpus_dir)
    with corpus.change(author=Author(user_id="U0SEED"), message="seed") as tx:
        for i in range(N):
            tx.write(candidate(f"1000000000.{i:06d}"))
    before = int(corpus.repo.run("rev-list", "--count", "HEAD"))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, role, str(N)], env=env, stderr=subprocess.PIPE, text=True)
        for role in ("capture", "promote")
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err

    ids = corpus.ids()
    assert sum(1 for s in ids.values() if s == "promoted") == 6 + N
    assert sum(1 for s in ids.values() if s == "candidate") == 1 + N
    assert int(corpus.repo.run("rev-list", "--count", "HEAD")) == before + 2 * N
    assert corpus.repo.run("status", "--porcelain") == ""
    corpus.repo.run("fsck", "--no-progress")
    # Every commit touched exactly the files of its own change.
    for entry in corpus.repo.run("log", f"-{2 * N}", "--format=@%s", "--name-only", "--no-renames").split("@")[1:]:
        subject, *files = [line for line in entry.splitlines() if line]
        expected = 1 if subject.startswith("Capture") else 2  # a promotion removes the candidate, adds the case
        assert len(files) == expected, entry

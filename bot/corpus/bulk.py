"""Reading many case files at once: in chunks, in worker processes when there are many, results streamed.

`validate`, a full index rebuild and the near-duplicate cache's first warm read every file; at 20,000 files the
YAML parse is most of their time, and it spreads over processes (the GIL keeps threads from helping). Each
chunk's result is handed back as it finishes, so no caller holds every case at once. A process with one thread
(the CLI) forks its workers, which then start in milliseconds with every module already imported; a process with
threads (`serve`: Slack, the scheduler) spawns them, since a forked child would inherit other threads' locks.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from bot.core.errors import EvalbotError
from bot.corpus.files import STATUS_DIRS, Corpus

if TYPE_CHECKING:
    from bot.corpus.scan import Finding

R = TypeVar("R")
Items = list[tuple[str, str]]  # (case id, status)
PARALLEL_FROM = 2000  # below this many files, starting worker processes costs more than it saves
CHUNK = 1000
MAX_WORKERS = 4


def _chunks(items: Items, size: int) -> Iterator[Items]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _workers() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return min(cores, MAX_WORKERS)


def map_chunks(corpus: Corpus, items: Items, work: Callable[[str, Items], R]) -> Iterable[R]:
    """`work(corpus root, chunk)` over chunks of `items`, in order; `work` must be a module-level function (it is
    pickled)."""
    workers = _workers()
    if len(items) < PARALLEL_FROM or workers < 2:
        for chunk in _chunks(items, CHUNK):
            yield work(str(corpus.root), chunk)
        return
    import multiprocessing  # with its pool: only when there are workers to start
    from concurrent.futures import ProcessPoolExecutor

    method = "fork" if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods() else "spawn"
    count = (len(items) + CHUNK - 1) // CHUNK
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(method)) as pool:
        yield from pool.map(work, [str(corpus.root)] * count, _chunks(items, CHUNK))


@dataclass(frozen=True)
class Verdict:
    """One case file checked: its path in the corpus folder, its status, why it is invalid (None: valid) and the
    secrets in it."""

    rel: str
    status: str
    problem: str | None
    secrets: tuple[Finding, ...] = ()


def check_chunk(root: str, items: Items) -> list[Verdict]:
    """Validate the case files among `items`, and scan each one's text for secrets (each file is read once)."""
    from bot.corpus.scan import findings_in  # the redaction rules compile in the worker, not in `corpus list`

    corpus = Corpus(Path(root))
    verdicts = []
    for case_id, status in items:
        problem: str | None = None
        secrets: list[Finding] = []
        try:
            path = corpus.path_for(case_id, status)
            text = corpus.read_text(case_id, status, path=path)
            secrets = findings_in(text, shown=partial(corpus.display, path))
            corpus.parse(case_id, status, text, path=path)
        except EvalbotError as exc:
            problem = str(exc)
        verdicts.append(Verdict(f"{STATUS_DIRS[status]}/{case_id}.yaml", status, problem, tuple(secrets)))
    return verdicts

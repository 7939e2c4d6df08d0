"""Reading many case files at once: in chunks, in worker processes when there are many, results streamed.

`validate` and a full index rebuild read every file; at 20,000 files the YAML parse is most of their time, and
it spreads over processes (the GIL keeps threads from helping). Each chunk's result is handed back as it
finishes, so no caller holds every case at once.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TypeVar

from bot.core.errors import EvalbotError
from bot.corpus.files import STATUS_DIRS, Corpus

R = TypeVar("R")
Items = list[tuple[str, str]]  # (case id, status)
PARALLEL_FROM = 3000  # below this many files, starting worker processes costs more than it saves
CHUNK = 1000


def _chunks(items: Items, size: int) -> Iterator[Items]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def map_chunks(corpus: Corpus, items: Items, work: Callable[[str, Items], R]) -> Iterable[R]:
    """`work(corpus root, chunk)` over chunks of `items`; `work` must be a module-level function (it is pickled)."""
    workers = min(os.cpu_count() or 1, 4)
    if len(items) < PARALLEL_FROM or workers < 2:
        for chunk in _chunks(items, CHUNK):
            yield work(str(corpus.root), chunk)
        return
    # spawn, not fork: `serve` has threads (Slack, the scheduler) that a forked child would inherit mid-lock.
    count = (len(items) + CHUNK - 1) // CHUNK
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield from pool.map(work, [str(corpus.root)] * count, _chunks(items, CHUNK))


def check_chunk(root: str, items: Items) -> tuple[dict[str, int], list[str]]:
    """Valid files per status among `items`, and one message per invalid file."""
    corpus = Corpus(Path(root))
    counts = dict.fromkeys(STATUS_DIRS, 0)
    problems: list[str] = []
    for case_id, status in items:
        try:
            corpus.load(case_id, status)
        except EvalbotError as exc:
            problems.append(str(exc))
            continue
        counts[status] += 1
    return counts, problems


def check_all(corpus: Corpus) -> tuple[dict[str, int], list[str]]:
    """Every case file validated: valid files per status, and one message per invalid file (in id order)."""
    counts = dict.fromkeys(STATUS_DIRS, 0)
    problems: list[str] = []
    for chunk_counts, chunk_problems in map_chunks(corpus, sorted(corpus.ids().items()), check_chunk):
        for status, n in chunk_counts.items():
            counts[status] += n
        problems += chunk_problems
    return counts, problems

"""Reading a long list of case files ahead of the one who needs them, in order, with bounded memory.

A run grades cases one at a time; at 20,000 cases their YAML parse is a quarter of the run's CPU. `read_ahead`
parses them in a worker process, a few chunks ahead of the consumer (at most AHEAD chunks of CHUNK cases are
held), so the parse runs on another core while the run's own process waits on the model. Short lists are read
in this process: starting a worker costs more than it saves.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

from bot.core.errors import EvalbotError
from bot.corpus.files import Corpus
from bot.corpus.schema import Case

PARALLEL_FROM = 2000
CHUNK = 250
AHEAD = 4


def _load_chunk(root: str, status: str, case_ids: list[str]) -> list[Case | str]:
    corpus = Corpus(Path(root))
    loaded: list[Case | str] = []
    for case_id in case_ids:
        try:
            loaded.append(corpus.load(case_id, status))
        except EvalbotError as exc:  # gone, unreadable or invalid: noted, the others go on
            loaded.append(f"{case_id}: {exc}")
    return loaded


def read_ahead(corpus: Corpus, case_ids: Sequence[str], status: str, skipped: list[str]) -> Iterator[Case]:
    """The cases of `case_ids` in order; a file gone or invalid is noted in `skipped` (`id: reason`) and left out."""
    if len(case_ids) < PARALLEL_FROM:
        for case_id in case_ids:
            for item in _load_chunk(str(corpus.root), status, [case_id]):
                if isinstance(item, str):
                    skipped.append(item)
                else:
                    yield item
        return
    chunks = (list(case_ids[start:start + CHUNK]) for start in range(0, len(case_ids), CHUNK))
    # spawn, not fork: the caller has threads (the run lock's heartbeat, Slack in `serve`).
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        waiting: deque[Future[list[Case | str]]] = deque()
        for chunk in chunks:
            waiting.append(pool.submit(_load_chunk, str(corpus.root), status, chunk))
            if len(waiting) >= AHEAD:
                yield from _take(waiting.popleft(), skipped)
        while waiting:
            yield from _take(waiting.popleft(), skipped)


def _take(future: Future[list[Case | str]], skipped: list[str]) -> Iterator[Case]:
    for item in future.result():
        if isinstance(item, str):
            skipped.append(item)
        else:
            yield item

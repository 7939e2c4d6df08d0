"""The bounded worker pool every part of a run uses: `work(item)` for each item, at most `concurrency` at a time.

A fixed set of workers takes items from one shared iterator (each item is taken by exactly one worker; the iterator
may be lazy, so items are produced only as a worker needs one). The first error ends the pool and is raised as it is
(not as an ExceptionGroup): e.g. ConfigError for a refused API key, which no later item could get past.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

T = TypeVar("T")


async def bounded(items: Iterable[T], work: Callable[[T], Awaitable[None]], concurrency: int, *,
                  count: int | None = None) -> None:
    """Await `work(item)` for every item, at most `concurrency` at once (`count`: how many items, when known, so
    no more workers start than there is work for)."""
    queue = iter(items)

    async def worker() -> None:
        for item in queue:  # no await between taking an item and starting it: the iterator is never shared mid-step
            await work(item)

    workers = concurrency if count is None else min(concurrency, count)
    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(workers):
                group.create_task(worker())
    except BaseExceptionGroup as grouped:
        raise grouped.exceptions[0] from None

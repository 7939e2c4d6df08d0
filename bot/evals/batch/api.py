"""Message Batches plumbing for batch runs: custom ids, splitting, creating, polling and reading results.

`Batches.run(kind, requests, known_ids)` is the one entry point: it gathers the results of the batches already
created for these requests (a resumed run), sends every request none of them holds in new batches (at most
100,000 requests and 256 MB each, the API's limits), records each new batch id through `record` the moment it
exists, polls until each batch ends (5 s doubling to 60 s by default) and returns each request's Answer by
custom_id; results arrive in any order.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.core.errors import TransientError
from bot.core.llm import LLM

log = logging.getLogger(__name__)

MAX_REQUESTS = 100_000  # requests in one batch
MAX_BYTES = 256 * 1024 * 1024 - 1024 * 1024  # 256 MB, less room for the JSON around the requests
_CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")  # the API's rule for custom_id

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class PollPolicy:
    """How often a batch is polled: first after `initial` seconds, then `factor` times longer, at most `maximum`."""

    initial: float = 5.0
    factor: float = 2.0
    maximum: float = 60.0

    def delays(self) -> Iterator[float]:
        """The waits between polls: initial, initial x factor, ..., capped at maximum."""
        delay = self.initial
        while True:
            yield delay
            delay = min(delay * self.factor, self.maximum)


def custom_id(case_id: str, trial: int, part: str) -> str:
    """The custom_id of one request, `<case>-<trial>-<part>`, made to fit `^[a-zA-Z0-9_-]{1,64}$` when it does not."""
    raw = f"{case_id}-{trial}-{part}"
    if _CUSTOM_ID.match(raw):
        return raw
    digest = hashlib.sha256(raw.encode()).hexdigest()[:12]  # keeps ids distinct after the replacement and cut
    return re.sub(r"[^a-zA-Z0-9_-]", "_", raw)[: 64 - 13] + "-" + digest


def split_requests(requests: Sequence[dict[str, Any]], *, max_requests: int = MAX_REQUESTS,
                   max_bytes: int = MAX_BYTES) -> list[list[dict[str, Any]]]:
    """The requests grouped, in order, into batches of at most `max_requests` requests and `max_bytes` of JSON."""
    batches: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    size = 0
    for request in requests:
        length = len(json.dumps(request).encode()) + 2  # the SDK's separators, and the comma between requests
        if current and (len(current) >= max_requests or size + length > max_bytes):
            batches.append(current)
            current, size = [], 0
        current.append(request)
        size += length
    if current:
        batches.append(current)
    return batches


@dataclass(frozen=True)
class Answer:
    """One request's result: the Message (as JSON), or why there is none."""

    message: dict[str, Any] | None
    problem: str | None = None


def answer_of(line: Mapping[str, Any]) -> Answer:
    """Read one result line: `succeeded` carries a Message; `errored`, `expired`, `canceled` say why not."""
    result = line.get("result") or {}
    kind = result.get("type")
    if kind == "succeeded" and isinstance(result.get("message"), dict):
        return Answer(result["message"])
    if kind == "errored":
        error = result.get("error") or {}
        error = error.get("error", error) if isinstance(error, dict) else {}
        return Answer(None, f"the batch request errored ({error.get('type', 'error')}: {error.get('message', 'no message')})")
    if kind == "expired":
        return Answer(None, "the batch request expired (the batch did not reach it within 24 hours)")
    if kind == "canceled":
        return Answer(None, "the batch request was canceled")
    return Answer(None, f"the batch returned a result of unknown type {kind!r}")


class Batches:
    """Sends requests through the Message Batches API of one LLM client and collects their answers."""

    def __init__(self, llm: LLM, *, record: Callable[[str, str], None], poll: PollPolicy, sleep: Sleep,
                 heartbeat: Callable[[], None] = lambda: None, max_requests: int | None = None,
                 max_bytes: int | None = None):
        self.llm = llm
        self.record = record  # record(kind, batch_id): store the id before anything else can go wrong
        self.poll = poll
        self.sleep = sleep
        self.heartbeat = heartbeat  # called between polls (the driving process's claim on the run)
        self.max_requests = max_requests or MAX_REQUESTS
        self.max_bytes = max_bytes or MAX_BYTES
        self.in_flight: set[str] = set()  # created here and not read yet: what to cancel if the run is abandoned

    async def submit(self, kind: str, requests: Mapping[str, dict[str, Any]]) -> list[str]:
        """Create the batches for `requests` (custom_id -> params); their ids, each recorded as it is created."""
        ids = []
        entries = [{"custom_id": cid, "params": params} for cid, params in requests.items()]
        for chunk in split_requests(entries, max_requests=self.max_requests, max_bytes=self.max_bytes):
            batch = await self.llm.create_batch(chunk, purpose=kind)
            batch_id = str(batch["id"])
            self.record(kind, batch_id)
            self.in_flight.add(batch_id)
            ids.append(batch_id)
            self.heartbeat()
        return ids

    async def wait(self, batch_id: str) -> dict[str, Any]:
        """Poll the batch until it has ended; the batch as JSON. A failed poll is logged and polled again."""
        delays = self.poll.delays()
        while True:
            try:
                batch = await self.llm.retrieve_batch(batch_id)
            except TransientError as exc:  # the batch goes on without us: ask again at the next poll
                log.warning("polling batch %s failed (%s); polling again", batch_id, exc, extra={"batch_id": batch_id})
            else:
                if batch.get("processing_status") == "ended":
                    log.info("batch %s ended: %s", batch_id, batch.get("request_counts"),
                             extra={"batch_id": batch_id, "request_counts": batch.get("request_counts")})
                    return batch
                log.debug("batch %s is %s: %s", batch_id, batch.get("processing_status"), batch.get("request_counts"))
            self.heartbeat()
            await self.sleep(next(delays))

    async def gather(self, batch_ids: Sequence[str]) -> dict[str, Answer]:
        """Wait for each batch to end and read its results; the answers by custom_id."""
        answers: dict[str, Answer] = {}

        def keep(line: dict[str, Any]) -> None:
            answers[str(line.get("custom_id"))] = answer_of(line)

        for batch_id in batch_ids:
            await self.wait(batch_id)
            await self.llm.batch_results(batch_id, keep)
            self.in_flight.discard(batch_id)
            self.heartbeat()
        return answers

    async def run(self, kind: str, requests: Mapping[str, dict[str, Any]], known_ids: Sequence[str]) -> dict[str, Answer]:
        """The answers to `requests`: from the batches `known_ids` first, then from new batches for the rest."""
        answers = await self.gather(known_ids) if known_ids else {}
        missing = {cid: params for cid, params in requests.items() if cid not in answers}
        if missing:
            if known_ids:
                log.info("%d %s request(s) are in no stored batch: sending them now", len(missing), kind)
            answers |= await self.gather(await self.submit(kind, missing))
        return answers

    async def cancel_in_flight(self) -> None:
        """Ask the API to cancel the batches this object created and has not read (best effort)."""
        for batch_id in sorted(self.in_flight):
            try:
                async with asyncio.timeout(30):
                    await self.llm.cancel_batch(batch_id)
                log.info("canceled batch %s", batch_id, extra={"batch_id": batch_id})
            except Exception:  # noqa: BLE001 - best effort while a run is being abandoned; the error is re-raised
                log.warning("could not cancel batch %s", batch_id, exc_info=True)
        self.in_flight.clear()

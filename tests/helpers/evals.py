"""Eval test doubles: a fake target with canned replies, fake judges, example cases and the example corpus's good replies."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from datetime import datetime, timezone

from bot.core.usage import Usage
from bot.corpus.schema import Case
from bot.evals.graders import Verdict
from bot.evals.judge import Judgement
from bot.evals.targets import Reply


class FakeTarget:
    """A target with a queue of canned replies (str, an Exception to raise, or a callable of the case) and a call log.

    Like simonw/llm's MockModel: tests queue what the system under test answers and read back what it was asked.
    `delay` makes each call take that long, so concurrency can be observed through `max_in_flight`.
    """

    label = "fake:target"

    def __init__(self, *replies: str | Exception | Callable[[Case], str], default: str | None = None, delay: float = 0.0,
                 usage: Usage = Usage(10, 5), model: str | None = "claude-haiku-4-5"):
        self.replies: deque = deque(replies)
        self.default = default
        self.delay = delay
        self.usage = usage
        self.model = model
        self.calls: list[tuple[str, list[dict[str, str]]]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.closed = False

    def queue(self, *replies: str | Exception | Callable[[Case], str]) -> None:
        self.replies.extend(replies)

    async def generate(self, case: Case) -> Reply:
        self.calls.append((case.id, [{"role": t.role, "content": t.content} for t in case.replay_turns]))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            reply = self.replies.popleft() if self.replies else self.default
            if reply is None:
                raise AssertionError(f"FakeTarget ran out of replies (case {case.id})")
            if isinstance(reply, Exception):
                raise reply
            text = reply(case) if callable(reply) else reply
            return Reply(text, latency_ms=self.delay * 1000, usage=self.usage, model=self.model)
        finally:
            self.in_flight -= 1

    async def aclose(self) -> None:
        self.closed = True


class FakeJudge:
    """A judge that passes when the rubric's text is in the reply (no model involved)."""

    model = "claude-sonnet-4-5"

    def __init__(self, *, error: bool = False):
        self.error = error
        self.calls: list[tuple[str, str]] = []

    async def grade(self, rubric, turns, reply):
        self.calls.append((rubric, reply))
        if self.error:
            return Judgement(Verdict("rubric", False, "the judge could not be asked: boom", error=True))
        ok = rubric in reply
        return Judgement(Verdict("rubric", ok, "meets" if ok else f"expected {rubric!r}"), Usage(100, 20))

    async def aclose(self) -> None:
        return None


def make_case(case_id: str = "case0001", *, expect=None, turns=None, tags=()) -> Case:
    return Case.model_validate({
        "id": case_id,
        "title": f"Case {case_id}",
        "status": "promoted",
        "tags": list(tags),
        "source": {"kind": "file", "flagged_at": datetime(2026, 11, 20, tzinfo=timezone.utc)},
        "conversation": turns or [
            {"role": "user", "content": "How long do I have to return this?"},
            {"role": "assistant", "content": "You have 90 days."},
        ],
        "expect": expect or [{"contains": "30 days"}],
    })


GOOD = {
    "1breqg51": '{"order_id": "AO-771204", "status": "shipped", "eta_days": 3}',
    "2tj51dm1": "YES",
    "a1zrnt4i": "I cannot see payment details; a human agent can help.",
    "ewjirjst": "A shipped order cannot be cancelled; write to support@acme-outdoor.example.",
    "rfsv4ymg": "Shipping is free over $75 in the contiguous US.",
    "tne841s8": "You can return unused items within 30 days of delivery.",
}


class PassingJudge:
    """Passes every rubric unless the reply contains 'BAD'."""

    model = "claude-sonnet-4-6"

    async def grade(self, rubric, turns, reply):
        ok = "BAD" not in reply
        return Judgement(Verdict("rubric", ok, "ok" if ok else "judge says no"), Usage(50, 10))

    async def aclose(self):
        return None


def replies(table: dict[str, object]) -> FakeTarget:
    """A fake target answering per case id: a str, a list cycled over trials, or an Exception."""
    counts: dict[str, int] = {}

    def answer(case):
        value = table[case.id]
        if isinstance(value, list):
            counts[case.id] = counts.get(case.id, 0) + 1
            value = value[(counts[case.id] - 1) % len(value)]
        if isinstance(value, Exception):
            raise value
        return value

    target = FakeTarget(default=answer)
    return target


class RateTarget(FakeTarget):
    """A fake model whose replies pass with a set probability (seeded), for noise tests.

    `rate(night)` is the pass rate on the current `night` (set it between runs); a passing reply is `good`, a
    failing one `bad`. Every call is logged like FakeTarget's.
    """

    def __init__(self, *, good: str, bad: str, rate: Callable[[int], float], seed: int):
        import random

        super().__init__()
        self.random = random.Random(seed)
        self.good, self.bad, self.rate, self.night = good, bad, rate, 0
        self.default = None

    async def generate(self, case: Case) -> Reply:
        self.queue(self.good if self.random.random() < self.rate(self.night) else self.bad)
        return await super().generate(case)

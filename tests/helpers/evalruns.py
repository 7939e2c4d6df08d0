"""Shared builders for the run, schedule and digest tests: recorded runs, and a fake Anthropic answering the corpus.

`record_run` records a run in process with the in-memory fake target and judge of the eval engine's tests.
`anthropic_corpus` points the example corpus's target and judge at a FakeAnthropic whose replies come from
`GOOD` (override per case id in `fake.answers`), for code that runs the corpus as evalbot.toml describes it
(the nightly job, `/eval run`, `evalbot serve`).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bot.corpus.files import Corpus
from bot.evals.evaluate import RunReport, run_eval
from bot.runtime import Runtime
from tests.fakes.anthropic import FakeAnthropic, flatten_text, forced_tool
from tests.helpers.evals import GOOD, PassingJudge, replies


def anthropic_toml(**run: object) -> str:
    """An evalbot.toml for the anthropic target and judge, with these [run] settings."""
    settings = "\n".join(f"{key} = {json.dumps(value)}" for key, value in run.items())  # JSON scalars are TOML
    return f"""
[target]
kind = "anthropic"
model = "claude-haiku-4-5"
system_prompt = "prompts/system.md"
max_tokens = 512

[judge]
model = "claude-sonnet-4-6"

[run]
{settings}
"""


ANTHROPIC_TOML = anthropic_toml(retries=0, concurrency=6)


def record_run(rt: Runtime, *, trigger: str = "cli", **changes: object) -> RunReport:
    """Record a run of the promoted cases: GOOD replies, except `changes` (case id -> reply or Exception)."""
    return run_eval(rt, trigger=trigger, target=replies({**GOOD, **changes}), judge=PassingJudge())


PASS = {"reasoning": "Meets the rubric.", "verdict": "pass"}


def _responder(fake: FakeAnthropic, by_question: dict[str, str]):
    async def respond(request: dict) -> object:
        if forced_tool(request) is not None:
            return fake.verdict
        while fake.gate is not None and not fake.gate.is_set():  # asyncio.sleep: the fake's loop keeps serving
            await asyncio.sleep(0.01)
        case_id = by_question[flatten_text(request["messages"][-1]["content"])]
        return fake.answers.get(case_id, GOOD[case_id])

    return respond


@contextmanager
def anthropic_corpus(corpus_dir: Path, monkeypatch: pytest.MonkeyPatch, *, toml: str = ANTHROPIC_TOML) -> Iterator[FakeAnthropic]:
    """The example corpus evaluated against a FakeAnthropic (target and judge); env vars point at it.

    The target answers GOOD (override per case id in `fake.answers`), the judge `fake.verdict` (a pass);
    `fake.questions` maps each case's replayed question to its id, for tests with responders of their own.
    """
    (corpus_dir / "evalbot.toml").write_text(toml)
    by_question = {case.replay_turns[-1].content: case.id for case in Corpus(corpus_dir).cases("promoted")}
    with FakeAnthropic() as fake:
        fake.questions = by_question
        fake.answers = {}  # case id -> reply text, overriding GOOD
        fake.verdict = PASS  # what the judge answers: a dict (the tool input) or a Reply
        fake.gate = None  # a threading.Event: while it is not set, target replies wait
        fake.responder = _responder(fake, by_question)
        for name, value in fake.env("sk-ant-test-key").items():
            monkeypatch.setenv(name, value)
        yield fake


def wait_until(condition, timeout: float = 10.0, interval: float = 0.02, what: str = "condition"):
    """Poll `condition()` until it returns something truthy; raise TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"{what} not met within {timeout}s")


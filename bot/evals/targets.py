"""Targets: the system under test, built from `[target]` in evalbot.toml.

Every target replays a case's turns before its last assistant turn (`Case.replay_turns`) and returns the fresh
reply. Each one enforces its own per-call timeout; the network targets (anthropic, http) retry transient
failures with the run's RetryPolicy, while a local command or function that fails or times out is an error
at once (running it again would most likely fail the same way). Permanent failures raise `CallFailed`.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx2

from bot.core.errors import CallFailed, ConfigError, TransientError
from bot.core.llm import (
    LLM,
    RetryPolicy,
    cacheable,
    is_retryable_status,
    parse_retry_after,
    retry_call,
)
from bot.core.settings import Settings
from bot.core.usage import Usage
from bot.corpus.schema import Case
from bot.evals.config import AnthropicTarget, CommandTarget, EvalConfig, HttpTarget, PythonTarget, inside_corpus

Messages = list[dict[str, str]]
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SHOWN = 300


@dataclass(frozen=True)
class Reply:
    """What the system under test answered, and what it cost."""

    text: str
    latency_ms: float
    usage: Usage = Usage()
    model: str | None = None


class Target(Protocol):
    """The system under test."""

    label: str

    async def generate(self, case: Case) -> Reply:
        """The fresh reply to the case's replayed turns; raises CallFailed when there is none."""
        ...

    async def aclose(self) -> None:
        """Release connections and processes."""
        ...


def replay_messages(case: Case) -> Messages:
    """The case's replayed turns as `[{role, content}]`, oldest first."""
    return [{"role": turn.role, "content": turn.content} for turn in case.replay_turns]


def _clip(text: str) -> str:
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "…"


class AnthropicModelTarget:
    """A Claude model with the corpus's system prompt."""

    def __init__(self, config: AnthropicTarget, llm: LLM, *, system_prompt: str | None):
        self.config = config
        self.llm = llm
        self.system_prompt = system_prompt
        self.label = f"anthropic:{config.model}"

    def request(self, case: Case) -> dict[str, Any]:
        """The Messages API parameters for the case (also the `params` of its Message Batches request)."""
        # No `temperature`: API version 2026-10-21 (what SDK 2.x sends) rejects every sampling parameter with
        # a 400, so `[target] temperature` is accepted in evalbot.toml but not sent (run_eval warns).
        params: dict[str, Any] = {
            "model": self.config.model,
            "max_tokens": self.config.max_tokens,
            "messages": replay_messages(case),
        }
        if self.system_prompt:
            # The same system prompt opens every case: marked for prompt caching, so calls after the first read
            # it at a tenth of the input price (once it is past the model's minimum cacheable length).
            params["system"] = cacheable(self.system_prompt)
        return params

    async def generate(self, case: Case) -> Reply:
        done = await self.llm.complete(purpose="target", timeout=self.config.timeout, **self.request(case))
        return Reply(done.text, done.latency_ms, done.usage, done.model)

    async def aclose(self) -> None:
        await self.llm.aclose()


def expand_env(value: str, *, where: str) -> str:
    """Replace each `${VAR}` with the environment variable's value, or raise ConfigError naming it."""

    def lookup(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise ConfigError(f"{where} uses ${{{name}}} but the environment variable {name} is not set")
        return os.environ[name]

    return _ENV_REF.sub(lookup, value)


def dig(data: Any, path: str) -> Any:
    """The value at a dotted path such as `reply` or `choices.0.message.content`; KeyError when absent."""
    current = data
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.lstrip("-").isdigit() and -len(current) <= int(part) < len(current):
            current = current[int(part)]
        else:
            raise KeyError(part)
    return current


class HttpEndpointTarget:
    """An HTTP endpoint: POST `{messages, case_id}` as JSON, the reply read at `response_path`."""

    def __init__(self, config: HttpTarget, *, policy: RetryPolicy, max_connections: int = 100):
        self.config = config
        self.policy = policy
        self.headers = {name: expand_env(value, where=f"[target] headers.{name}") for name, value in config.headers.items()}
        parts = urlsplit(config.url)
        self.label = f"http:{parts.scheme}://{parts.netloc}{parts.path}"  # no query string: it may hold a token
        limits = httpx2.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self.client = httpx2.AsyncClient(timeout=httpx2.Timeout(config.timeout, connect=10.0), limits=limits)

    async def _post(self, case: Case) -> Reply:
        started = time.perf_counter()
        body = {"messages": replay_messages(case), "case_id": case.id}
        try:
            async with asyncio.timeout(self.config.timeout):
                response = await self.client.post(self.config.url, json=body, headers=self.headers)
        except TimeoutError:
            raise TransientError(f"no answer from {self.label} within {self.config.timeout:g}s") from None
        except httpx2.TransportError as exc:
            raise TransientError(f"cannot reach {self.label}: {type(exc).__name__}: {exc}") from None
        latency = (time.perf_counter() - started) * 1000
        if response.status_code >= 400:
            text = f"{self.label} answered HTTP {response.status_code}: {_clip(response.text)}"
            if is_retryable_status(response.status_code):
                raise TransientError(text, retry_after=parse_retry_after(response.headers))
            raise CallFailed(text)
        try:
            data = response.json()
        except ValueError:
            raise CallFailed(f"{self.label} answered with something that is not JSON: {_clip(response.text)}") from None
        try:
            value = dig(data, self.config.response_path)
        except KeyError:
            raise CallFailed(
                f"no reply at response_path '{self.config.response_path}' in the answer of {self.label}: {_clip(json.dumps(data))}"
            ) from None
        text = value if isinstance(value, str) else json.dumps(value)
        return Reply(text, latency)

    async def generate(self, case: Case) -> Reply:
        reply, _ = await retry_call(lambda: self._post(case), policy=self.policy, what=f"call to {self.label}")
        return reply

    async def aclose(self) -> None:
        await self.client.aclose()


class CommandLineTarget:
    """A command run in the corpus folder: the messages as JSON on stdin, the reply on stdout.

    The case id is in the environment variable EVALBOT_CASE_ID. A non-zero exit or a timeout is an error.
    """

    def __init__(self, config: CommandTarget, *, cwd: Path):
        self.config = config
        self.cwd = cwd
        command = " ".join(config.argv)
        self.label = f"command:{command if len(command) <= 80 else command[:79] + '…'}"

    async def generate(self, case: Case) -> Reply:
        started = time.perf_counter()
        try:
            process = await asyncio.create_subprocess_exec(
                *self.config.argv, cwd=self.cwd, env={**os.environ, "EVALBOT_CASE_ID": case.id},
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            raise CallFailed(f"cannot start {self.config.argv[0]!r}: {exc.strerror or exc}") from None
        try:
            async with asyncio.timeout(self.config.timeout):
                out, err = await process.communicate(json.dumps(replay_messages(case)).encode())
        except TimeoutError:
            process.kill()
            await process.wait()
            raise CallFailed(f"{self.label} did not finish within {self.config.timeout:g}s (killed)") from None
        latency = (time.perf_counter() - started) * 1000
        if process.returncode != 0:
            stderr = err.decode("utf-8", "replace").strip()
            raise CallFailed(f"{self.label} exited with status {process.returncode}: {_clip(stderr) or '(no stderr)'}")
        return Reply(out.decode("utf-8", "replace").rstrip("\r\n"), latency)

    async def aclose(self) -> None:
        return None


def load_callable(spec: str, *, search_path: Path | None = None) -> Callable[..., Any]:
    """Import `package.module:function`, also looking in `search_path`; ConfigError if that fails."""
    module_name, _, name = spec.partition(":")
    if search_path is not None and str(search_path) not in sys.path:
        sys.path.append(str(search_path))  # last, so an installed package of the same name wins
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - an import runs arbitrary code; any failure is a configuration problem
        raise ConfigError(f"[target] callable = '{spec}': cannot import {module_name}: {type(exc).__name__}: {exc}") from None
    function = getattr(module, name, None)
    if not callable(function):
        raise ConfigError(f"[target] callable = '{spec}': {module_name} has no function {name}")
    return function


class PythonCallableTarget:
    """A Python function `f(messages) -> str`, sync (run in a worker thread) or async."""

    def __init__(self, config: PythonTarget, *, function: Callable[..., Any]):
        self.config = config
        self.function = function
        self.label = f"python:{config.callable}"

    async def generate(self, case: Case) -> Reply:
        started = time.perf_counter()
        messages = replay_messages(case)
        try:
            async with asyncio.timeout(self.config.timeout):
                if inspect.iscoroutinefunction(self.function):
                    result = await self.function(messages)
                else:
                    # A thread cannot be killed: on timeout it finishes in the background, its result dropped.
                    result = await asyncio.to_thread(self.function, messages)
                if inspect.isawaitable(result):
                    result = await result
        except TimeoutError:
            raise CallFailed(f"{self.label} did not return within {self.config.timeout:g}s") from None
        except Exception as exc:  # noqa: BLE001 - the user's callable may raise anything: the case errors
            raise CallFailed(f"{self.label} raised {type(exc).__name__}: {_clip(str(exc))}") from None
        if not isinstance(result, str):
            raise CallFailed(f"{self.label} returned {type(result).__name__}; it must return the reply as a str")
        return Reply(result, (time.perf_counter() - started) * 1000)

    async def aclose(self) -> None:
        return None


def build_target(config: EvalConfig, *, corpus_root: Path, settings: Settings, policy: RetryPolicy,
                 concurrency: int) -> Target:
    """The Target that `[target]` describes; ConfigError when it cannot be used (key, file, env var, import)."""
    target = config.target
    if isinstance(target, AnthropicTarget):
        prompt = None
        if target.system_prompt:
            path = inside_corpus(corpus_root, target.system_prompt, what="[target] system_prompt")
            try:
                prompt = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError(f"[target] system_prompt file {path} cannot be read: {exc.strerror}") from None
        llm = LLM.from_settings(settings, policy=policy, timeout=target.timeout, max_connections=max(concurrency, 10),
                                needed_for="the anthropic target")
        return AnthropicModelTarget(target, llm, system_prompt=prompt)
    if isinstance(target, HttpTarget):
        return HttpEndpointTarget(target, policy=policy, max_connections=max(concurrency, 10))
    if isinstance(target, CommandTarget):
        return CommandLineTarget(target, cwd=corpus_root)
    if isinstance(target, PythonTarget):
        return PythonCallableTarget(target, function=load_callable(target.callable, search_path=corpus_root))
    raise ConfigError(f"unknown target kind {target!r}")

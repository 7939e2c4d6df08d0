"""The Anthropic client: construction, evalbot's retry policy and call logging (usage and cost: bot.core.usage).

Retries are ours, not the SDK's: the client is built with `max_retries=0` and every call goes through
`retry_call`, so the anthropic target, the http target and the judge share one policy (exponential backoff with
jitter, honouring `retry-after`) and one log line per attempt. Retried: 408, 409, 429, 529, other 5xx,
connection errors and timeouts. Anything else fails at once; 401/403 raise ConfigError (the key is wrong, not
the call). Log lines carry the purpose, model, latency, token counts and attempt count, never keys or prompts.

Also the Message Batches calls (create, retrieve, results, cancel; read as JSON) that `bot.evals.batch` drives,
and `cacheable`, the system-prompt form that marks a prompt for prompt caching. The SDK itself is imported when
the first client is built: importing it takes one to three seconds here, and commands that never call a model
(`eval report`, `corpus list`) should not pay for it.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from bot.core import metrics
from bot.core.errors import CallFailed, ConfigError, EvalbotError, TransientError
from bot.core.settings import Settings
from bot.core.usage import Usage, UsageMeter

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRYABLE_STATUS = frozenset({408, 409, 429})  # plus every status >= 500 (529 is "overloaded")
BATCH_TIMEOUT = 600.0  # seconds for a batch create or results download (up to 256 MB each way)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a failing call is retried."""

    retries: int = 4  # extra attempts after the first
    base_delay: float = 0.5  # seconds; doubled per attempt
    max_delay: float = 8.0  # cap of the exponential backoff
    max_retry_after: float = 120.0  # a longer `retry-after` is cut to this

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before attempt `attempt + 1` (attempt counts from 1)."""
        if retry_after is not None and retry_after >= 0:
            return min(retry_after, self.max_retry_after)
        backoff = min(self.base_delay * 2 ** (attempt - 1), self.max_delay)
        return backoff * (1 - 0.25 * random.random())


async def retry_call(call: Callable[[], Awaitable[T]], *, policy: RetryPolicy, what: str) -> tuple[T, int]:
    """Await `call()` until it succeeds or raises a non-transient error; return (result, attempts)."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return await call(), attempt
        except TransientError as exc:
            if attempt > policy.retries:
                raise CallFailed(f"{what} failed after {attempt} attempt(s): {exc}", attempts=attempt) from None
            wait = policy.delay(attempt, exc.retry_after)
            log.info("%s: attempt %d failed (%s); retrying in %.2fs", what, attempt, exc, wait,
                     extra={"attempt": attempt, "retry_in_s": round(wait, 3)})
            await asyncio.sleep(wait)
        except CallFailed as exc:
            exc.attempts = attempt
            raise


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds asked for by `retry-after-ms` or `retry-after` (seconds or an HTTP date), or None."""
    if not headers:
        return None
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) / scale)
        except ValueError:
            parsed = email.utils.parsedate_tz(value)
            if parsed is not None:
                return max(0.0, email.utils.mktime_tz(parsed) - time.time())
    return None


def is_retryable_status(status: int) -> bool:
    """True for the HTTP statuses worth retrying: 408, 409, 429 and 5xx (529 included)."""
    return status in RETRYABLE_STATUS or status >= 500


def cacheable(text: str) -> list[dict[str, Any]]:
    """`text` as a system block marked for prompt caching (5-minute TTL).

    Below the model's minimum cacheable length (1,024 to 4,096 tokens, by model) the API simply does not cache:
    the request succeeds and costs the same, so marking every fixed prompt is harmless.
    """
    return [{"type": "text", "text": text, "cache_control": {"type": "ephemeral"}}]


@dataclass(frozen=True)
class Completion:
    """One successful Messages API call; `message` is the Message object as JSON (dicts and lists)."""

    message: dict[str, Any]
    text: str
    model: str
    usage: Usage
    latency_ms: float  # of the successful attempt
    attempts: int

    @property
    def content(self) -> list[dict[str, Any]]:
        """The Message's content blocks (`{"type": "text", ...}`, `{"type": "tool_use", ...}`)."""
        return self.message.get("content") or []


def message_text(message: dict[str, Any]) -> str:
    """The concatenated text blocks of a Message (as JSON)."""
    return "".join(block.get("text", "") for block in message.get("content") or [] if block.get("type") == "text")


def classify(exc: Exception) -> EvalbotError:
    """Translate an SDK exception into TransientError, CallFailed or (bad credentials) ConfigError."""
    import anthropic  # loaded already: only a client's calls raise its exceptions

    if isinstance(exc, anthropic.APIStatusError):
        body = exc.body if isinstance(exc.body, dict) else {}
        detail = body.get("error", {}).get("message") if isinstance(body.get("error"), dict) else None
        text = f"HTTP {exc.status_code} {type(exc).__name__}: {detail or exc.message}"
        if exc.status_code in (401, 403):
            return ConfigError(f"Anthropic refused the API key ({text}): check ANTHROPIC_API_KEY")
        if is_retryable_status(exc.status_code):
            return TransientError(text, retry_after=parse_retry_after(exc.response.headers))
        return CallFailed(text)
    if isinstance(exc, anthropic.APIConnectionError):  # includes APITimeoutError
        return TransientError(f"{type(exc).__name__}: {exc}")
    return CallFailed(f"{type(exc).__name__}: {exc}")


class LLM:
    """An AsyncAnthropic client with evalbot's retry policy, usage meter and call log."""

    def __init__(self, *, api_key: str, base_url: str | None = None, policy: RetryPolicy | None = None,
                 timeout: float = 120.0, max_connections: int = 1000):
        self.policy = policy or RetryPolicy()
        self.timeout = timeout
        self.meter = UsageMeter()
        import anthropic
        import httpx2

        self._api_error, self._sdk_error = anthropic.APIError, anthropic.AnthropicError
        self._transport_error = httpx2.TransportError
        limits = httpx2.Limits(max_connections=max_connections, max_keepalive_connections=min(max_connections, 200))
        self.client = anthropic.AsyncAnthropic(
            api_key=api_key,
            base_url=base_url,
            max_retries=0,  # retry_call is the one retry policy
            timeout=httpx2.Timeout(timeout, connect=10.0),
            # The SDK's aiohttp transport (the `aiohttp` extra): about 40% less CPU a call than httpx's, which is
            # what bounds a large run's speed (benchmarks/scale.py).
            http_client=anthropic.DefaultAioHttpClient(limits=limits, timeout=httpx2.Timeout(timeout, connect=10.0)),
        )

    @classmethod
    def from_settings(cls, settings: Settings, *, policy: RetryPolicy | None = None, timeout: float = 120.0,
                      max_connections: int = 1000, needed_for: str = "this") -> LLM:
        """An LLM from ANTHROPIC_API_KEY / ANTHROPIC_BASE_URL, or ConfigError naming what needs the key."""
        if settings.anthropic_api_key is None:
            raise ConfigError(f"ANTHROPIC_API_KEY is not set: {needed_for} calls the Anthropic API")
        return cls(api_key=settings.anthropic_api_key.get_secret_value(), base_url=settings.anthropic_base_url,
                   policy=policy, timeout=timeout, max_connections=max_connections)

    async def complete(self, *, purpose: str, timeout: float | None = None, **params: Any) -> Completion:
        """Call `messages.create(**params)` with retries; raise CallFailed (or ConfigError on a bad key)."""
        model = params["model"]
        limit = timeout or self.timeout
        extra: dict[str, Any] = {"timeout": limit} if limit != self.timeout else {}
        latency = 0.0

        async def attempt() -> Any:
            nonlocal latency
            started = time.perf_counter()
            try:
                async with asyncio.timeout(limit):
                    # The raw response, read as JSON: building the SDK's typed Message costs about 0.15 ms of CPU
                    # per call, which limits throughput at hundreds of calls a second. Errors still raise.
                    raw = await self.client.messages.with_raw_response.create(**params, **extra)
                    message = json.loads(await raw.read())
            except TimeoutError:
                self._log(purpose, model, "timeout", started)
                raise TransientError(f"no answer within {limit:g}s") from None
            except self._api_error as exc:
                error = classify(exc)
                self._log(purpose, model, "error", started, error=str(error))
                raise error from None
            except ValueError:
                message = None
            if not isinstance(message, dict):
                raise CallFailed(f"the Anthropic API answered {model} with something that is not a JSON Message")
            latency = (time.perf_counter() - started) * 1000
            return message

        message, attempts = await retry_call(attempt, policy=self.policy, what=f"{purpose} call to {model}")
        usage = Usage.of(message)
        self.meter.add(model, usage)
        metrics.MODEL_CALL_SECONDS.labels(purpose).observe(latency / 1000)
        for kind, tokens in (("input", usage.input_tokens), ("output", usage.output_tokens),
                             ("cache_read", usage.cache_read_tokens), ("cache_write", usage.cache_write_tokens)):
            metrics.MODEL_TOKENS.labels(purpose, kind).inc(tokens)
        log.info(
            "model call %s %s: %.0f ms, %d in / %d out tokens, %d attempt(s)",
            purpose, model, latency, usage.input_tokens, usage.output_tokens, attempts,
            extra={"purpose": purpose, "model": model, "latency_ms": round(latency, 1), "attempts": attempts,
                   "input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
                   "cache_read_tokens": usage.cache_read_tokens, "cache_write_tokens": usage.cache_write_tokens},
        )
        return Completion(message, message_text(message), model, usage, latency, attempts)

    # -- Message Batches (read as JSON, like `complete`)

    async def _batch_call(self, what: str, call: Callable[[], Awaitable[Any]], *, retry: bool = True) -> dict[str, Any]:
        async def attempt() -> dict[str, Any]:
            try:
                raw = await call()
                data = json.loads(await raw.read())
            except self._sdk_error as exc:
                raise classify(exc) from None
            except ValueError:
                data = None
            if not isinstance(data, dict):
                raise CallFailed(f"{what}: the Anthropic API answered with something that is not a JSON object")
            return data

        if not retry:
            return await attempt()
        data, _ = await retry_call(attempt, policy=self.policy, what=what)
        return data

    async def create_batch(self, requests: list[dict[str, Any]], *, purpose: str) -> dict[str, Any]:
        """Create a Message Batch of `requests` (`{custom_id, params}`), retried like a call; the batch as JSON."""
        started = time.perf_counter()
        batch = await self._batch_call(
            f"{purpose} batch of {len(requests)} request(s)",
            lambda: self.client.messages.batches.with_raw_response.create(requests=requests, timeout=BATCH_TIMEOUT),
        )
        log.info("created %s batch %s: %d request(s) in %.0f ms", purpose, batch.get("id"), len(requests),
                 (time.perf_counter() - started) * 1000,
                 extra={"purpose": purpose, "batch_id": batch.get("id"), "requests": len(requests)})
        return batch

    async def retrieve_batch(self, batch_id: str) -> dict[str, Any]:
        """The batch as JSON, in one attempt (the caller polls); TransientError when worth asking again."""
        return await self._batch_call(f"retrieve batch {batch_id}",
                                      lambda: self.client.messages.batches.with_raw_response.retrieve(batch_id),
                                      retry=False)

    async def cancel_batch(self, batch_id: str) -> dict[str, Any]:
        """Ask the API to cancel the batch (its requests not yet processed end as `canceled`)."""
        return await self._batch_call(f"cancel batch {batch_id}",
                                      lambda: self.client.messages.batches.with_raw_response.cancel(batch_id))

    async def batch_results(self, batch_id: str, on_result: Callable[[dict[str, Any]], None]) -> int:
        """Stream an ended batch's JSONL result lines to `on_result`; how many came.

        A download that breaks is retried from the start, so `on_result` must be idempotent (keyed by custom_id).
        """

        async def attempt() -> int:
            count = 0
            try:
                async with self.client.messages.batches.with_streaming_response.results(
                    batch_id, timeout=BATCH_TIMEOUT
                ) as response:
                    async for line in response.iter_lines():
                        if not line.strip():
                            continue
                        try:
                            item = json.loads(line)
                        except ValueError:
                            raise CallFailed(f"the results of batch {batch_id} hold a line that is not JSON") from None
                        on_result(item)
                        count += 1
            except self._sdk_error as exc:
                raise classify(exc) from None
            except self._transport_error as exc:
                raise TransientError(f"results of batch {batch_id}: {type(exc).__name__}: {exc}") from None
            return count

        count, attempts = await retry_call(attempt, policy=self.policy, what=f"results of batch {batch_id}")
        log.info("read %d result(s) of batch %s (%d attempt(s))", count, batch_id, attempts,
                 extra={"batch_id": batch_id, "results": count, "attempts": attempts})
        return count

    @staticmethod
    def _log(purpose: str, model: str, outcome: str, started: float, *, error: str | None = None) -> None:
        latency = (time.perf_counter() - started) * 1000
        log.info("model call %s %s: %s after %.0f ms%s", purpose, model, outcome, latency, f" ({error})" if error else "",
                 extra={"purpose": purpose, "model": model, "latency_ms": round(latency, 1), "outcome": outcome})

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self.client.close()

"""A fake Anthropic API on 127.0.0.1, driven by the real ``anthropic`` SDK through ``base_url``.

Owns an aiohttp server running in a background thread (its own event loop) that speaks enough of
the Messages API (``POST /v1/messages``, ``/v1/messages/count_tokens``) and the Message Batches API
(create, retrieve, results, cancel) for the SDK to work unmodified, plus the knobs tests need:
canned or computed replies, HTTP faults, dropped connections, latency and a request log.

    with FakeAnthropic() as fake:
        fake.queue("first reply", {"verdict": "pass"})
        client = anthropic.Anthropic(api_key="test-key", base_url=fake.base_url)
        client.messages.create(model="claude-haiku-4-5", max_tokens=64, messages=[...])
        assert fake.requests[-1].json["model"] == "claude-haiku-4-5"

Credentials are never stored: recorded headers carry ``<redacted>`` for ``x-api-key`` and
``authorization`` (SDK 2.x sends ``api_key`` as ``Authorization: Bearer``), and nothing is logged.
It is one file on purpose, so a test imports a single fixture surface.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

from aiohttp import web

from tests.fakes.loop import LoopThread

__all__ = ["FakeAnthropic", "RecordedRequest", "Reply", "ReplyLike", "Responder", "example_from_schema"]

JSON = dict[str, Any]
T = TypeVar("T")
BODY = web.RequestKey("body", object)  # the parsed JSON body (or None), set by the gate middleware

SECRET_HEADERS = frozenset({"x-api-key", "authorization"})
BATCH_OUTCOMES = frozenset({"succeeded", "errored", "expired", "canceled"})
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


@dataclass(frozen=True)
class Reply:
    """One assistant turn: content blocks and the stop reason the API reports for them."""

    content: list[JSON]
    stop_reason: str = "end_turn"

    @classmethod
    def text(cls, text: str) -> Reply:
        """A plain text answer."""
        return cls([{"type": "text", "text": text}])

    @classmethod
    def tool_use(cls, name: str, input: JSON, *, id: str | None = None) -> Reply:
        """A ``tool_use`` block, as answered to a forced ``tool_choice``."""
        block = {"type": "tool_use", "id": id or new_id("toolu_"), "name": name, "input": input}
        return cls([block], stop_reason="tool_use")

    @classmethod
    def json(cls, value: Any) -> Reply:
        """A structured-output answer: the JSON document as the text block."""
        return cls.text(json.dumps(value))


ReplyLike = Reply | str | JSON
Responder = Callable[[JSON], ReplyLike | Awaitable[ReplyLike]]


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request the fake received; secret header values are redacted."""

    method: str
    path: str
    json: JSON | None
    headers: dict[str, str]


@dataclass
class _Fault:
    status: int
    remaining: int | None  # None: until clear_faults()
    retry_after: float | None
    error_type: str | None


@dataclass
class _Batch:
    id: str
    requests: list[JSON]
    created_at: datetime
    started: float
    status: str = "in_progress"
    cancel_initiated_at: datetime | None = None
    ended_at: datetime | None = None
    results: list[JSON] = field(default_factory=list)


# ---------------------------------------------------------------- pure helpers


MODELS = [  # what GET /v1/models lists: id, display name, release
    ("claude-sonnet-4-6", "Claude Sonnet 4.6", "2026-02-17T00:00:00Z"),
    ("claude-haiku-4-5", "Claude Haiku 4.5", "2025-10-15T00:00:00Z"),
]


def new_id(prefix: str) -> str:
    """A random id shaped like the API's (``msg_…``, ``msgbatch_…``)."""
    return prefix + uuid.uuid4().hex[:24]


def rfc3339(moment: datetime | None) -> str | None:
    """The API's timestamp format, or None."""
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def estimate_tokens(text: str) -> int:
    """About four characters a token, never less than one."""
    return max(1, len(text) // 4)


def flatten_text(value: Any) -> str:
    """All text in a content value (string, block, list of blocks, tool input)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(flatten_text(item) for item in value)
    if isinstance(value, dict):
        if isinstance(value.get("text"), str):
            return value["text"]
        if "content" in value:
            return flatten_text(value["content"])
        return json.dumps(value.get("input", value), sort_keys=True)
    return ""


def request_text(request: JSON) -> str:
    """Everything in a request that counts as input tokens."""
    parts = [flatten_text(request.get("system", ""))]
    parts += [flatten_text(message.get("content", "")) for message in request.get("messages", [])]
    if request.get("tools"):
        parts.append(json.dumps(request["tools"], sort_keys=True))
    return "\n".join(parts)


def cached_prefix(request: JSON) -> list[JSON] | None:
    """The system blocks up to the last one marked ``cache_control``, if any."""
    system = request.get("system")
    if not isinstance(system, list):
        return None
    marked = [i for i, block in enumerate(system) if isinstance(block, dict) and block.get("cache_control")]
    return system[: marked[-1] + 1] if marked else None


def validation_error(request: Any) -> str | None:
    """Why a Messages request is malformed, or None (a loose check of the required fields)."""
    if not isinstance(request, dict):
        return "request body must be a JSON object"
    for name, kind in (("model", str), ("max_tokens", int), ("messages", list)):
        if name not in request:
            return f"{name}: Field required"
        if not isinstance(request[name], kind) or isinstance(request[name], bool):
            return f"{name}: Input should be a valid {kind.__name__}"
    if request.get("stream"):
        return "stream: the fake Anthropic API does not support streaming"
    return None


def forced_tool(request: JSON) -> JSON | None:
    """The tool definition a request forces through ``tool_choice``, if any."""
    choice = request.get("tool_choice") or {}
    tools = request.get("tools") or []
    if choice.get("type") == "tool":
        return next((t for t in tools if t.get("name") == choice.get("name")), {"name": choice.get("name")})
    if choice.get("type") == "any" and len(tools) == 1:
        return tools[0]
    return None


def output_schema(request: JSON) -> JSON | None:
    """The JSON schema of ``output_config.format`` (structured outputs), if any."""
    fmt = (request.get("output_config") or {}).get("format") or {}
    return fmt.get("schema", {}) if fmt.get("type") == "json_schema" else None


def example_from_schema(schema: JSON, defs: JSON | None = None) -> Any:
    """A small deterministic value that satisfies a (simple) JSON schema."""
    defs = defs if defs is not None else {**schema.get("definitions", {}), **schema.get("$defs", {})}
    if "$ref" in schema:
        return example_from_schema(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    for key in ("const", "default"):
        if key in schema:
            return schema[key]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return example_from_schema(schema[key][0], defs)
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        return {name: example_from_schema(sub, defs) for name, sub in schema.get("properties", {}).items()}
    if kind == "array":
        return [example_from_schema(schema.get("items", {}), defs)] * schema.get("minItems", 0)
    return {"string": "fake", "integer": 0, "number": 0.0, "boolean": True}.get(kind)


def default_responder(request: JSON) -> ReplyLike:
    """Deterministic replies: schema-shaped for forced tools and structured outputs, else an echo."""
    tool = forced_tool(request)
    if tool is not None:
        return Reply.tool_use(tool["name"], example_from_schema(tool.get("input_schema", {})))
    schema = output_schema(request)
    if schema is not None:
        return Reply.json(example_from_schema(schema))
    last = request["messages"][-1].get("content", "") if request["messages"] else ""
    return f"Fake reply to: {flatten_text(last)}"


def to_reply(value: ReplyLike, request: JSON) -> Reply:
    """Normalise a responder's answer: a str is text; a dict is the tool input or the JSON output."""
    if isinstance(value, Reply):
        return value
    if isinstance(value, str):
        return Reply.text(value)
    if isinstance(value, dict):
        tool = forced_tool(request)
        return Reply.tool_use(tool["name"], value) if tool else Reply.json(value)
    raise TypeError(f"a responder must return Reply, str or dict, not {type(value).__name__}")


def error_body(error_type: str, message: str) -> JSON:
    """Anthropic's error object."""
    return {"type": "error", "error": {"type": error_type, "message": message}}


def error_response(
    status: int, message: str, *, error_type: str | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    """An HTTP error answered the way the API does (JSON body, ``request-id``)."""
    kind = error_type or ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    request_id = new_id("req_")
    body = {**error_body(kind, message), "request_id": request_id}
    return web.json_response(body, status=status, headers={"request-id": request_id, **(headers or {})})


def redact(headers: Any) -> dict[str, str]:
    """Lower-cased headers with credential values replaced."""
    return {k.lower(): "<redacted>" if k.lower() in SECRET_HEADERS else v for k, v in headers.items()}


# ---------------------------------------------------------------- the fake


class FakeAnthropic:
    """The fake API server; configure it from the test thread while the SDK talks to it."""

    def __init__(
        self,
        *,
        latency: float = 0.0,
        responder: Responder | None = None,
        batch_processing_seconds: float | None = 0.0,
        record: bool = True,
    ) -> None:
        self.latency = latency  # seconds added to every request (asyncio.sleep, never blocking)
        self.responder: Responder = responder or default_responder
        self.batch_processing_seconds = batch_processing_seconds  # None: only end_batch() ends a batch
        self.batch_outcomes: dict[str, str] = {}  # custom_id -> errored | expired | canceled
        self.record = record
        self.requests: list[RecordedRequest] = []
        self.in_flight = 0
        self.peak_in_flight = 0  # most requests inside the latency wait at once: proves calls overlap
        self.first_request_at: float | None = None  # time.time() of the first request: start-up benchmarks
        self.errors: list[BaseException] = []  # responder exceptions (answered 500, not retried)
        self.batches: dict[str, _Batch] = {}
        self._replies: deque[ReplyLike] = deque()
        self._faults: list[_Fault] = []
        self._drops = 0
        self._cache: set[str] = set()
        self._lock = threading.Lock()
        self._loop = LoopThread("fake-anthropic")
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    # -- lifecycle

    def start(self) -> FakeAnthropic:
        """Serve on a free port of 127.0.0.1 from a background thread."""
        if self._loop.running:
            return self
        self._loop.start()
        self._call(self._serve())
        return self

    def stop(self) -> None:
        """Shut the server down and join its thread."""
        if not self._loop.running:
            return
        if self._runner is not None:
            self._call(self._runner.cleanup())
        self._loop.stop()
        self._runner, self._port = None, None

    def __enter__(self) -> FakeAnthropic:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``, for ``base_url=`` or ``ANTHROPIC_BASE_URL``."""
        if self._port is None:
            raise RuntimeError("FakeAnthropic is not started")
        return f"http://127.0.0.1:{self._port}"

    def env(self, api_key: str = "test-key") -> dict[str, str]:
        """Environment variables pointing the SDK at this fake (for ``monkeypatch.setenv``)."""
        return {"ANTHROPIC_BASE_URL": self.base_url, "ANTHROPIC_API_KEY": api_key}

    # -- replies and faults

    def queue(self, *replies: ReplyLike) -> None:
        """Replies used first, in order, before the responder is asked."""
        self._replies.extend(replies)

    def fail_next(
        self, status: int, times: int = 1, retry_after: float | None = None, error_type: str | None = None
    ) -> None:
        """Answer the next ``times`` requests with an API error (429, 500, 529, ...)."""
        with self._lock:
            self._faults.append(_Fault(status, times, retry_after, error_type))

    def fail_always(self, status: int, retry_after: float | None = None, error_type: str | None = None) -> None:
        """Answer every request with an API error until ``clear_faults()``."""
        with self._lock:
            self._faults.append(_Fault(status, None, retry_after, error_type))

    def clear_faults(self) -> None:
        """Forget pending errors and connection drops."""
        with self._lock:
            self._faults.clear()
            self._drops = 0

    def drop_connection_next(self, times: int = 1) -> None:
        """Close the socket of the next ``times`` requests without answering (APIConnectionError)."""
        with self._lock:
            self._drops += times

    def end_batch(self, batch_id: str) -> None:
        """End a batch now, computing its results (no-op if it has ended)."""
        self._call(self._end_batch(self.batches[batch_id]))

    def reset(self) -> None:
        """Forget requests, queued replies, faults, batches, outcomes and the prompt cache."""
        self.clear_faults()
        self._replies.clear()
        self.requests.clear()
        self.errors.clear()
        self.batches.clear()
        self.batch_outcomes.clear()
        self._cache.clear()

    # -- server plumbing

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._loop.call(coro)

    async def _serve(self) -> None:
        app = web.Application(middlewares=[self._gate], client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/messages", self._messages)
        app.router.add_post("/v1/messages/count_tokens", self._count_tokens)
        app.router.add_get("/v1/models", self._list_models)
        app.router.add_post("/v1/messages/batches", self._create_batch)
        app.router.add_get("/v1/messages/batches/{id}", self._retrieve_batch)
        app.router.add_get("/v1/messages/batches/{id}/results", self._batch_results)
        app.router.add_post("/v1/messages/batches/{id}/cancel", self._cancel_batch)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock, backlog=2048).start()

    def _take_fault(self) -> _Fault | str | None:
        """The fault for this request: a drop ("drop"), an HTTP error, or None."""
        with self._lock:
            if self._drops:
                self._drops -= 1
                return "drop"
            if not self._faults:
                return None
            fault = self._faults[0]
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.pop(0)
            return fault

    @web.middleware
    async def _gate(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Record, delay, inject faults and check credentials before any endpoint runs."""
        if self.first_request_at is None:
            self.first_request_at = time.time()
        raw = await request.read()
        try:
            request[BODY] = json.loads(raw) if raw else None
        except ValueError:
            return error_response(400, "request body is not valid JSON")
        if self.record:
            headers = redact(request.headers)
            self.requests.append(RecordedRequest(request.method, request.path, request[BODY], headers))
        if self.latency > 0:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            try:
                await asyncio.sleep(self.latency)
            finally:
                self.in_flight -= 1
        fault = self._take_fault()
        if fault == "drop":
            return self._drop(request)
        if isinstance(fault, _Fault):
            return self._fault_response(fault)
        if not (request.headers.get("x-api-key") or request.headers.get("authorization", "").startswith("Bearer ")):
            return error_response(401, "x-api-key header (or Authorization: Bearer) is required")
        try:
            return await handler(request)
        except web.HTTPException as exc:
            return error_response(exc.status, exc.reason)

    @staticmethod
    def _drop(request: web.Request) -> web.Response:
        """Close the connection: aiohttp then fails to write this response and ignores that."""
        request.protocol.force_close()
        return web.Response(status=204)

    @staticmethod
    def _fault_response(fault: _Fault) -> web.Response:
        headers = {"retry-after": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
        message = f"Injected fault ({fault.status})"
        return error_response(fault.status, message, error_type=fault.error_type, headers=headers)

    # -- Messages API

    async def _messages(self, request: web.Request) -> web.Response:
        body = request[BODY]
        problem = validation_error(body)
        if problem:
            return error_response(400, problem)
        try:
            return web.json_response(await self._message_for(body), headers={"request-id": new_id("req_")})
        except Exception as exc:  # a broken responder is the test's bug: surface it, don't let the SDK retry
            self.errors.append(exc)
            return error_response(500, f"fake responder failed: {exc!r}", headers={"x-should-retry": "false"})

    async def _list_models(self, request: web.Request) -> web.Response:
        """GET /v1/models: the documented page shape (`data`, `has_more`, `first_id`, `last_id`), newest first."""
        limit = max(1, min(int(request.query.get("limit", "20")), 1000))
        models = [{"type": "model", "id": model, "display_name": name, "created_at": created}
                  for model, name, created in MODELS][:limit]
        return web.json_response({"data": models, "has_more": len(MODELS) > limit,
                                  "first_id": models[0]["id"], "last_id": models[-1]["id"]})

    async def _count_tokens(self, request: web.Request) -> web.Response:
        body = request[BODY] if isinstance(request[BODY], dict) else {}
        return web.json_response({"input_tokens": estimate_tokens(request_text(body))})

    async def _message_for(self, params: JSON) -> JSON:
        """The Message object answering ``params``: queued reply first, else the responder."""
        value = self._replies.popleft() if self._replies else self.responder(params)
        if inspect.isawaitable(value):
            value = await value
        reply = to_reply(value, params)
        return {
            "id": new_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": params["model"],
            "content": reply.content,
            "stop_reason": reply.stop_reason,
            "stop_sequence": None,
            "usage": self._usage(params, reply),
        }

    def _usage(self, params: JSON, reply: Reply) -> JSON:
        """Token counts, simulating prompt caching of the ``cache_control``-marked system prefix."""
        total = estimate_tokens(request_text(params))
        created = read = 0
        prefix = cached_prefix(params)
        if prefix is not None:
            cached = min(total, estimate_tokens(flatten_text(prefix)))
            key = json.dumps([params.get("model"), params.get("tools"), prefix], sort_keys=True)
            if key in self._cache:
                read = cached
            else:
                self._cache.add(key)
                created = cached
            total = max(1, total - cached)
        return {
            "input_tokens": total,
            "output_tokens": estimate_tokens(flatten_text(reply.content)),
            "cache_creation_input_tokens": created,
            "cache_read_input_tokens": read,
        }

    # -- Message Batches API

    async def _create_batch(self, request: web.Request) -> web.Response:
        body = request[BODY]
        entries = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(entries, list) or not entries:
            return error_response(400, "requests: must be a non-empty list")
        ids = [entry.get("custom_id") if isinstance(entry, dict) else None for entry in entries]
        if not all(isinstance(i, str) and i for i in ids) or len(set(ids)) != len(ids):
            return error_response(400, "requests: each needs a unique custom_id")
        batch = _Batch(new_id("msgbatch_"), entries, datetime.now(timezone.utc), time.monotonic())
        self.batches[batch.id] = batch
        return web.json_response(self._batch_json(batch))

    async def _retrieve_batch(self, request: web.Request) -> web.Response:
        batch = await self._current_batch(request)
        return web.json_response(self._batch_json(batch))

    async def _cancel_batch(self, request: web.Request) -> web.Response:
        batch = self._find_batch(request)
        if batch.status == "in_progress":
            batch.status = "canceling"
            batch.cancel_initiated_at = datetime.now(timezone.utc)
        return web.json_response(self._batch_json(batch))

    async def _batch_results(self, request: web.Request) -> web.StreamResponse:
        batch = await self._current_batch(request)
        if batch.status != "ended":
            return error_response(400, f"Batch {batch.id} has not ended yet")
        lines = "".join(json.dumps(line) + "\n" for line in batch.results)
        return web.Response(body=lines.encode(), content_type="application/binary")

    def _find_batch(self, request: web.Request) -> _Batch:
        batch = self.batches.get(request.match_info["id"])
        if batch is None:
            raise web.HTTPNotFound(reason=f"No batch {request.match_info['id']}")
        return batch

    async def _current_batch(self, request: web.Request) -> _Batch:
        """The batch, ended first if its processing time is up or it was canceled."""
        batch = self._find_batch(request)
        seconds = self.batch_processing_seconds
        due = seconds is not None and time.monotonic() - batch.started >= seconds
        if batch.status == "canceling" or (batch.status == "in_progress" and due):
            await self._end_batch(batch)
        return batch

    async def _end_batch(self, batch: _Batch) -> None:
        """Compute every result (in request order) and end the batch; lines are served reversed."""
        if batch.status == "ended":
            return
        results = [await self._batch_result(entry, batch.status == "canceling") for entry in batch.requests]
        batch.results = results[::-1]  # the API does not promise request order
        batch.status = "ended"
        batch.ended_at = datetime.now(timezone.utc)

    async def _batch_result(self, entry: JSON, canceling: bool) -> JSON:
        custom_id = entry["custom_id"]
        outcome = self.batch_outcomes.get(custom_id, "canceled" if canceling else "succeeded")
        if outcome not in BATCH_OUTCOMES:
            raise ValueError(f"batch_outcomes[{custom_id!r}] must be one of {sorted(BATCH_OUTCOMES)}")
        if outcome in ("expired", "canceled"):
            return {"custom_id": custom_id, "result": {"type": outcome}}
        params = entry.get("params")
        problem = "Injected batch error" if outcome == "errored" else validation_error(params)
        if problem is None:
            try:
                message = await self._message_for(params)
                return {"custom_id": custom_id, "result": {"type": "succeeded", "message": message}}
            except Exception as exc:
                self.errors.append(exc)
                problem = f"fake responder failed: {exc!r}"
        kind = "api_error" if outcome == "errored" or problem.startswith("fake") else "invalid_request_error"
        return {"custom_id": custom_id, "result": {"type": "errored", "error": error_body(kind, problem)}}

    def _batch_json(self, batch: _Batch) -> JSON:
        ended = batch.status == "ended"
        counts = {"processing": 0 if ended else len(batch.requests), "succeeded": 0, "errored": 0}
        counts |= {"canceled": 0, "expired": 0}
        for line in batch.results:
            counts[line["result"]["type"]] += 1
        return {
            "id": batch.id,
            "type": "message_batch",
            "processing_status": batch.status,
            "request_counts": counts,
            "created_at": rfc3339(batch.created_at),
            "expires_at": rfc3339(batch.created_at + timedelta(hours=24)),
            "ended_at": rfc3339(batch.ended_at),
            "cancel_initiated_at": rfc3339(batch.cancel_initiated_at),
            "archived_at": None,
            "results_url": f"{self.base_url}/v1/messages/batches/{batch.id}/results" if ended else None,
        }

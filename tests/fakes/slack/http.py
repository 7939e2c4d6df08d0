"""The fake's HTTP side: the Web API endpoint, the file upload URL and ``response_url``; recorded calls; faults.

``HttpEndpoints`` is a part of ``FakeSlack`` (it owns the calls, the injected faults and latencies); its handlers
run on the fake's event loop, its public methods on the test's thread. Slack's token rules are applied here, so a
method only sees parameters.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fakes.slack.common import JSON, ApiError, Call
from tests.fakes.slack.web_api import WebApi


@dataclass
class _Fault:
    error: str
    retry_after: int | None = None  # set: answer HTTP 429


class HttpEndpoints:
    """FakeSlack's Web API over HTTP, with its call log, waiting helpers and fault injection."""

    _workspace: WebApi  # set by FakeSlack
    _lock: threading.RLock
    _changed: threading.Condition

    def _init_http(self) -> None:
        self.calls: list[Call] = []
        self._faults: dict[str, deque[_Fault]] = defaultdict(deque)
        self._latency: dict[str, float] = {}

    def _add_http_routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_post("/upload/{file_id}", self._handle_upload)
        app.router.add_post("/response/{response_id}", self._handle_response_url)

    # -- calls and waiting

    def calls_to(self, method: str) -> list[Call]:
        """Recorded calls of one method, oldest first."""
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def wait_for_call(self, method: str, predicate: Callable[[Call], bool] | None = None, timeout: float = 10.0,
                      *, start: int = 0) -> Call:  # fmt: skip
        """The first call of ``method`` (from index ``start`` of ``calls``) matching ``predicate``; waits for it.

        Side effects of a call (a posted message, an uploaded file) are visible once it is returned.
        Raises TimeoutError naming the calls seen instead.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for call in self.calls[start:]:
                    if call.method == method and (predicate is None or predicate(call)):
                        return call
                start = max(start, len(self.calls))
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [c.method for c in self.calls]
                    raise TimeoutError(f"no matching {method} call within {timeout}s; calls: {seen}")
                self._changed.wait(remaining)

    # -- fault injection

    def fail_next(self, method: str, error: str = "not_in_channel", times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with ``ok: false`` and ``error``."""
        with self._lock:
            self._faults[method].extend(_Fault(error) for _ in range(times))

    def rate_limit_next(self, method: str, times: int = 1, retry_after: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with HTTP 429, ``Retry-After`` and error ratelimited."""
        with self._lock:
            self._faults[method].extend(_Fault("ratelimited", retry_after) for _ in range(times))

    def set_latency(self, method: str, seconds: float) -> None:
        """Delay every answer of ``method`` ("*": every method) without blocking other requests."""
        with self._lock:
            self._latency[method] = seconds


    def _record(self, call: Call) -> None:
        """Append a call and wake waiters; the caller holds the lock."""
        self.calls.append(call)
        self._changed.notify_all()

    # -- HTTP handlers

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params, token = await _read_params(request)
        with self._lock:
            delay = self._latency.get(method, self._latency.get("*", 0.0))
        if delay:
            await asyncio.sleep(delay)
        with self._lock:
            status, body, headers = self._answer(method, params, token)
            token_type = token.partition("-")[0] if token else None
            self._record(Call(method, params, _redact(request.headers), token_type))
        return web.json_response(body, status=status, headers=headers)

    def _answer(self, method: str, params: JSON, token: str | None) -> tuple[int, JSON, dict[str, str]]:
        """Status, body and headers for one API call: an injected fault, or the method's real answer."""
        faults = self._faults.get(method)
        if faults:
            fault = faults.popleft()
            if fault.retry_after is not None:
                return 429, {"ok": False, "error": fault.error}, {"Retry-After": str(fault.retry_after)}
            return 200, {"ok": False, "error": fault.error}, {}
        try:
            handler = self._workspace.handler(method)
            _check_token(method, token)
            return 200, {"ok": True, **handler(params)}, {}
        except ApiError as failure:
            return 200, {"ok": False, "error": failure.error}, {}

    async def _handle_upload(self, request: web.Request) -> web.Response:
        content = await request.read()
        with self._lock:
            upload = self._workspace.files.get(request.match_info["file_id"])
            if upload is not None:
                upload.content = content
            self._record(Call("upload", {"file_id": request.match_info["file_id"], "length": len(content)},
                              _redact(request.headers)))  # fmt: skip
        if upload is None:
            return web.Response(status=404, text="file_not_found")
        return web.Response(text=f"OK - {len(content)}")

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        with self._lock:
            self._record(Call("response_url", {"response_id": request.match_info["response_id"], **body},
                              _redact(request.headers)))  # fmt: skip
        return web.Response(text="ok")


async def _read_params(request: web.Request) -> tuple[JSON, str | None]:
    """Merge query, form or JSON body; the token comes from ``Authorization: Bearer`` or a ``token`` field."""
    params: JSON = dict(request.query)
    if request.content_type == "application/json":
        body = await request.json() if request.can_read_body else None
        params.update(body or {})
    elif request.can_read_body:
        form = await request.post()
        params.update({k: v for k, v in form.items() if isinstance(v, str)})
    token = params.pop("token", None)
    authorization = request.headers.get("Authorization", "")
    if authorization.startswith("Bearer "):
        token = authorization.removeprefix("Bearer ").strip()
    return params, token


def _check_token(method: str, token: str | None) -> None:
    """Slack's token rules: none -> not_authed; apps.connections.open needs xapp-, everything else xox?-."""
    if not token:
        raise ApiError("not_authed")
    if not token.startswith(("xoxb-", "xoxp-", "xapp-")):
        raise ApiError("invalid_auth")
    if (method == "apps.connections.open") != token.startswith("xapp-"):
        raise ApiError("not_allowed_token_type")



def _redact(headers: Any) -> dict[str, str]:
    return {k.lower(): "<redacted>" if k.lower() == "authorization" else v for k, v in headers.items()}


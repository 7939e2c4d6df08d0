"""Slack's HTTP mode as an ASGI app for a production server (uvicorn): Bolt's adapter plus health and metrics.

`/slack/events` is Bolt's ASGI adapter (signature verification on; Bolt answers 401 to a bad or stale
signature); the sync App is dispatched on a worker thread so one slow request never blocks the event loop.
`/healthz` says the process is up, `/readyz` that the database and corpus are usable, `/metrics` serves
Prometheus metrics.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

from slack_bolt import App
from slack_bolt.adapter.asgi.base_handler import BaseSlackRequestHandler
from slack_bolt.adapter.asgi.http_request import AsgiHttpRequest
from slack_bolt.adapter.asgi.http_response import AsgiHttpResponse
from slack_bolt.request import BoltRequest
from slack_bolt.response import BoltResponse

from bot.core import metrics

Readiness = Callable[[], dict[str, str]]  # component -> problem; empty when ready


def _json(status: int, data: object) -> AsgiHttpResponse:
    return AsgiHttpResponse(status=status, headers={"content-type": ["application/json"]}, body=json.dumps(data))


class EvalbotAsgi(BaseSlackRequestHandler):
    """The ASGI application `serve --http` runs."""

    def __init__(self, app: App, *, readiness: Readiness, path: str | None = "/slack/events"):
        self.app = app
        self.path = path or ""  # no path in Socket Mode: Slack's events never arrive over HTTP then
        self.readiness = readiness

    async def dispatch(self, request: AsgiHttpRequest) -> BoltResponse:
        body = await request.get_raw_body()
        bolt_request = BoltRequest(body=body, query=request.query_string, headers=request.get_headers())
        started = time.perf_counter()
        response = await asyncio.to_thread(self.app.dispatch, bolt_request)
        metrics.ACK_SECONDS.observe(time.perf_counter() - started)
        return response

    async def _get_http_response(self, method: str, path: str, request: AsgiHttpRequest) -> AsgiHttpResponse:
        if method == "GET" and path == "/healthz":
            return _json(200, {"ok": True})
        if method == "GET" and path == "/readyz":
            problems = await asyncio.to_thread(self.readiness)
            return _json(503 if problems else 200, {"ok": not problems, "problems": problems})
        if method == "GET" and path == "/metrics":
            data, content_type = metrics.exposition()
            return AsgiHttpResponse(status=200, headers={"content-type": [content_type]}, body=data.decode())
        if not self.path:
            return _json(404, {"ok": False})
        return await super()._get_http_response(method, path, request)

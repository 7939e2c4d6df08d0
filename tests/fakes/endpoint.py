"""A fake HTTP endpoint for `http` targets: answers POSTs with scripted or default JSON and records what it was sent.

`FakeEndpoint(default)` is a ThreadingHTTPServer on 127.0.0.1 (a free port) serving in a thread while it is used as
a context manager: each POST's JSON body and Authorization header go to `seen`, the answer is the next
`(status, payload, headers)` of `script` or else `default`, and `first_request_at` is the wall time of the first
request (what benchmarks/startup.py measures).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Handler(BaseHTTPRequestHandler):
    server: FakeEndpoint

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        server = self.server
        if server.first_request_at is None:
            server.first_request_at = time.time()
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        server.seen.append({"body": body, "auth": self.headers.get("authorization")})
        status, payload, headers = server.script.pop(0) if server.script else (200, server.default, {})
        data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


class FakeEndpoint(ThreadingHTTPServer):
    """See the module docstring."""

    def __init__(self, default: Any = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.default = default if default is not None else {"reply": "ok"}
        self.seen: list[dict[str, Any]] = []
        self.script: list[tuple[int, Any, dict[str, str]]] = []
        self.first_request_at: float | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> FakeEndpoint:
        # shutdown() waits out one poll: a short one keeps every teardown short.
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        if self._thread is not None:
            self._thread.join()
        self.server_close()

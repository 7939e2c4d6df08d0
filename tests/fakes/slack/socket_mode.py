"""The fake's Socket Mode side: the websocket slack-sdk's built-in client connects to, envelopes, acks, reconnects.

``SocketModeServer`` is a part of ``FakeSlack`` (it owns the connections and the envelopes waiting for an ack);
its handlers run on the fake's event loop, ``send_*`` on the test's thread, which blocks on the ack.
``close_socket_mode`` closes the client side quickly at teardown.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.loop import LoopThread
from tests.fakes.slack.common import APP_ID, JSON, Ack
from tests.fakes.slack.payloads import event_callback, interactive_payload, slash_command_payload
from tests.fakes.slack.web_api import WebApi


def close_socket_mode(handler: Any) -> None:
    """Close a Bolt ``SocketModeHandler`` (or slack-sdk built-in ``SocketModeClient``) without a 1 s stall.

    The built-in client's message processor polls its queue with a 1 s timeout and ``close()`` joins it; marking
    the client closed and waking the queue first lets test teardown take milliseconds instead.
    """
    client = getattr(handler, "client", handler)
    client.closed = True
    client.auto_reconnect_enabled = False  # close() says so too; before the socket goes, nothing reconnects
    client.message_queue.put(None)  # the processor skips None and then sees closed
    # close() takes the receive lock, which the session thread holds while it waits for the next frame (the
    # fake's next ping, up to 0.2 s away): shutting the socket down wakes it at once.
    sock = getattr(getattr(client, "current_session", None), "sock", None)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already closed
    # The built-in client's close() joins its session thread with no timeout; caught mid-reconnect (rarely, on a
    # loaded machine) that join has hung a teardown for minutes. Its threads are daemons: give up after 10 s.
    closer = threading.Thread(target=handler.close, name="close-socket-mode", daemon=True)
    closer.start()
    closer.join(10)



@dataclass
class _PendingAck:
    future: Future[Ack]
    sent_at: float = 0.0



class SocketModeServer:
    """FakeSlack's Socket Mode: connections (round robin), envelopes and their acks, disconnects."""

    _workspace: WebApi  # these are FakeSlack's
    _lock: threading.RLock
    _changed: threading.Condition
    _loop: LoopThread
    _response_url: Callable[[], str]

    def _init_socket_mode(self, ping_interval: float, delivery_timeout: float) -> None:
        self.ping_interval = ping_interval  # server pings wake the client's blocking recv, so it closes fast
        self.delivery_timeout = delivery_timeout  # how long an envelope waits for a connected client
        self.acks: list[Ack] = []
        self._sockets: dict[int, web.WebSocketResponse] = {}  # live connections, by id()
        self._draining: dict[int, web.WebSocketResponse] = {}  # asked to reconnect: no new envelopes
        self._pending: dict[str, _PendingAck] = {}
        self._round_robin = itertools.count()
        self._socket_available: asyncio.Event | None = None

    def _add_socket_routes(self, app: web.Application) -> None:
        app.router.add_get("/link", self._handle_socket)
        self._socket_available = asyncio.Event()  # on the event loop

    def _fail_pending(self, reason: str) -> None:
        """Fail every envelope still waiting for its ack (the fake is stopping)."""
        with self._lock:
            pending, self._pending = self._pending, {}
        for entry in pending.values():
            if not entry.future.done():
                entry.future.set_exception(ConnectionError(reason))


    @property
    def connection_count(self) -> int:
        """Live Socket Mode connections (not counting those asked to reconnect)."""
        with self._lock:
            return len(self._sockets)

    def wait_connected(self, timeout: float = 5.0, count: int = 1) -> None:
        """Block until ``count`` clients are connected and none asked to reconnect is still open.

        After ``disconnect_clients()`` this waits for the reconnection to finish, so a test does not close its
        client in the middle of it. Raises TimeoutError otherwise.
        """
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._sockets) >= count and not self._draining, timeout):
                raise TimeoutError(f"{len(self._sockets)} of {count} Socket Mode clients connected after {timeout}s")

    def send_envelope_nowait(self, envelope_type: str, payload: JSON, *, envelope_id: str | None = None,
                             retry_attempt: int = 0, retry_reason: str = "",
                             accepts_response_payload: bool | None = None) -> Future[Ack]:  # fmt: skip
        """Deliver an envelope to one connected client (round robin); the future resolves with its Ack."""
        envelope_id = envelope_id or str(uuid.uuid4())
        accepts = envelope_type != "events_api" if accepts_response_payload is None else accepts_response_payload
        envelope = {"envelope_id": envelope_id, "type": envelope_type, "accepts_response_payload": accepts,
                    "retry_attempt": retry_attempt, "retry_reason": retry_reason, "payload": payload}  # fmt: skip
        future: Future[Ack] = Future()
        with self._lock:
            self._pending[envelope_id] = _PendingAck(future)
        self._loop.submit(self._deliver(envelope))
        return future

    def send_envelope(self, envelope_type: str, payload: JSON, *, timeout: float = 5.0, **options: Any) -> Ack:
        """Deliver an envelope and wait for its ack."""
        return self.send_envelope_nowait(envelope_type, payload, **options).result(timeout)

    def send_event(self, event: JSON, event_id: str | None = None, retry_attempt: int = 0, retry_reason: str = "",
                   *, timeout: float = 5.0) -> Ack:  # fmt: skip
        """Deliver an Events API event (wrapped in its event_callback) and wait for the ack."""
        payload = event_callback(event, event_id=event_id)
        return self.send_envelope("events_api", payload, timeout=timeout, retry_attempt=retry_attempt,
                                  retry_reason=retry_reason)  # fmt: skip

    def send_slash_command(self, payload: JSON, *, timeout: float = 5.0) -> Ack:
        """Deliver a slash command (defaults filled in; response_url points here) and wait for the ack."""
        full = slash_command_payload(payload, response_url=self._response_url())
        return self.send_envelope("slash_commands", full, timeout=timeout)

    def send_interactive(self, payload: JSON, *, timeout: float = 5.0) -> Ack:
        """Deliver block_actions / message_action / shortcut / view_submission and wait for the ack."""
        full = interactive_payload(payload, response_url=self._response_url())
        return self.send_envelope("interactive", full, timeout=timeout)

    def disconnect_clients(self, reason: str = "refresh_requested") -> int:
        """Ask every connected client to reconnect (Slack's disconnect frame); returns how many were asked."""
        frame = {"type": "disconnect", "reason": reason, "debug_info": {"host": "fake-slack"}}
        return self._loop.call(self._ask_to_reconnect(frame))

    def drop_connections(self) -> int:
        """Close every Socket Mode connection from the server side; returns how many.

        slack-sdk's built-in client notices in its monitor, every ``ping_interval`` (Bolt's default: 10 s).
        """
        return self._loop.call(self._close_sockets())

    # -- Socket Mode handlers (event loop thread)

    async def _handle_socket(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            known = request.query.get("ticket") in self._workspace.tickets
        if not known:
            return web.Response(status=401, text="invalid_ticket")
        ws = web.WebSocketResponse(autoping=True, timeout=1.0)
        await ws.prepare(request)
        await ws.send_json(self._hello())
        self._register(ws)
        keepalive = asyncio.ensure_future(self._keepalive(ws))
        try:
            async for frame in ws:
                if frame.type == WSMsgType.TEXT:
                    self._on_client_frame(frame.data)
        finally:
            keepalive.cancel()
            self._unregister(ws)
        return ws

    def _hello(self) -> JSON:
        with self._lock:
            count = len(self._sockets) + 1
        return {"type": "hello", "num_connections": count, "connection_info": {"app_id": APP_ID},
                "debug_info": {"host": "fake-slack", "build_number": 1, "approximate_connection_time": 18060}}

    def _register(self, ws: web.WebSocketResponse) -> None:
        with self._lock:
            self._sockets[id(ws)] = ws
            self._changed.notify_all()
        assert self._socket_available is not None
        self._socket_available.set()

    def _unregister(self, ws: web.WebSocketResponse) -> None:
        with self._lock:
            self._sockets.pop(id(ws), None)
            self._draining.pop(id(ws), None)
            empty = not self._sockets
            self._changed.notify_all()
        if empty and self._socket_available is not None:
            self._socket_available.clear()

    async def _keepalive(self, ws: web.WebSocketResponse) -> None:
        while not ws.closed:
            await asyncio.sleep(self.ping_interval)
            try:
                await ws.ping(b"fake-slack")
            except ConnectionError:
                return

    def _on_client_frame(self, raw: str) -> None:
        """Match an ack to its envelope by envelope_id; other frames are ignored."""
        received = time.perf_counter()
        try:
            frame = json.loads(raw)
        except ValueError:
            return
        with self._lock:
            pending = self._pending.pop(str(frame.get("envelope_id")), None)
            if pending is None:
                return
            ack = Ack(frame["envelope_id"], frame.get("payload"), received - pending.sent_at)
            self.acks.append(ack)
            self._changed.notify_all()
        pending.future.set_result(ack)

    async def _deliver(self, envelope: JSON) -> None:
        envelope_id = envelope["envelope_id"]
        try:
            ws = await self._pick_socket()
            with self._lock:
                if envelope_id in self._pending:
                    self._pending[envelope_id].sent_at = time.perf_counter()
            await ws.send_str(json.dumps(envelope))
        except Exception as error:  # the waiting test gets the reason, not a hang
            with self._lock:
                pending = self._pending.pop(envelope_id, None)
            if pending is not None and not pending.future.done():
                pending.future.set_exception(error)

    async def _pick_socket(self) -> web.WebSocketResponse:
        assert self._socket_available is not None
        try:
            await asyncio.wait_for(self._socket_available.wait(), self.delivery_timeout)
        except TimeoutError:
            raise ConnectionError(f"no Socket Mode client connected within {self.delivery_timeout}s") from None
        with self._lock:
            open_sockets = [ws for ws in self._sockets.values() if not ws.closed]
        if not open_sockets:
            raise ConnectionError("no open Socket Mode connection")
        return open_sockets[next(self._round_robin) % len(open_sockets)]

    async def _ask_to_reconnect(self, frame: JSON) -> int:
        """Send ``frame`` to every live connection and stop delivering to them until they are replaced."""
        with self._lock:
            targets = [ws for ws in self._sockets.values() if not ws.closed]
            self._draining.update(self._sockets)
            self._sockets.clear()
            self._changed.notify_all()
        assert self._socket_available is not None
        self._socket_available.clear()
        for ws in targets:
            await ws.send_json(frame)
        return len(targets)

    async def _close_sockets(self) -> int:
        with self._lock:
            targets = [*self._sockets.values(), *self._draining.values()]
        await asyncio.gather(*(ws.close() for ws in targets), return_exceptions=True)
        return len(targets)


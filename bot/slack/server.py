"""Runs the bot: Socket Mode by default, or Slack's HTTP events API with a health endpoint."""

from __future__ import annotations

import json
import logging
import signal
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.wsgi import SlackRequestHandler

from bot import caseindex
from bot.config import Settings
from bot.logs import setup_logging
from bot.runtime import Runtime, open_runtime
from bot.slack.app import create_app
from bot.store import session_scope

log = logging.getLogger(__name__)


def start(settings: Settings) -> tuple[Runtime, App]:
    """Migrate the database, refresh the case index from the files and build the app."""
    runtime = open_runtime(settings)
    with session_scope(runtime.engine) as session:
        count, problems = caseindex.reindex(session, runtime.corpus)
    for problem in problems:
        log.warning("skipping an invalid case file: %s", problem)
    log.info("corpus %s: %d case files indexed", runtime.corpus.root, count)
    return runtime, create_app(runtime)


def run(settings: Settings, *, http: bool, port: int) -> None:
    """Run until SIGINT/SIGTERM."""
    setup_logging(fmt=settings.log_format)
    runtime, app = start(settings)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    if http:
        server = http_server(app, port=port)
        threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
        log.info("listening for Slack on http://0.0.0.0:%d/slack/events", port)
        stop.wait()
        server.shutdown()
        return
    assert settings.slack_app_token is not None
    handler = SocketModeHandler(app, settings.slack_app_token.get_secret_value())
    handler.connect()
    log.info("connected to Slack over Socket Mode; taking flags in %s", settings.channel)
    stop.wait()
    handler.close()


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("http %s", format % args)


def wsgi_app(app: App) -> Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]:
    """Slack's events/interactivity/commands on /slack/events (signature verified by Bolt), and /healthz."""
    slack = SlackRequestHandler(app)

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            start_response("200 OK", [("Content-Type", "application/json")])
            return [json.dumps({"ok": True}).encode()]
        if path == "/slack/events" and environ.get("REQUEST_METHOD") == "POST":
            return slack(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]

    return application


def http_server(app: App, *, port: int, host: str = "0.0.0.0") -> WSGIServer:
    """A threading WSGI server for `wsgi_app(app)`."""
    return make_server(host, port, wsgi_app(app), server_class=_ThreadingWSGIServer, handler_class=_QuietHandler)

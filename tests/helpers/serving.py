"""Driving `evalbot serve` processes in tests: free ports, health waits, signed posts and reaction events."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request

from tests.helpers.slackbot import CHANNEL, FLAGGER

SECRET = "test-signing-secret"


def reaction(ts: str) -> dict:
    return {"type": "reaction_added", "user": FLAGGER, "reaction": "triangular_flag_on_post",
            "item": {"type": "message", "channel": CHANNEL, "ts": ts}, "event_ts": "1763800000.000001"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, "serve --http exited early"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError("serve --http did not become healthy")


def post(port: int, body: str, headers: dict) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/slack/events", data=body.encode(), method="POST",
                                     headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


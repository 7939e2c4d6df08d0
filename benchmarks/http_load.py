"""HTTP mode under load: signed Slack events from a second process against two `serve --http` replicas.

Two real replicas (`python -m bot serve --http`) share one PostgreSQL database (its own schema here) and one
bare git remote for the corpus, each with its own clone, as behind a load balancer. A load process sends
signed event requests round-robin at a fixed rate: mostly reactions the bot ignores (other emoji), a share of
flags, and Slack-style retries of earlier flags sent to the *other* replica. Prints requests/s, ack latency
p50/p99 (from each request's scheduled time, so queueing counts), errors, and lost/duplicated captures.

Run: `uv run python benchmarks/http_load.py [--rate 200] [--seconds 10]` (needs PostgreSQL on 127.0.0.1:5432).
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import queue
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sqlalchemy import create_engine, text  # noqa: E402

from tests.fakes.slack import FakeSlack, event_callback, signed_request_headers  # noqa: E402

CHANNEL, BOT, SECRET = "C0LOAD001", "B0SUPPORT", "load-signing-secret"
PG = os.environ.get("EVALBOT_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def load(ports: list[int], bodies: list[str], rate: float, out: mp.Queue) -> None:
    """The load process: send each body at its scheduled time over keep-alive connections, record latencies."""
    jobs: queue.Queue = queue.Queue()
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        connections: dict[int, http.client.HTTPConnection] = {}
        while (job := jobs.get()) is not None:
            due, port, body = job
            connection = connections.get(port) or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connections[port] = connection
            try:
                connection.request("POST", "/slack/events", body=body, headers=signed_request_headers(SECRET, body))
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
            except OSError as exc:
                connections.pop(port).close()
                ok, response = False, exc
            with lock:
                latencies.append((time.perf_counter() - due) * 1000)
                if not ok:
                    errors.append(str(getattr(response, "status", response)))

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(32)]
    for thread in threads:
        thread.start()
    start = time.perf_counter()
    for i, body in enumerate(bodies):
        due = start + i / rate
        time.sleep(max(0.0, due - time.perf_counter()))
        jobs.put((due, ports[i % len(ports)], body))
    for _ in threads:
        jobs.put(None)
    for thread in threads:
        thread.join()
    out.put({"latencies": latencies, "errors": errors, "seconds": time.perf_counter() - start})


def reaction(ts: str, user: str, emoji: str) -> dict:
    return {"type": "reaction_added", "user": user, "reaction": emoji, "item": {"type": "message", "channel": CHANNEL, "ts": ts}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--flag-share", type=float, default=0.05, help="share of requests that are new flags")
    args = parser.parse_args()
    total = int(args.rate * args.seconds)
    work = Path(tempfile.mkdtemp(prefix="evalbot-http-load-"))
    schema = "load_" + uuid.uuid4().hex[:8]
    admin = create_engine(PG, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    remote = work / "corpus.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    replicas: list[subprocess.Popen] = []
    with FakeSlack() as slack:
        slack.add_channel(CHANNEL, "load")
        slack.add_user("U0LOAD", "load", display_name="Load")
        flags = max(1, int(total * args.flag_share))
        threads = []
        for i in range(flags):
            parent = slack.post(CHANNEL, f"Question {i}?", user="U0LOAD")
            threads.append(slack.post(CHANNEL, f"Answer {i}.", bot_id=BOT, thread_ts=parent))
        bodies, flagged, event = [], [], 0
        for i in range(total):
            event += 1
            if len(flagged) < flags and i % max(1, int(1 / args.flag_share)) == 0:
                ts = threads[len(flagged)]
                flagged.append((ts, f"EvL{event:06d}"))
                bodies.append(json.dumps(event_callback(reaction(ts, "U0LOAD", "triangular_flag_on_post"), event_id=f"EvL{event:06d}")))
            elif flagged and i % 10 == 5:  # Slack's retry of an earlier flag, landing on the other replica
                ts, event_id = flagged[-1]
                bodies.append(json.dumps(event_callback(reaction(ts, "U0LOAD", "triangular_flag_on_post"), event_id=event_id)))
            else:
                bodies.append(json.dumps(event_callback(reaction(threads[i % flags], "U0LOAD", "eyes"), event_id=f"EvL{event:06d}")))
        ports = [free_port(), free_port()]
        for n, port in enumerate(ports):
            clone = work / f"replica{n}"
            subprocess.run(["git", "clone", "-q", str(remote), str(clone)], check=True, capture_output=True)
            env = {**os.environ, "PYTHONPATH": str(REPO), "SLACK_BOT_TOKEN": "xoxb-load", "SLACK_SIGNING_SECRET": SECRET,
                   "SLACK_API_URL": slack.api_url, "EVALBOT_CHANNEL": CHANNEL, "EVALBOT_ASSISTANT_IDS": BOT,
                   "EVALBOT_CORPUS_DIR": str(clone / "corpus"), "EVALBOT_GIT_PUSH": str(remote),
                   "EVALBOT_DATABASE_URL": f"{PG}?options=-csearch_path%3D{schema}", "EVALBOT_NIGHTLY": "0 3 1 1 *",
                   "GIT_AUTHOR_NAME": "load", "GIT_AUTHOR_EMAIL": "load@localhost"}
            log = open(work / f"replica{n}.log", "w")
            replicas.append(subprocess.Popen([sys.executable, "-m", "bot", "serve", "--http", "--port", str(port)],
                                             env=env, stdout=log, stderr=subprocess.STDOUT))
        for port in ports:
            deadline = time.monotonic() + 60
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
        out: mp.Queue = mp.get_context("spawn").Queue()
        loader = mp.get_context("spawn").Process(target=load, args=(ports, bodies, args.rate, out))
        loader.start()
        result = out.get(timeout=args.seconds * 10 + 120)
        loader.join()
        load_done = time.monotonic()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            replied = [c.params.get("thread_ts") for c in slack.calls_to("chat.postMessage") if c.params.get("thread_ts")]
            if len(set(replied)) >= flags:
                break
            time.sleep(0.2)
        settled = time.monotonic() - load_done
        for proc in replicas:
            proc.send_signal(signal.SIGTERM)
        for proc in replicas:
            proc.wait(timeout=60)
        files = subprocess.run(["git", "ls-tree", "-r", "--name-only", "main"], cwd=remote, capture_output=True,
                               text=True).stdout.split()
    with admin.connect() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    latencies = result["latencies"]
    replies = replied
    print(f"requests:         {len(latencies)} in {result['seconds']:.2f}s = {len(latencies) / result['seconds']:.0f} requests/s "
          f"(target {args.rate:.0f}/s) against 2 replicas")
    print(f"ack latency:      p50 {statistics.median(latencies):.1f} ms, p99 {percentile(latencies, 0.99):.1f} ms, "
          f"max {max(latencies):.1f} ms")
    print(f"errors:           {len(result['errors'])} {sorted(set(result['errors']))[:5]}")
    print(f"flags:            {flags} distinct, each also redelivered to the other replica")
    print(f"captured:         {len(set(replies))} replied in thread, {len(files)} case files on the shared remote "
          f"({settled:.1f}s after the load ended)")
    print(f"lost:             {flags - len(set(replies))}")
    print(f"duplicates:       {len(replies) - len(set(replies)) + max(0, len(files) - flags)} (extra replies + extra files)")


if __name__ == "__main__":
    main()

"""Capture throughput and ack latency: flags through Socket Mode on the fake Slack, corpus on disk, git commits on.

The fake Slack runs in its own process (as Slack is not inside the bot's process in production) and sends the
flags; the bot runs here, exactly as `evalbot serve` builds it (acks in this process, captures in its worker).
Prints ack latency p50/p99, captures per second, git commits, and lost / duplicated counts. 10% of the events are
sent twice (Slack's retries), which must not duplicate anything.

Since the durable flag inbox (issue 12) every flag is written to the database before its ack. `--compare REV`
measures that cost fairly: it runs this checkout's bot and REV's (`git archive REV bot` into a temporary folder;
2d220e2 is the last commit before the inbox, which recorded the flag after the ack) against the same harness and
the same fake Slack, alternating them run by run on the same machine, on a fresh database each run, and prints
every run, the spread and the machine load.

Run: `uv run python benchmarks/capture.py [--flags 500] [--rate 60]` (`--flags 200` is a quick run);
`uv run python benchmarks/capture.py --flags 200 --compare 2d220e2 --runs 5 --db sqlite --db postgresql`.
`BENCH_DATABASE_URL=postgresql+psycopg://…` names a PostgreSQL server: each run creates a scratch database on it
(and drops it after), so runs never see each other's rows.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
# `--compare` runs another revision's bot: its `bot/` package comes first on the path in this process and in every
# process spawned from it (the fake Slack and the harness stay this checkout's: that folder holds `bot/` only).
TREE = os.environ.get("BENCH_TREE")
if TREE:
    sys.path.insert(0, TREE)

CHANNEL, BOT, FLAGGER = "C0BENCH01", "B0SUPPORT", "U0BENCH"
WARMUP = 5
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def captures_in_log(log: str) -> int:
    """Captures recorded in commit messages: one per `Capture <id>: …` subject or `- Capture <id>` line of a group."""
    return sum(1 for line in log.splitlines()
               if line.startswith("- Capture ") or (line.startswith("Capture ") and not line.endswith(" cases")))


def slack_side(conn, flags: int, rate: float) -> None:
    """The fake Slack process: seed threads, wait for the bot, send the flags, report what came back."""
    from tests.fakes.slack import FakeSlack, event_callback

    with FakeSlack() as slack:
        slack.add_channel(CHANNEL, "bench")
        slack.add_user(FLAGGER, "bench", display_name="Bench")
        threads = []
        for i in range(flags):
            parent = slack.post(CHANNEL, f"Question {i}: how long do I have to return item {i}?", user=FLAGGER)
            threads.append((parent, slack.post(CHANNEL, f"You have {90 + i} days.", bot_id=BOT, thread_ts=parent)))
        conn.send({"api_url": slack.api_url, "threads": threads})
        slack.wait_connected(timeout=60)
        # Warm-up (not measured): the first flags import lazily-loaded modules and fill caches.
        for i in range(WARMUP):
            parent = slack.post(CHANNEL, f"Warm-up {i}", user=FLAGGER)
            reply = slack.post(CHANNEL, "Warm-up reply", bot_id=BOT, thread_ts=parent)
            event = {"type": "reaction_added", "user": FLAGGER, "reaction": "triangular_flag_on_post",
                     "item": {"type": "message", "channel": CHANNEL, "ts": reply}}
            slack.send_envelope("events_api", event_callback(event, event_id=f"EvWarm{i}"), timeout=30)
            slack.wait_for_call("chat.postMessage", lambda c, p=parent: c.params.get("thread_ts") == p, timeout=30)
        futures, started = [], time.monotonic()
        for i, (_, reply) in enumerate(threads):
            event = {"type": "reaction_added", "user": FLAGGER, "reaction": "triangular_flag_on_post",
                     "item": {"type": "message", "channel": CHANNEL, "ts": reply}}
            payload = event_callback(event, event_id=f"EvB{i:05d}")
            futures.append(slack.send_envelope_nowait("events_api", payload))
            if i % 10 == 0:
                futures.append(slack.send_envelope_nowait("events_api", payload, retry_attempt=1, retry_reason="timeout"))
            if rate:
                time.sleep(max(0.0, started + (i + 1) / rate - time.monotonic()))
        latencies = [f.result(timeout=120).latency * 1000 for f in futures]
        sent = time.monotonic() - started

        def replied() -> list[str]:
            return [c.params.get("thread_ts") for c in slack.calls_to("chat.postMessage") if c.params.get("thread_ts")]

        deadline = time.monotonic() + 300
        while len(set(replied())) < flags + WARMUP and time.monotonic() < deadline:
            time.sleep(0.02)
        conn.send({"latencies": latencies, "sent_s": sent, "done_s": time.monotonic() - started, "replies": replied()})
        conn.recv()  # keep serving until the bot has disconnected


@contextmanager
def scratch_database(server_url: str | None, work: Path) -> Iterator[str]:
    """A database of its own for one run: a SQLite file in `work`, or a new database on the PostgreSQL server."""
    if not server_url or server_url.startswith("sqlite"):
        yield f"sqlite:///{work / 'evalbot.db'}"
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"evalbot_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def run_once(flags: int, rate: float, database_url: str, work: Path) -> dict:
    """One measured run of the bot in this process (the bot of BENCH_TREE when set) against a fake Slack child."""
    ours, theirs = mp.Pipe()
    child = mp.get_context("spawn").Process(target=slack_side, args=(theirs, flags, rate))
    child.start()
    seeded = ours.recv()
    os.chdir(work)
    os.environ.update({
        "SLACK_BOT_TOKEN": "xoxb-bench", "SLACK_APP_TOKEN": "xapp-bench", "SLACK_API_URL": seeded["api_url"],
        "EVALBOT_CHANNEL": CHANNEL, "EVALBOT_ASSISTANT_IDS": BOT, "EVALBOT_CORPUS_DIR": str(work / "corpus"),
        "EVALBOT_DATABASE_URL": database_url, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@localhost",
    })
    import inspect
    import resource

    from slack_bolt.adapter.socket_mode import SocketModeHandler

    import bot
    from bot.core.settings import get_settings
    from bot.corpus.ids import slack_case_id
    from bot.serve import start
    from bot.slack.flows.capture_worker import CaptureWorker
    from tests.fakes.slack import close_socket_mode

    load_before = os.getloadavg()
    worker = CaptureWorker()  # as `evalbot serve` runs: captures in a worker process, acks here
    runtime, app = start(get_settings(), submit_flag=worker)
    # Before the inbox the worker took no database URL (it had no leases to return).
    worker.start(*([get_settings().database_url] if inspect.signature(worker.start).parameters else []))
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    handler = SocketModeHandler(app, "xapp-bench")
    handler.connect()
    result = ours.recv()
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    close_socket_mode(handler)
    worker.stop()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    ours.send("stop")
    child.join(timeout=30)

    latencies, replies = result["latencies"], result["replies"]
    ids = runtime.corpus.ids()
    expected = {slack_case_id(CHANNEL, reply) for _, reply in seeded["threads"]}
    warmups = len(ids) - len(expected & set(ids))
    cases_in_commits = captures_in_log(runtime.corpus.repo.run("log", "--format=%B"))
    captured = len(ids) - warmups
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    return {
        "bot": str(Path(bot.__file__).parent.parent), "dialect": runtime.engine.dialect.name,
        "flags": flags, "rate": rate, "redeliveries": len(latencies) - flags, "sent_s": result["sent_s"],
        "p50": statistics.median(latencies), "p99": percentile(latencies, 0.99), "max": max(latencies),
        "captured": captured, "done_s": result["done_s"], "warmups": warmups,
        "commits": int(runtime.corpus.repo.run("rev-list", "--count", "HEAD")) - warmups,
        "cases_in_commits": cases_in_commits, "lost": len(expected - set(ids)),
        "duplicated": len(replies) - len(set(replies)) + max(0, cases_in_commits - flags - warmups),
        "cpu_ack": cpu, "cpu_worker": children.ru_utime + children.ru_stime,
        "load": [load_before[0], os.getloadavg()[0]], "cores": os.cpu_count(),
    }


def print_run(r: dict) -> None:
    print(f"bot:              {r['bot']} ({r['dialect']})")
    print(f"flags sent:       {r['flags']} (+{r['redeliveries']} redeliveries) at {r['rate'] or 'max'}/s in {r['sent_s']:.2f}s")
    print(f"ack latency:      p50 {r['p50']:.1f} ms, p99 {r['p99']:.1f} ms, max {r['max']:.1f} ms")
    print(f"captures:         {r['captured']} in {r['done_s']:.2f}s = {r['captured'] / r['done_s']:.1f} captures/s "
          f"(after {r['warmups']} warm-up flags)")
    print(f"git commits:      {r['commits']} (covering {r['cases_in_commits']} captures; group commits list each case)")
    print(f"lost:             {r['lost']}")
    print(f"duplicated:       {r['duplicated']} (extra replies + extra captures)")
    print(f"bot CPU:          {r['cpu_ack']:.2f}s in the process answering Slack, {r['cpu_worker']:.2f}s in the capture "
          f"worker and git ({r['cpu_worker'] * 1000 / max(1, r['captured']):.1f} ms per capture)")
    print(f"load average:     {r['load'][0]:.2f} at start, {r['load'][1]:.2f} at end ({r['cores']} cores)")


@contextmanager
def revision_tree(rev: str) -> Iterator[Path]:
    """REV's `bot/` package in a temporary folder (`git archive`; the repository itself is left alone)."""
    folder = Path(tempfile.mkdtemp(prefix=f"evalbot-bench-{rev}-"))
    try:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", rev, "bot"],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def spawn_run(args: argparse.Namespace, tree: Path | None, database: str) -> dict:
    """One run in a fresh interpreter (so nothing is shared between runs), `tree`'s bot when given."""
    env = {k: v for k, v in os.environ.items() if k != "BENCH_TREE"}
    env["BENCH_DATABASE_URL"] = database
    if tree is not None:
        env["BENCH_TREE"] = str(tree)
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        command = [sys.executable, str(Path(__file__).resolve()), "--flags", str(args.flags), "--rate", str(args.rate),
                   "--json-out", out.name]
        done = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode:
            raise SystemExit(f"a benchmark run failed:\n{done.stderr[-3000:]}")
        return json.loads(Path(out.name).read_text())


def spread(values: list[float]) -> str:
    return f"median {statistics.median(values):6.1f}  range {min(values):6.1f}-{max(values):6.1f}"


def compare(args: argparse.Namespace) -> None:
    """Alternate REV's bot and this checkout's, run by run, on each database; print every run and the spread."""
    servers = {"sqlite": None, "postgresql": os.environ.get("BENCH_DATABASE_URL") or DEFAULT_PG}
    results: dict[tuple[str, str], list[dict]] = {}
    with revision_tree(args.compare) as before:
        trees = {f"before ({args.compare})": before, "after (this checkout)": None}
        for db in args.db:
            for n in range(args.runs):
                order = list(trees.items()) if n % 2 == 0 else list(trees.items())[::-1]
                for label, tree in order:
                    r = spawn_run(args, tree, servers[db] or "sqlite")
                    results.setdefault((db, label), []).append(r)
                    print(f"{db:10} {label:24} run {n + 1}: ack p50 {r['p50']:6.1f} ms  p99 {r['p99']:6.1f} ms  "
                          f"max {r['max']:6.1f} ms  {r['captured'] / r['done_s']:5.1f} captures/s  lost {r['lost']}  "
                          f"dup {r['duplicated']}  load {r['load'][0]:.1f}-{r['load'][1]:.1f}", flush=True)
    print(f"\n{args.flags} flags (+10% redeliveries) at {args.rate or 'max'}/s, {args.runs} runs each, alternating; "
          f"{os.cpu_count()} cores; before = {args.compare}'s bot, run from {results[(args.db[0], next(iter(trees)))][0]['bot']}")
    for db in args.db:
        p99 = {}
        for label in trees:
            runs = results[(db, label)]
            p99[label] = statistics.median(r["p99"] for r in runs)
            loads = [x for r in runs for x in r["load"]]
            print(f"{db:10} {label:24} p50 {spread([r['p50'] for r in runs])} ms | "
                  f"p99 {spread([r['p99'] for r in runs])} ms | load {min(loads):.1f}-{max(loads):.1f}")
        first, second = p99.values()
        pairs = [a["p99"] / b["p99"] for b, a in zip(*(results[(db, label)] for label in trees), strict=True)]
        print(f"{db:10} p99 after / before: {second / first:.2f}x of the medians; run by run "
              f"{', '.join(f'{x:.2f}' for x in pairs)}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--flags", type=int, default=500)
    parser.add_argument("--rate", type=float, default=60, help="flags per second sent (0 = all at once)")
    parser.add_argument("--compare", metavar="REV", help="also run REV's bot, alternating with this checkout's")
    parser.add_argument("--runs", type=int, default=3, help="runs of each bot with --compare")
    parser.add_argument("--db", action="append", choices=["sqlite", "postgresql"],
                        help="with --compare: the databases to measure on (repeatable; default both)")
    parser.add_argument("--json-out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.compare:
        args.db = args.db or ["sqlite", "postgresql"]
        compare(args)
        return
    work = Path(tempfile.mkdtemp(prefix="evalbot-bench-"))
    try:
        with scratch_database(os.environ.get("BENCH_DATABASE_URL"), work) as database_url:
            result = run_once(args.flags, args.rate, database_url, work)
            from bot.store.tables import dispose_engines

            dispose_engines()  # before the scratch database is dropped
    finally:
        os.chdir(REPO)
        shutil.rmtree(work, ignore_errors=True)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result))
    print_run(result)


if __name__ == "__main__":
    main()

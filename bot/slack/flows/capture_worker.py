"""A child process that captures the flags in the inbox, so the process answering Slack keeps its acks fast.

Capturing (Slack reads, YAML, git, the database) is CPU work in Python; done on the listener threads it competes
for the interpreter lock with the threads that ack Slack's envelopes. Under `evalbot serve` the listeners write
each flag to the inbox (`bot.capture.inbox`) and only nudge this worker; the worker leases due rows from the
database (so nothing is lost when either process dies) and captures them on a thread pool, so group commits
still form. It never outlives `serve`: it asks Linux for SIGKILL when its parent dies and also watches its parent
pid. A supervisor thread in `serve` restarts a worker that died and returns the rows it had leased.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing as mp
import os
import queue
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from bot.capture import inbox
from bot.core import metrics
from bot.core.logs import setup_logging
from bot.core.settings import get_settings
from bot.corpus import similarity
from bot.runtime import open_runtime
from bot.slack.client import make_web_client
from bot.slack.deps import build_deps
from bot.slack.flows.flagging import capture_claimed
from bot.store.tables import get_engine

log = logging.getLogger(__name__)

WORKER_THREADS = 32
POLL_SECONDS = 0.5  # how often the worker looks for due rows (retries, rows of other workers) without a nudge
RESTART_PAUSE = 1.0  # between a worker's death and its successor, so a worker that cannot start does not spin
RESTART_MAX_PAUSE = 60.0  # doubling up to this while workers die young
_STOP = None
_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int) -> None:
    """End this process when `parent_pid` ends, even by SIGKILL: PR_SET_PDEATHSIG, and a watcher thread."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            log.info("prctl is unavailable; watching the parent pid only")

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.2)
        os._exit(70)  # the parent is gone: leased rows return to the inbox when a new `serve` starts

    threading.Thread(target=watch, name="evalbot-parent-watch", daemon=True).start()
    if os.getppid() != parent_pid:
        os._exit(70)


def _child(parent_pid: int, nudges: mp.Queue, outcomes: mp.Queue) -> None:
    """The worker process: build the deps as the app does, then capture due inbox rows until told to stop."""
    _die_with_parent(parent_pid)
    sys.setswitchinterval(0.0005)
    settings = get_settings()
    setup_logging(fmt=settings.log_format)
    runtime = open_runtime(settings, migrate_db=False)
    client = make_web_client(settings)
    deps = build_deps(runtime, client, client.auth_test().data)
    threading.Thread(target=similarity.warm, args=(runtime.corpus,), name="evalbot-warm", daemon=True).start()
    owner = inbox.owner_id()
    free = threading.Semaphore(WORKER_THREADS)

    def capture_one(claimed: inbox.Claimed) -> None:
        try:
            outcomes.put(capture_claimed(deps, client, claimed, owner=owner))
        finally:
            free.release()

    with ThreadPoolExecutor(max_workers=WORKER_THREADS, thread_name_prefix="evalbot-capture") as pool:
        stopping = False
        while not stopping:
            try:
                stopping = nudges.get(timeout=POLL_SECONDS) is _STOP
                while not stopping:  # one claim serves every nudge already queued
                    stopping = nudges.get_nowait() is _STOP
            except queue.Empty:
                pass
            if stopping:
                break
            slots = 0
            while free.acquire(blocking=False):
                slots += 1
            try:
                claimed = inbox.claim(runtime.engine, owner=owner, limit=slots) if slots else []
            except Exception as exc:  # noqa: BLE001 - the database may be away or not migrated yet: poll again
                log.warning("could not read the flag inbox (%s); trying again", type(exc).__name__)
                claimed = []
            for _ in range(slots - len(claimed)):
                free.release()
            for row in claimed:
                pool.submit(capture_one, row)


class CaptureWorker:
    """Runs and supervises the worker process; callable as a SlackDeps.submit_flag (a nudge: a row is due)."""

    def __init__(self) -> None:
        self._context = mp.get_context("spawn")  # never fork a process that runs threads
        self._nudges: mp.Queue = self._context.Queue()
        self._outcomes: mp.Queue = self._context.Queue()
        self._process: mp.process.BaseProcess | None = None
        self._database_url: str | None = None
        self._stopping = threading.Event()
        self._started = threading.Event()
        self._supervisor = threading.Thread(target=self._supervise, name="evalbot-capture-supervisor", daemon=True)
        self._collector = threading.Thread(target=self._collect, name="evalbot-capture-outcomes", daemon=True)
        self.restarts = 0

    def start(self, database_url: str) -> None:
        """Start the worker (and its supervisor); its leases are returned in `database_url` if it dies.

        It may start before the parent has migrated the database: it waits for the inbox to be readable."""
        self._database_url = database_url
        self._supervisor.start()
        self._collector.start()
        self._started.wait(timeout=30)

    def _spawn(self) -> mp.process.BaseProcess:
        process = self._context.Process(target=_child, args=(os.getpid(), self._nudges, self._outcomes),
                                        name="evalbot-capture", daemon=True)
        process.start()
        return process

    def _supervise(self) -> None:
        # The worker is started from this thread and only this one: PR_SET_PDEATHSIG follows the thread that
        # started a process, and this thread lives as long as the worker should.
        self._process = self._spawn()
        self._started.set()
        started, pause = time.monotonic(), RESTART_PAUSE / 2
        while not self._stopping.is_set():
            self._process.join(timeout=0.2)
            if self._process.is_alive() or self._stopping.is_set():
                continue
            dead = self._process
            returned = self._release(dead)
            # A worker that cannot even start (Slack refusing its sign-in) is retried ever more slowly.
            pause = RESTART_PAUSE if time.monotonic() - started > RESTART_MAX_PAUSE else min(pause * 2, RESTART_MAX_PAUSE)
            log.error("the capture worker stopped (exit code %s); %d flag(s) it held go back to the inbox; "
                      "starting a new one in %.0f s", dead.exitcode, returned, pause)
            self._stopping.wait(pause)
            if not self._stopping.is_set():
                self.restarts += 1
                self._process, started = self._spawn(), time.monotonic()
                self._nudges.put("restarted")

    def _release(self, process: mp.process.BaseProcess) -> int:
        if self._database_url is None or not process.pid:
            return 0
        return inbox.release(get_engine(self._database_url), owner=inbox.owner_id(process.pid))

    def __call__(self, key: str) -> None:
        self._nudges.put(key)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def _collect(self) -> None:
        while not self._stopping.is_set():
            try:
                outcome = self._outcomes.get(timeout=0.5)
            except queue.Empty:
                continue
            metrics.CAPTURES.labels(outcome).inc()

    def stop(self, timeout: float = 30) -> None:
        """Let the worker finish the flags it holds, then stop it (the rest wait in the inbox)."""
        self._stopping.set()
        self._nudges.put(_STOP)
        self._supervisor.join(timeout=5)
        process = self._process
        if process is not None:
            process.join(timeout)
            if process.is_alive():
                log.warning("the capture worker did not finish within %.0f s; stopping it", timeout)
                process.terminate()
                process.join(5)
            self._release(process)
        self._collector.join(timeout=2)

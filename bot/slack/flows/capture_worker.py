"""A child process that captures flags, so the process answering Slack keeps its acks fast under load.

Capturing (Slack reads, YAML, git, the database) is CPU work in Python; done on the listener threads it competes
for the interpreter lock with the threads that ack Slack's envelopes. Under `evalbot serve` the listeners only
hand each flag to this worker (a queue into a spawned process, which runs `handle_flag` on a thread pool so
group commits still form); the outcomes come back for the parent's metrics. The worker is restarted if it dies.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import queue
import threading
from concurrent.futures import ThreadPoolExecutor

from bot.capture.candidate import FlagRequest
from bot.core import metrics
from bot.core.logs import setup_logging
from bot.core.settings import get_settings
from bot.corpus import similarity
from bot.runtime import open_runtime
from bot.slack.client import make_web_client
from bot.slack.deps import build_deps
from bot.slack.flows.flagging import handle_flag

log = logging.getLogger(__name__)

WORKER_THREADS = 32
_STOP = None


def _child(flags: mp.Queue, outcomes: mp.Queue) -> None:
    """The worker process: build the deps as the app does, then capture every flag that arrives."""
    settings = get_settings()
    setup_logging(fmt=settings.log_format)
    runtime = open_runtime(settings, migrate_db=False)
    client = make_web_client(settings)
    deps = build_deps(runtime, client, client.auth_test().data)
    threading.Thread(target=similarity.warm, args=(runtime.corpus,), name="evalbot-warm", daemon=True).start()

    def capture_one(flag: FlagRequest, response_url: str | None) -> None:
        try:
            outcomes.put(handle_flag(deps, client, flag, response_url=response_url))
        except Exception:  # noqa: BLE001 - one flag's failure must not stop the worker; it is logged in full
            log.exception("capturing a flag failed")
            outcomes.put("failed")

    with ThreadPoolExecutor(max_workers=WORKER_THREADS, thread_name_prefix="evalbot-capture") as pool:
        while (item := flags.get()) is not _STOP:
            pool.submit(capture_one, *item)


class CaptureWorker:
    """Hands flags to the worker process; callable as a SlackDeps.submit_flag."""

    def __init__(self) -> None:
        self._context = mp.get_context("spawn")  # never fork a process that runs threads
        self._flags: mp.Queue = self._context.Queue()
        self._outcomes: mp.Queue = self._context.Queue()
        self._process: mp.Process | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._collector = threading.Thread(target=self._collect, name="evalbot-capture-outcomes", daemon=True)

    def start(self) -> None:
        self._spawn()
        self._collector.start()

    def _spawn(self) -> None:
        self._process = self._context.Process(target=_child, args=(self._flags, self._outcomes),
                                              name="evalbot-capture", daemon=True)
        self._process.start()

    def __call__(self, flag: FlagRequest, response_url: str | None) -> None:
        with self._lock:
            if self._process is not None and not self._process.is_alive() and not self._stopping.is_set():
                log.error("the capture worker stopped (exit code %s); starting a new one", self._process.exitcode)
                self._spawn()
        self._flags.put((flag, response_url))

    def _collect(self) -> None:
        while not self._stopping.is_set():
            try:
                outcome = self._outcomes.get(timeout=0.5)
            except queue.Empty:
                continue
            metrics.CAPTURES.labels(outcome).inc()

    def stop(self, timeout: float = 30) -> None:
        """Let the worker finish the flags it has, then stop it."""
        self._stopping.set()
        self._flags.put(_STOP)
        if self._process is not None:
            self._process.join(timeout)
            if self._process.is_alive():
                log.warning("the capture worker did not finish within %.0f s; stopping it", timeout)
                self._process.terminate()
        self._collector.join(timeout=2)

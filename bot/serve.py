"""Runs the bot: Socket Mode by default, or Slack's HTTP events API with a health endpoint; and the nightly job.

`start()` prepares the database, recovers the corpus folder after a crash (`bot.corpus.recovery`), refreshes
the case index and builds the Bolt app; `run()` catches up on flags made while the bot was not connected
(`bot.slack.flows.catchup`) at start and on every reconnection; `run()` also starts the nightly scheduler and
posts the digests still owed from before (both in `start_background`), and on SIGINT/SIGTERM stops them, failing
a run in progress as interrupted (its "run failed" message is posted at the next start).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable

import uvicorn
from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler

from bot.capture import inbox
from bot.core.clock import utcnow
from bot.core.errors import RunInProgressError
from bot.core.logs import setup_logging
from bot.core.settings import Settings
from bot.corpus.recovery import recover
from bot.corpus.refresh import refresh
from bot.corpus.seed import prepare_data
from bot.evals import runs
from bot.evals.batch.resume import resume_batch_runs
from bot.runtime import Runtime, open_runtime, readiness
from bot.schedule import Nightly, start_nightly
from bot.slack.app import create_app
from bot.slack.client import signing_in
from bot.slack.deps import SubmitFlag
from bot.slack.flows.capture_worker import CaptureWorker
from bot.slack.flows.catchup import CatchupScope, catch_up
from bot.slack.flows.digest_post import post_pending_digests, publish
from bot.slack.flows.followups import FollowUpSender, FollowUpService
from bot.slack.http import EvalbotAsgi
from bot.store.tables import advisory_lock, session_scope

REINDEX_LOCK_KEY = 727_003  # arbitrary, distinct from the other advisory locks

log = logging.getLogger(__name__)

_FOLLOWUPS: list[FollowUpService] = []  # started by start_background, stopped by stop_background


def start(settings: Settings, *, submit_flag: SubmitFlag | None = None) -> tuple[Runtime, App]:
    """Prepare the data folder, migrate the database, settle what a crash left in the corpus, refresh the case
    index from the files, return the inbox rows a dead process held, open the inbox's connections, and build the app."""
    prepare_data(settings)  # first start: the data folder, and the example corpus in an empty corpus folder
    runtime = open_runtime(settings)
    recover(runtime.corpus)
    returned = inbox.release_dead(runtime.engine)
    if returned:
        log.warning("%d flag(s) held by a process that died go back to the inbox", returned)
    count, problems = _refresh_index(runtime)
    for problem in problems:
        log.warning("skipping an invalid case file: %s", problem)
    log.info("corpus %s: %d case files indexed", runtime.corpus.root, count)
    inbox.warm(runtime.engine)  # the connections the acks write the inbox on, open before the first envelope
    return runtime, create_app(runtime, submit_flag=submit_flag)


def _refresh_index(runtime: Runtime) -> tuple[int, list[str]]:
    # Replicas starting together would rebuild the same index rows at once: they take turns.
    with advisory_lock(runtime.engine, REINDEX_LOCK_KEY), session_scope(runtime.engine) as session:
        done = refresh(session, runtime.corpus)
        return done.indexed, done.problems


def start_background(runtime: Runtime, app: App) -> Nightly:
    """Start the nightly scheduler and, in a background thread, post the digests still owed."""
    client = app.client
    nightly = start_nightly(runtime, publish=lambda outcome: publish(runtime, outcome, client=client))

    def post_pending() -> None:
        try:
            with session_scope(runtime.engine) as session:  # its digest comes when the resumed run ends
                resuming = [run.id for run in runs.interrupted_runs(session, trigger="nightly",
                                                                     since=utcnow() - runs.STALE_AFTER)][:1]
            post_pending_digests(runtime, client=client, exclude=[i for i in resuming if i is not None])
            # Batch runs a restart interrupted: finish them (this can take hours), then post their digests.
            if resume_batch_runs(runtime):
                post_pending_digests(runtime, client=client)
            # A nightly run a stop or a crash interrupted: grade the cases it had not graded, post its digest.
            resumed = runs.resume_interrupted(runtime, trigger="nightly")
            if resumed is not None:
                publish(runtime, resumed, client=client)
        except RunInProgressError as exc:
            log.info("not resuming an interrupted nightly run now: %s", exc)
        except Exception:  # noqa: BLE001 - they stay pending for the next start
            log.exception("finishing interrupted runs or posting pending digests failed")

    threading.Thread(target=post_pending, name="evalbot-pending-digests", daemon=True).start()
    _FOLLOWUPS.append(FollowUpService(FollowUpSender(runtime, client)).start())  # follow-ups from the outbox
    return nightly


def catchup_trigger(runtime: Runtime, app: App, submit: SubmitFlag) -> Callable[[], None]:
    """A function that catches up on flags made while the bot was not connected, in a background thread (one
    at a time: a reconnect during a catch-up waits for it), handing each new inbox row to `submit`."""
    settings = runtime.settings
    identity = app.client.auth_test()
    scope = CatchupScope(channel=settings.channel or "", flag_emoji=frozenset(settings.flag_emoji),
                         bot_user_id=identity.get("user_id"), bot_id=identity.get("bot_id"),
                         hours=settings.catchup_hours, max_messages=settings.catchup_max_messages)
    running = threading.Lock()

    def run_once(now: float) -> None:
        with running:
            try:
                for key in catch_up(app.client, engine=runtime.engine, corpus=runtime.corpus, scope=scope, now=now).keys:
                    submit(key)
            except Exception:  # noqa: BLE001 - the checkpoint stays where it was: the next connect reads it again
                log.exception("catching up on flags made while disconnected failed")

    # Up to the moment of the (re)connection: what comes after it arrives as events.
    return lambda: threading.Thread(target=run_once, args=(time.time(),), name="evalbot-catchup", daemon=True).start()


def stop_background(nightly: Nightly) -> None:
    """Stop the scheduler; a run in progress is marked failed (interrupted) and its lock released."""
    nightly.shutdown()
    while _FOLLOWUPS:
        _FOLLOWUPS.pop().stop()
    if runs.interrupt_in_flight():
        log.warning("stopped during an eval run: marked interrupted (a nightly or batch run resumes at the next start)")


class StopSignal:
    """SIGINT/SIGTERM from the first line of `run` on.

    A signal sets `stopping`, which each start step checks, so a signal during the start stops serve there (exit
    code 0, what had started stopped as on any stop), and stops the uvicorn server once there is one: uvicorn puts
    its own handlers in place only once its event loop runs, and puts these back when it returns; a signal before
    that (or before `server.run()`) must still reach it, else nobody acts on it and serve never stops. A second
    signal while a start step has not returned interrupts it (KeyboardInterrupt), for a start that hangs.
    """

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self.server: uvicorn.Server | None = None
        self.starting = True
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, _frame: object) -> None:
        first = not self.stopping.is_set()
        self.stopping.set()
        server = self.server
        if server is not None:
            server.should_exit = True  # uvicorn's handler is not in place yet (or no more): stop it from here
        elif self.starting and not first:
            raise KeyboardInterrupt
        if first:
            log.info("shutting down")  # also when uvicorn re-raises the signal it caught, once it has shut down


def run(settings: Settings, *, http: bool, port: int) -> None:
    """Run until SIGINT/SIGTERM: uvicorn serves Slack's HTTP API (with --http) or only the probes
    (/healthz, /readyz, /metrics) next to a Socket Mode connection. A signal at any point of the start stops it
    there (see `StopSignal`); what had started is stopped as on any stop."""
    stop = StopSignal()
    setup_logging(fmt=settings.log_format)
    worker = CaptureWorker()
    runtime, app = start(settings, submit_flag=worker)  # Slack sign-in checked here, before the worker starts
    handler: SocketModeHandler | None = None
    nightly: Nightly | None = None
    worker_started = False
    try:
        if stop.stopping.is_set():
            return
        worker.start(settings.database_url)
        worker_started = True
        nightly = start_background(runtime, app)
        catch_up_now = catchup_trigger(runtime, app, worker)
        if http:
            catch_up_now()  # over HTTP there is no connection to say hello: once at start
        if not http and not stop.stopping.is_set():
            assert settings.slack_app_token is not None
            handler = SocketModeHandler(app, settings.slack_app_token.get_secret_value())
            # Slack says hello on every (re)connection: each one catches up on what was flagged meanwhile.
            handler.client.message_listeners.append(
                lambda _client, message, _raw: catch_up_now() if message.get("type") == "hello" else None)
            signing_in(settings, "SLACK_APP_TOKEN", handler.connect)
            log.info("connected to Slack over Socket Mode; taking flags in %s", settings.channel)
        asgi = EvalbotAsgi(app, readiness=lambda: readiness(runtime), path="/slack/events" if http else None)
        server = uvicorn.Server(uvicorn.Config(asgi, host="0.0.0.0", port=port, log_config=None, access_log=False,
                                               lifespan="off", timeout_graceful_shutdown=10))
        stop.server = server  # from here a signal sets server.should_exit, whoever's handler is in place
        if stop.stopping.is_set():
            return
        log.info("listening on http://0.0.0.0:%d (%s)", port, "/slack/events, probes" if http else "probes only")
        server.run()  # returns on SIGINT/SIGTERM (uvicorn's handlers, then ours put back, re-raise the signal)
    finally:
        stop.server, stop.starting = None, False  # a signal during the stop changes nothing
        if handler is not None:
            # slack-sdk's built-in client joins its session thread with no timeout; caught mid-reconnect that can
            # hang: the stop still stops the worker and marks a run interrupted after 10 s (its threads are daemons).
            # Its message processor waits up to 1 s on its queue and close() joins it: marking the client closed
            # and waking the queue first (the processor skips None) saves that second at every stop.
            handler.client.closed = True
            handler.client.message_queue.put(None)
            closer = threading.Thread(target=handler.close, name="evalbot-socket-close", daemon=True)
            closer.start()
            closer.join(10)
            if closer.is_alive():
                log.warning("the Socket Mode connection did not close within 10 s; stopping anyway")
        if worker_started:
            worker.stop()
        if nightly is not None:
            stop_background(nightly)

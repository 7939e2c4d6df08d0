"""State in the database: the flag inbox, flags, the case index, rejections, eval runs and results.

The corpus files are the truth for cases; `case_index` is a rebuildable index of them (`reindex`). Other
tables hold what files do not: the inbox of flags not yet captured (and event ids already
handled), who flagged what, rejections, runs and job claims.
Works on SQLite (default) and PostgreSQL; the schema is created by alembic migrations (`migrate`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint, event, text
from sqlalchemy.engine import Engine
from sqlmodel import AutoString, Field, Session, SQLModel, create_engine

from bot.core.clock import utcnow
from bot.core.kinds import CaseStatus, FlagTrigger, InboxStatus, Outcome, RunMode, RunStatus, RunTrigger


class PendingFlag(SQLModel, table=True):
    """The durable inbox: one flag written before Slack's envelope is acked, until it is captured and answered.

    `key` is the Slack event id (a redelivery is the same row), `view:<id>` for the shortcut's note form, or
    `catchup:<channel>:<ts>:<user>` for a flag found by catch-up. A capture worker takes a row under a lease
    (`leased_by`, `lease_until`); `done` after the commit and the thread reply, `failed` (with `error`) after
    its retries. Done rows are kept for Slack's retry window, so redeliveries are still recognised.
    """

    __tablename__ = "pending_flags"
    __table_args__ = (Index("ix_pending_flags_channel_ts", "channel", "ts"),)
    key: str = Field(primary_key=True, max_length=200)
    channel: str = Field(max_length=32)
    ts: str = Field(max_length=32)
    thread_ts: str | None = Field(default=None, max_length=32)
    user_id: str = Field(max_length=32)
    trigger: FlagTrigger = Field(sa_type=AutoString(length=16))
    note: str | None = Field(default=None, sa_column=Column(Text))
    status: InboxStatus = Field(default="pending", index=True, sa_type=AutoString(length=16))
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow)
    leased_by: str | None = Field(default=None, max_length=128)
    lease_until: datetime | None = None
    case_id: str | None = Field(default=None, max_length=32)
    error: str | None = Field(default=None, sa_column=Column(Text))
    received_at: datetime = Field(default_factory=utcnow, index=True)
    updated_at: datetime = Field(default_factory=utcnow)


class CatchupCheckpoint(SQLModel, table=True):
    """Up to where a channel's history has been read for flags made while the bot was not connected."""

    __tablename__ = "catchup_checkpoints"
    channel: str = Field(primary_key=True, max_length=32)
    ts: str = Field(max_length=32)
    updated_at: datetime = Field(default_factory=utcnow)


class Flag(SQLModel, table=True):
    """One person flagging one message (one row per case and flagger)."""

    __tablename__ = "flags"
    __table_args__ = (UniqueConstraint("case_id", "user_id", name="uq_flags_case_user"),)
    id: int | None = Field(default=None, primary_key=True)
    case_id: str = Field(index=True, max_length=32)
    channel: str | None = Field(default=None, max_length=32)
    ts: str | None = Field(default=None, max_length=32)
    user_id: str = Field(max_length=32)
    trigger: FlagTrigger = Field(sa_type=AutoString(length=16))
    note: str | None = Field(default=None, sa_column=Column(Text))
    flagged_at: datetime = Field(default_factory=utcnow)


class CaseIndex(SQLModel, table=True):
    """The index of case files (rebuilt from the files by `reindex`)."""

    __tablename__ = "case_index"
    id: str = Field(primary_key=True, max_length=32)
    status: CaseStatus = Field(index=True, sa_type=AutoString(length=16))
    title: str = Field(sa_column=Column(Text, nullable=False))
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    source_kind: str = Field(max_length=16)
    channel: str | None = Field(default=None, max_length=32)
    ts: str | None = Field(default=None, max_length=32)
    permalink: str | None = Field(default=None, sa_column=Column(Text))
    flag_count: int = 0
    flagged_at: datetime
    promoted_by: str | None = Field(default=None, max_length=32)
    promoted_at: datetime | None = None
    turns: int = 0
    expectations: int = 0
    quarantined: bool = False  # flaky: run and reported, never failing the gate
    judged: bool = False  # has a rubric expectation (a run needs the judge)


class IndexState(SQLModel, table=True):
    """Where the case index stands: the corpus commit it was built from and the files it saw changed on top.

    `refresh` parses only what changed since `commit` (`git diff`), plus the paths that were uncommitted last time
    (`dirty`, since they may have been reverted), so an index that is current costs a `git status`, not a parse.
    """

    __tablename__ = "index_state"
    root: str = Field(primary_key=True, max_length=512)  # the corpus folder this row describes
    commit: str | None = Field(default=None, max_length=64)
    dirty: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    problems: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    refreshed_at: datetime = Field(default_factory=utcnow)


class CaptureReply(SQLModel, table=True):
    """The bot's reply in the flagged thread, updated when the case is promoted or rejected."""

    __tablename__ = "capture_replies"
    case_id: str = Field(primary_key=True, max_length=32)
    channel: str = Field(max_length=32)
    message_ts: str = Field(max_length=32)


class Rejection(SQLModel, table=True):
    """A rejected candidate: its file is gone, this row answers a re-flag of the same message."""

    __tablename__ = "rejections"
    case_id: str = Field(primary_key=True, max_length=32)
    title: str = Field(sa_column=Column(Text, nullable=False))
    channel: str | None = Field(default=None, max_length=32)
    ts: str | None = Field(default=None, max_length=32)
    rejected_by: str = Field(max_length=32)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    rejected_at: datetime = Field(default_factory=utcnow)


class EvalRun(SQLModel, table=True):
    """One evaluation of the corpus."""

    __tablename__ = "eval_runs"
    id: int | None = Field(default=None, primary_key=True)
    status: RunStatus = Field(default="running", index=True, sa_type=AutoString(length=16))
    trigger: RunTrigger = Field(default="cli", sa_type=AutoString(length=16))
    mode: RunMode = Field(default="sync", sa_type=AutoString(length=16))
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    corpus_commit: str | None = Field(default=None, max_length=64)
    config_fingerprint: str | None = Field(default=None, max_length=64)
    target: str | None = Field(default=None, sa_column=Column(Text))
    trials: int = 1
    cases_total: int = 0
    passed: int = 0
    failed: int = 0
    errored: int = 0
    flaky: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0
    cost_saved_usd: float = 0.0
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    baseline_run_id: int | None = None
    batch_ids: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    error: str | None = Field(default=None, sa_column=Column(Text))
    digest_ts: str | None = Field(default=None, max_length=32)

    @property
    def pass_rate(self) -> float | None:
        graded = self.cases_total
        return self.passed / graded if graded else None


class CaseResult(SQLModel, table=True):
    """One case's outcome in one run, over all its trials."""

    __tablename__ = "case_results"
    __table_args__ = (UniqueConstraint("run_id", "case_id", name="uq_case_results_run_case"),)
    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="eval_runs.id", index=True)
    case_id: str = Field(max_length=32)
    title: str = Field(sa_column=Column(Text, nullable=False))
    status: Outcome = Field(sa_type=AutoString(length=16))
    pass_rate: float = 0.0
    flaky: bool = False
    trials: int = 1
    failure: str | None = Field(default=None, sa_column=Column(Text))
    permalink: str | None = Field(default=None, sa_column=Column(Text))


class TrialResult(SQLModel, table=True):
    """One sample of one case: the reply, each grader's verdict, latency and tokens."""

    __tablename__ = "trial_results"
    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="eval_runs.id", index=True)
    case_id: str = Field(max_length=32)
    trial: int = 0
    status: Outcome = Field(sa_type=AutoString(length=16))
    output: str | None = Field(default=None, sa_column=Column(Text))
    verdicts: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    latency_ms: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    error: str | None = Field(default=None, sa_column=Column(Text))


class JobClaim(SQLModel, table=True):
    """A scheduled job slot claimed by one process, so replicas run it once."""

    __tablename__ = "job_claims"
    job: str = Field(primary_key=True, max_length=64)
    slot: str = Field(primary_key=True, max_length=64)
    claimed_by: str = Field(max_length=128)
    claimed_at: datetime = Field(default_factory=utcnow)


# ---------------------------------------------------------------- follow-ups to flaggers (issue 16)


class FollowUpRow(SQLModel, table=True):
    """A follow-up owed in a flag thread (the outbox): recorded before it is sent, sent once.

    `key` is unique (one per case and event: `promoted:<case>`, `rejected:<case>`, `run:<run>:<case>`), so a
    second replica recording the same event inserts nothing. `payload` is the domain FollowUp as JSON; the sender
    renders it at the edge. status: pending | sent | skipped (nobody to tell) | failed (Slack refused for good).
    """

    __tablename__ = "followups"
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=80, unique=True)
    case_id: str = Field(index=True, max_length=32)
    kind: str = Field(max_length=16)
    run_id: int | None = None
    channel: str = Field(max_length=32)
    thread_ts: str = Field(max_length=32)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default="pending", index=True, max_length=16)
    attempts: int = 0
    not_before: datetime = Field(default_factory=utcnow)
    claimed_by: str | None = Field(default=None, max_length=128)
    claimed_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None
    sent_ts: str | None = Field(default=None, max_length=32)
    error: str | None = Field(default=None, sa_column=Column(Text))


class FollowUpMute(SQLModel, table=True):
    """A person who asked not to be mentioned in follow-ups (`/eval mute`; `/eval unmute` deletes the row)."""

    __tablename__ = "followup_mutes"
    user_id: str = Field(primary_key=True, max_length=32)
    muted_at: datetime = Field(default_factory=utcnow)


class JudgeReview(SQLModel, table=True):
    """A person's review of one LLM-judge verdict: agreed, or corrected (issue 17: the judge checked against people)."""

    __tablename__ = "judge_reviews"
    __table_args__ = (UniqueConstraint("run_id", "case_id", "trial", "rubric_index", name="uq_judge_reviews_verdict"),)
    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="eval_runs.id", index=True)
    case_id: str = Field(max_length=32, index=True)
    trial: int = 0
    rubric_index: int = 0  # which of the case's rubric expectations, in file order
    rubric: str = Field(sa_column=Column(Text, nullable=False))
    reply: str | None = Field(default=None, sa_column=Column(Text))
    judge_passed: bool
    human_passed: bool
    note: str | None = Field(default=None, sa_column=Column(Text))
    reviewer: str = Field(max_length=64)
    reviewed_at: datetime = Field(default_factory=utcnow)


_ENGINES: dict[tuple[str, bool], Engine] = {}
_ENGINES_GUARD = threading.Lock()
# Bolt's Socket Mode handler answers up to 10 envelopes at once; each ack's inbox write needs a connection.
ACK_CONNECTIONS = 10


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers work while a writer commits; busy_timeout makes concurrent writers wait, not fail.
    # synchronous=NORMAL is WAL's recommended setting: no corruption on a crash, commits without an fsync each.
    # Setting journal_mode waits for the write lock even when it is WAL already: a new connection opened during
    # a burst of writes would wait behind them (the flag inbox's ack path opens some), so it is asked first.
    if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
        cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_ack_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # The ack's insert polls for the writer lock itself (SQLite's busy handler sleeps 1, 2, 5 … 100 ms between
    # tries: bot.capture.inbox), and its commits leave the WAL checkpoint (and its fsyncs) to the other writers.
    cursor.execute("PRAGMA busy_timeout=0")
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


def make_engine(url: str, *, ack: bool = False) -> Engine:
    """A new engine for `url`, with SQLite set up for several threads and processes.

    `ack`: the engine of the writes made before Slack is acked (`bot.capture.inbox.enqueue`): every statement
    commits as it completes (`bot.store.writes`), a pool of ACK_CONNECTIONS kept open (`warm` them at start),
    and on PostgreSQL no ping before each use (one round trip, not two: a connection found dead is retried)."""
    pool: dict[str, Any] = {"isolation_level": "AUTOCOMMIT", "pool_size": ACK_CONNECTIONS, "max_overflow": 20,
                            "execution_options": {"preserve_rowcount": True}} if ack else {}
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **pool)
        event.listen(engine, "connect", _sqlite_pragmas)
        if ack:
            event.listen(engine, "connect", _sqlite_ack_pragmas)
        return engine
    if ack:
        return create_engine(url, pool_pre_ping=False, **pool)
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def get_engine(url: str, *, ack: bool = False) -> Engine:
    """The process-wide engine for `url` (`ack`: the one for the writes before Slack's ack, see make_engine)."""
    with _ENGINES_GUARD:
        if (url, ack) not in _ENGINES:
            _ENGINES[(url, ack)] = make_engine(url, ack=ack)
        return _ENGINES[(url, ack)]


def ack_engine(engine: Engine) -> Engine:
    """The ack-path engine for the database of `engine`."""
    return get_engine(engine.url.render_as_string(hide_password=False), ack=True)


def dispose_engines() -> None:
    """Close every cached engine (tests, forks)."""
    with _ENGINES_GUARD:
        for engine in _ENGINES.values():
            engine.dispose()
        _ENGINES.clear()


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


@contextmanager
def advisory_lock(engine: Engine, key: int) -> Iterator[None]:
    """Hold a PostgreSQL session advisory lock (shared by every process on that database); no-op elsewhere."""
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
        connection.commit()
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            connection.commit()


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest alembic revision (safe to call from several processes at once)."""
    from bot.store.migrations.runner import upgrade

    upgrade(engine)

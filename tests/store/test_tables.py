"""The state database: migrations, tables and the case index, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from bot.corpus import index as caseindex
from bot.corpus.files import Corpus
from bot.corpus.refresh import refresh
from bot.store.migrations.runner import current, head
from bot.store.tables import EvalRun, Flag, JobClaim, PendingFlag, TrialResult, get_engine, migrate, session_scope


def test_migrations_create_every_table_and_are_idempotent(db_url):
    engine = get_engine(db_url)
    migrate(engine)
    migrate(engine)
    assert current(engine) == head()
    tables = set(inspect(engine).get_table_names())
    assert {"pending_flags", "catchup_checkpoints", "flags", "case_index", "rejections", "eval_runs", "case_results",
            "trial_results", "job_claims", "capture_replies", "alembic_version"} <= tables


def test_inbox_keys_are_unique_and_processed_events_are_gone(db_url):
    engine = get_engine(db_url)
    migrate(engine)
    assert "processed_events" not in inspect(engine).get_table_names()
    with session_scope(engine) as session:
        session.add(PendingFlag(key="event:Ev1", channel="C1", ts="1.000001", user_id="U1", trigger="reaction"))
    with pytest.raises(IntegrityError):
        with session_scope(engine) as session:
            session.add(PendingFlag(key="event:Ev1", channel="C1", ts="1.000001", user_id="U2", trigger="reaction"))


def test_one_flag_per_case_and_user(db_url):
    engine = get_engine(db_url)
    migrate(engine)
    with session_scope(engine) as session:
        session.add(Flag(case_id="abcd1234", user_id="U1", trigger="reaction"))
        session.add(Flag(case_id="abcd1234", user_id="U2", trigger="reaction"))
    with pytest.raises(IntegrityError):
        with session_scope(engine) as session:
            session.add(Flag(case_id="abcd1234", user_id="U1", trigger="mention"))


def test_job_claim_is_unique_per_slot(db_url):
    engine = get_engine(db_url)
    migrate(engine)
    with session_scope(engine) as session:
        session.add(JobClaim(job="nightly", slot="2026-11-21T02:00", claimed_by="a"))
    with pytest.raises(IntegrityError):
        with session_scope(engine) as session:
            session.add(JobClaim(job="nightly", slot="2026-11-21T02:00", claimed_by="b"))


def test_runs_and_json_columns_round_trip(db_url):
    engine = get_engine(db_url)
    migrate(engine)
    with session_scope(engine) as session:
        run = EvalRun(trials=3, batch_ids=["msgbatch_1"])
        session.add(run)
        session.flush()
        session.add(TrialResult(run_id=run.id, case_id="abcd1234", status="fail",
                                verdicts=[{"kind": "contains", "passed": False, "message": "expected x"}]))
        run_id = run.id
    with session_scope(engine) as session:
        trial = session.exec(select(TrialResult).where(TrialResult.run_id == run_id)).one()
        assert trial.verdicts[0]["message"] == "expected x"
        assert session.get(EvalRun, run_id).batch_ids == ["msgbatch_1"]


def test_reindex_rebuilds_the_index_from_files(db_url, corpus_dir):
    engine = get_engine(db_url)
    migrate(engine)
    corpus = Corpus(corpus_dir)
    with session_scope(engine) as session:
        done = refresh(session, corpus, full=True)
    assert (done.indexed, done.problems) == (7, [])
    (corpus_dir / "cases" / "2tj51dm1.yaml").unlink()
    with session_scope(engine) as session:
        refresh(session, corpus, full=True)
        rows, total = caseindex.listing(session, status="promoted", limit=3)
    assert total == 5
    assert len(rows) == 3
    assert [r.flagged_at for r in rows] == sorted((r.flagged_at for r in rows), reverse=True)
    assert rows[0].id == "tne841s8" and rows[0].flag_count == 2

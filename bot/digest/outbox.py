"""The follow-up outbox in the database: recorded before a message is sent, sent once, across replicas and restarts.

Recording: `record(session, followups)` inserts one `followups` row per event key with an INSERT that does nothing
on conflict, so two replicas (or a retried handler) recording the same event leave one row. Triage records its
events in the transaction of the decision (`record_promotion`, `record_rejection`); a run's events are recorded by
`record_owed_runs`, which claims each run once (JobClaim `followups`/<run id>) in the same transaction.

Sending (bot/slack/flows/followups.py): one process at a time holds the sender claim (`SENDER_JOB`), takes `due`
rows, marks each claimed before posting and sent after; a 429 puts the row back with `not_before` after its
Retry-After, a refusal marks it failed. Mutes: `/eval mute` adds a `followup_mutes` row; muted people are
not mentioned (a follow-up left with nobody to tell is skipped).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, func, or_, select

from bot.core.clock import utcnow
from bot.core.errors import EvalbotError
from bot.corpus.files import Corpus
from bot.corpus.schema import Case
from bot.digest.followups import CaseOutcome, FollowUp, as_graded, promoted_followup, rejected_followup, run_followups, thread_of
from bot.store.claims import claim
from bot.store.tables import CaseResult, EvalRun, Flag, FollowUpMute, FollowUpRow, JobClaim

log = logging.getLogger(__name__)

RUN_JOB = "followups"  # JobClaim job: a run whose follow-ups were recorded; slot = run id
SENDER_JOB, SENDER_SLOT = "followup-sender", "lock"
CLAIM_TTL = timedelta(minutes=5)  # a row or sender claim older than this belongs to a process that died
OWED_WINDOW = timedelta(days=7)  # older runs are left alone
MAX_CHANGES = 3


# ---------------------------------------------------------------- who flagged, who muted


def flaggers_of(session: Session, case_ids: Iterable[str], files: dict[str, Case] | None = None) -> dict[str, tuple[str, ...]]:
    """Case id -> its flaggers, first flagger first: the flags table, then the case file's `flagged_by`."""
    ids = list(dict.fromkeys(case_ids))
    found: dict[str, list[str]] = {case_id: [] for case_id in ids}
    if ids:
        rows = session.exec(select(Flag).where(col(Flag.case_id).in_(ids)).order_by(col(Flag.flagged_at), col(Flag.id)))
        for row in rows:
            found[row.case_id].append(row.user_id)
    for case_id, case in (files or {}).items():
        found.setdefault(case_id, []).extend(case.source.flagged_by)
    return {case_id: tuple(dict.fromkeys(users)) for case_id, users in found.items()}


def flag_threads(session: Session, case_ids: Iterable[str]) -> dict[str, tuple[str, str]]:
    """Case id -> (channel, ts) of its first flag with both: the thread of a case whose file is gone or elsewhere."""
    ids = list(dict.fromkeys(case_ids))
    found: dict[str, tuple[str, str]] = {}
    if ids:
        rows = session.exec(select(Flag).where(col(Flag.case_id).in_(ids)).order_by(col(Flag.flagged_at), col(Flag.id)))
        for row in rows:
            if row.channel and row.ts and row.case_id not in found:
                found[row.case_id] = (row.channel, row.ts)
    return found


def muted(session: Session) -> set[str]:
    """Everyone who muted follow-ups."""
    return set(session.exec(select(FollowUpMute.user_id)))


def mute(session: Session, *, user_id: str) -> bool:
    """Stop mentioning `user_id` in follow-ups; False when they had muted them already."""
    if session.get(FollowUpMute, user_id) is not None:
        return False
    session.add(FollowUpMute(user_id=user_id))
    return True


def unmute(session: Session, *, user_id: str) -> bool:
    """Mention `user_id` again; False when they had not muted follow-ups."""
    row = session.get(FollowUpMute, user_id)
    if row is None:
        return False
    session.delete(row)
    return True


# ---------------------------------------------------------------- recording


def record(session: Session, followups: Iterable[FollowUp]) -> int:
    """Add these follow-ups to the outbox (an event already there is left alone); how many were new."""
    added = 0
    for followup in followups:
        values = {"key": followup.key, "case_id": followup.case_id, "kind": followup.kind, "run_id": followup.run_id,
                  "channel": followup.channel, "thread_ts": followup.thread_ts, "payload": followup.to_json(),
                  "status": "pending", "attempts": 0, "not_before": utcnow(), "created_at": utcnow()}
        added += _insert_new(session, values)
    return added


def _insert_new(session: Session, values: dict[str, Any]) -> int:
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        from sqlalchemy.dialects import sqlite

        statement: Any = sqlite.insert(FollowUpRow).values(**values).on_conflict_do_nothing(index_elements=["key"])
    elif dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        statement = postgresql.insert(FollowUpRow).values(**values).on_conflict_do_nothing(index_elements=["key"])
    else:  # pragma: no cover - evalbot supports SQLite and PostgreSQL
        raise EvalbotError(f"follow-ups need SQLite or PostgreSQL, not {dialect}")
    # rowcount is not reliable after ON CONFLICT DO NOTHING (-1 on psycopg): RETURNING says whether a row went in.
    return 1 if session.execute(statement.returning(col(FollowUpRow.id))).first() is not None else 0


def record_promotion(session: Session, case: Case) -> int:
    """Record 'your flag is now a test' for a promoted case (in the promotion's transaction)."""
    source = case.source
    followup = promoted_followup(
        case_id=case.id, title=case.title, thread=thread_of(source.channel, source.ts, source.permalink),
        flaggers=flaggers_of(session, [case.id], {case.id: case})[case.id], promoted_by=case.promoted_by,
        expect=case.expect)
    return record(session, [followup] if followup else [])


def record_rejection(session: Session, case: Case, *, rejected_by: str, reason: str) -> int:
    """Record 'your flag was not added' for a rejected candidate (in the rejection's transaction)."""
    source = case.source
    followup = rejected_followup(
        case_id=case.id, title=case.title, thread=thread_of(source.channel, source.ts, source.permalink),
        flaggers=flaggers_of(session, [case.id], {case.id: case})[case.id], rejected_by=rejected_by, reason=reason)
    return record(session, [followup] if followup else [])


def previous_results(session: Session, *, run_id: int, case_ids: Sequence[str]) -> dict[str, tuple[int, str, str | None]]:
    """Case id -> (run id, status, corpus commit) of its last graded (pass/fail) result in a finished run before `run_id`."""
    if not case_ids:
        return {}
    latest = (
        select(CaseResult.case_id, func.max(CaseResult.run_id).label("run_id"))
        .join(EvalRun, col(EvalRun.id) == col(CaseResult.run_id))
        .where(col(CaseResult.case_id).in_(case_ids), col(CaseResult.run_id) < run_id,
               col(CaseResult.status).in_(("pass", "fail")), EvalRun.status == "finished")
        .group_by(col(CaseResult.case_id)).subquery()
    )
    rows = session.exec(
        select(CaseResult.case_id, CaseResult.run_id, CaseResult.status, EvalRun.corpus_commit)
        .join(latest, (col(CaseResult.case_id) == latest.c.case_id) & (col(CaseResult.run_id) == latest.c.run_id))
        .join(EvalRun, col(EvalRun.id) == col(CaseResult.run_id))
    )
    return {case_id: (prev_run, status, commit) for case_id, prev_run, status, commit in rows}


def changes_between(corpus: Corpus, old: str | None, new: str | None, case_id: str) -> tuple[str, ...]:
    """What changed in the corpus between two commits that can change a result: 'prompts/system.md at abc1234'."""
    if not old or not new or old == new:
        return ()
    try:
        repo = corpus.repo
        folder = corpus.root.resolve().relative_to(repo.top.resolve())
        prefix = "" if str(folder) == "." else f"{folder}/"
        paths = [f"{prefix}prompts", f"{prefix}evalbot.toml", f"{prefix}cases/{case_id}.yaml"]
        names = [n for n in repo.run("diff", "--name-only", old, new, "--", *paths).splitlines() if n.strip()]
        found = []
        for name in names[:MAX_CHANGES]:
            commit = repo.run("log", "-1", "--format=%h", f"{old}..{new}", "--", name).strip()
            found.append(f"{name.removeprefix(prefix)} at {commit}" if commit else name.removeprefix(prefix))
        return tuple(found)
    except (EvalbotError, ValueError, OSError) as exc:
        log.info("cannot tell what changed between %s and %s: %s", old, new, exc)
        return ()


def run_outcomes(session: Session, corpus: Corpus, run_id: int) -> list[CaseOutcome]:
    """Each case of run `run_id` next to its previous graded result, its flag thread and its flaggers."""
    run = session.get(EvalRun, run_id)
    results = list(session.exec(select(CaseResult).where(CaseResult.run_id == run_id).order_by(col(CaseResult.case_id))))
    ids = [r.case_id for r in results]
    files = {case_id: case for case_id in ids if (case := _case_file(corpus, case_id)) is not None}
    who = flaggers_of(session, ids, files)
    before = previous_results(session, run_id=run_id, case_ids=ids)
    flagged_in = flag_threads(session, [case_id for case_id in ids if case_id not in files])
    outcomes = []
    for result in results:
        case = files.get(result.case_id)
        source = case.source if case else None
        previous = before.get(result.case_id)
        changes: tuple[str, ...] = ()
        if previous is not None and run is not None and previous[1] != result.status:
            changes = changes_between(corpus, previous[2], run.corpus_commit, result.case_id)
        outcomes.append(CaseOutcome(
            case_id=result.case_id, title=result.title, status=result.status, failure=result.failure,
            previous=(previous[0], as_graded(previous[1])) if previous else None,
            thread=(thread_of(source.channel, source.ts, source.permalink) if source.kind == "slack" else None)
            if source else flagged_in.get(result.case_id),
            flaggers=who.get(result.case_id, ()), changes=changes, flaky=result.flaky))
    return outcomes


def _case_file(corpus: Corpus, case_id: str) -> Case | None:
    try:
        return corpus.find(case_id)
    except EvalbotError:
        return None


def owed_runs(session: Session, *, now: datetime | None = None) -> list[int]:
    """Finished runs of the last week whose follow-ups are not recorded yet, oldest first.

    Owed by the runs the channel hears of: the nightly job's, `/eval run`'s, and any run whose digest was posted.
    """
    since = (now or utcnow()) - OWED_WINDOW
    done = select(JobClaim.slot).where(JobClaim.job == RUN_JOB)
    recorded = {int(slot) for slot in session.exec(done) if slot.isdigit()}
    query = select(EvalRun.id).where(
        EvalRun.status == "finished", EvalRun.started_at >= since,
        or_(col(EvalRun.trigger).in_(("nightly", "slack")), col(EvalRun.digest_ts).is_not(None)),
    ).order_by(col(EvalRun.id))
    return [run_id for run_id in session.exec(query) if run_id is not None and run_id not in recorded]


def skip_backlog(session: Session, owed: list[int], *, holder: str) -> list[int]:
    """On the first look ever (no run's follow-ups recorded yet), mark every owed run but the newest as recorded
    without messages, so turning follow-ups on does not replay a week of runs; returns the runs still owed."""
    if len(owed) < 2 or session.exec(select(JobClaim.slot).where(JobClaim.job == RUN_JOB).limit(1)).first() is not None:
        return owed
    for run_id in owed[:-1]:
        claim(session, job=RUN_JOB, slot=str(run_id), holder=holder)
    return owed[-1:]


def record_run(session: Session, corpus: Corpus, run_id: int, *, holder: str) -> int | None:
    """Record run `run_id`'s follow-ups once (whoever claims the run first); None when it was claimed already."""
    if not claim(session, job=RUN_JOB, slot=str(run_id), holder=holder):
        return None
    return record(session, run_followups(run_id, run_outcomes(session, corpus, run_id)))


# ---------------------------------------------------------------- sending


def due(session: Session, *, now: datetime, limit: int = 100) -> list[FollowUpRow]:
    """Pending follow-ups whose time has come and that no live process is sending, oldest first."""
    stale = now - CLAIM_TTL
    query = select(FollowUpRow).where(
        FollowUpRow.status == "pending", FollowUpRow.not_before <= now,
        or_(col(FollowUpRow.claimed_at).is_(None), col(FollowUpRow.claimed_at) < stale),
    ).order_by(col(FollowUpRow.id)).limit(limit)
    return list(session.exec(query))


def next_due(session: Session) -> datetime | None:
    """When the next pending follow-up is due (None when none is pending)."""
    return session.exec(select(func.min(FollowUpRow.not_before)).where(FollowUpRow.status == "pending")).first()


def pending_count(session: Session) -> int:
    """How many follow-ups wait to be sent."""
    return int(session.exec(select(func.count()).select_from(FollowUpRow).where(FollowUpRow.status == "pending")).one())


def claim_row(session: Session, row_id: int, *, holder: str, now: datetime) -> bool:
    """Mark a pending row as being sent by `holder` (False when another process has it)."""
    result = session.execute(
        update(FollowUpRow).where(col(FollowUpRow.id) == row_id, col(FollowUpRow.status) == "pending",
                                  or_(col(FollowUpRow.claimed_at).is_(None), col(FollowUpRow.claimed_at) < now - CLAIM_TTL))
        .values(claimed_by=holder[:128], claimed_at=now, attempts=col(FollowUpRow.attempts) + 1)
        .returning(col(FollowUpRow.id))
    )
    return result.first() is not None


def finish(session: Session, row_id: int, *, status: str, now: datetime, ts: str | None = None, error: str | None = None) -> None:
    """Mark a row sent (with the message ts), skipped or failed."""
    session.execute(update(FollowUpRow).where(col(FollowUpRow.id) == row_id)
                    .values(status=status, sent_at=now, sent_ts=ts, error=error, claimed_by=None, claimed_at=None))


def put_back(session: Session, row_id: int, *, not_before: datetime, error: str | None = None, refund: bool = False) -> None:
    """Release a row for a later attempt (a 429's Retry-After, a dropped connection); `refund`: not an attempt."""
    values: dict[str, Any] = {"not_before": not_before, "error": error, "claimed_by": None, "claimed_at": None}
    if refund:
        values["attempts"] = col(FollowUpRow.attempts) - 1
    session.execute(update(FollowUpRow).where(col(FollowUpRow.id) == row_id).values(**values))


def claim_sender(session: Session, *, holder: str, now: datetime) -> bool:
    """Become the one process sending follow-ups (a dead holder's claim is taken over), or refresh the claim."""
    refreshed = session.execute(
        update(JobClaim).where(col(JobClaim.job) == SENDER_JOB, col(JobClaim.slot) == SENDER_SLOT,
                               col(JobClaim.claimed_by) == holder[:128]).values(claimed_at=now).returning(col(JobClaim.slot))
    ).first()
    if refreshed is not None:
        return True
    return claim(session, job=SENDER_JOB, slot=SENDER_SLOT, holder=holder, take_over_before=now - CLAIM_TTL)


def statuses(session: Session) -> dict[str, int]:
    """Status -> how many follow-ups (for tests and `doctor`-like reports)."""
    rows = session.exec(select(FollowUpRow.status, func.count()).group_by(col(FollowUpRow.status)))
    return {status: int(count) for status, count in rows}

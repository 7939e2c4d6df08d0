"""What App Home shows one person, as plain data: their flags, the last run and, to maintainers, the triage queue.

Slack-free. `load_home(session, corpus, user_id=..., maintainer=..., flags_page=..., queue_page=...)` returns a
`Home`: the person's flags newest first with each one's state (candidate, promoted, rejected) and last result;
the last finished run's pass rate next to the one before (the digest, with its trend chart, is linked at the edge);
for maintainers, the candidates oldest first, each with its near-duplicates grouped under it (a candidate shown as
another's near-duplicate is not listed again). Both lists are paged (`PAGE`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal, cast

from sqlmodel import Session, col, func, select

from bot.core.kinds import Outcome
from bot.corpus.files import Corpus
from bot.corpus.schema import Case
from bot.corpus.similarity import NearDuplicate, near_duplicates
from bot.store.tables import CaseIndex, CaseResult, EvalRun, Flag, Rejection

FlagState = Literal["candidate", "promoted", "rejected", "removed"]  # what became of a flagged case

FLAGS_PAGE = 10
QUEUE_PAGE = 8


@dataclass(frozen=True)
class MyFlag:
    """One case the person flagged."""

    case_id: str
    title: str
    state: FlagState
    flagged_at: datetime
    permalink: str | None
    last_status: Outcome | None  # in its last run, None before it ran
    last_run_id: int | None
    reason: str | None = None  # rejected: why


@dataclass(frozen=True)
class QueueEntry:
    """A candidate awaiting triage, with its near-duplicates."""

    case_id: str
    title: str
    flagged_at: datetime
    flaggers: tuple[str, ...]
    permalink: str | None
    note: str | None
    duplicates: tuple[NearDuplicate, ...]


@dataclass(frozen=True)
class LastRun:
    """The last finished run, and the pass rate of the one before it."""

    run_id: int
    when: datetime
    passed: int
    cases_total: int
    pass_rate: float | None
    previous_pass_rate: float | None
    digest_ts: str | None


@dataclass(frozen=True)
class Page:
    """Which page of a list is shown, of how many."""

    number: int
    pages: int
    total: int


@dataclass(frozen=True)
class Home:
    """Everything App Home shows one person."""

    user_id: str
    maintainer: bool
    flags: tuple[MyFlag, ...]
    flags_page: Page
    last_run: LastRun | None
    queue: tuple[QueueEntry, ...]  # empty for non-maintainers
    queue_page: Page


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _page(total: int, size: int, wanted: int) -> Page:
    pages = max(1, -(-total // size))
    return Page(number=min(max(1, wanted), pages), pages=pages, total=total)


def _last_results(session: Session, case_ids: list[str]) -> dict[str, tuple[int, Outcome]]:
    if not case_ids:
        return {}
    latest = (select(CaseResult.case_id, func.max(CaseResult.run_id).label("run_id"))
              .where(col(CaseResult.case_id).in_(case_ids)).group_by(col(CaseResult.case_id)).subquery())
    rows = session.exec(select(CaseResult.case_id, CaseResult.run_id, CaseResult.status)
                        .join(latest, (col(CaseResult.case_id) == latest.c.case_id) & (col(CaseResult.run_id) == latest.c.run_id)))
    return {case_id: (run_id, cast(Outcome, status)) for case_id, run_id, status in rows}  # a CaseResult.status


def my_flags(session: Session, cases: list[Case], *, user_id: str) -> list[MyFlag]:
    """Every case `user_id` flagged (the flags table and the case files), newest flag first."""
    when: dict[str, datetime] = {}
    for flag in session.exec(select(Flag).where(Flag.user_id == user_id)):
        when[flag.case_id] = min(_aware(flag.flagged_at), when.get(flag.case_id, _aware(flag.flagged_at)))
    files = {case.id: case for case in cases}
    for case in cases:
        if user_id in case.source.flagged_by:
            when.setdefault(case.id, _aware(case.source.flagged_at))
    ids = list(when)
    rejected = {r.case_id: r for r in session.exec(select(Rejection).where(col(Rejection.case_id).in_(ids or [""])))}
    indexed = {r.id: r for r in session.exec(select(CaseIndex).where(col(CaseIndex.id).in_(ids or [""])))}
    results = _last_results(session, ids)
    found = []
    for case_id in ids:
        file, rejection, row = files.get(case_id), rejected.get(case_id), indexed.get(case_id)
        state = file.status if file else "rejected" if rejection else row.status if row else "removed"
        title = file.title if file else rejection.title if rejection else row.title if row else case_id
        permalink = file.source.permalink if file else row.permalink if row else None
        last = results.get(case_id)
        found.append(MyFlag(case_id, title, state, when[case_id], permalink, last[1] if last else None,
                            last[0] if last else None, reason=rejection.reason if rejection and not file else None))
    return sorted(found, key=lambda f: (f.flagged_at, f.case_id), reverse=True)


def last_run(session: Session) -> LastRun | None:
    """The last finished run and the pass rate of the finished run before it."""
    runs = list(session.exec(select(EvalRun).where(EvalRun.status == "finished").order_by(col(EvalRun.id).desc()).limit(2)))
    if not runs:
        return None
    run = runs[0]
    assert run.id is not None
    previous = runs[1].pass_rate if len(runs) > 1 else None
    return LastRun(run.id, _aware(run.started_at), run.passed, run.cases_total, run.pass_rate, previous, run.digest_ts)


def triage_queue(session: Session, corpus: Corpus, cases: list[Case]) -> list[QueueEntry]:
    """Candidates oldest first; a candidate that is a near-duplicate of one listed before it is grouped there."""
    candidates = sorted((c for c in cases if c.status == "candidate"), key=lambda c: (_aware(c.source.flagged_at), c.id))
    flag_rows = session.exec(select(Flag).where(col(Flag.case_id).in_([c.id for c in candidates] or [""]))
                             .order_by(col(Flag.flagged_at), col(Flag.id)))
    flaggers: dict[str, list[str]] = {}
    for row in flag_rows:
        flaggers.setdefault(row.case_id, []).append(row.user_id)
    grouped: set[str] = set()
    queue = []
    for case in candidates:
        if case.id in grouped:
            continue
        dupes = tuple(near_duplicates(case, corpus))
        grouped.update(d.case_id for d in dupes if d.status == "candidate")
        who = tuple(dict.fromkeys([*flaggers.get(case.id, []), *case.source.flagged_by]))
        queue.append(QueueEntry(case.id, case.title, _aware(case.source.flagged_at), who, case.source.permalink,
                                case.source.note, dupes))
    return queue


def load_home(session: Session, corpus: Corpus, *, user_id: str, maintainer: bool, flags_page: int = 1,
              queue_page: int = 1) -> Home:
    """App Home's data for `user_id` (see the module docstring)."""
    cases, _problems = corpus.scan()
    flags = my_flags(session, cases, user_id=user_id)
    fpage = _page(len(flags), FLAGS_PAGE, flags_page)
    queue = triage_queue(session, corpus, cases) if maintainer else []
    qpage = _page(len(queue), QUEUE_PAGE, queue_page)
    start_f, start_q = (fpage.number - 1) * FLAGS_PAGE, (qpage.number - 1) * QUEUE_PAGE
    return Home(user_id=user_id, maintainer=maintainer, flags=tuple(flags[start_f:start_f + FLAGS_PAGE]),
                flags_page=fpage, last_run=last_run(session),
                queue=tuple(queue[start_q:start_q + QUEUE_PAGE]), queue_page=qpage)

"""The people in a digest: who flagged each regression and fix, and the week's contributors and corpus growth.

Slack-free. `weekly_growth(cases, until=...)` is pure over case files (the files are the truth): the cases promoted
in the seven days before `until`, who flagged them, which of those people contributed for the first time, and how
the corpus and its tags grew. `with_people(digest, flaggers, growth)` returns the digest with the flaggers on its
regressions and fixes and the weekly line. `load_people(session, corpus, digest)` reads what they need; the
weekly line appears on the first finished run of each ISO week (UTC).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone

from sqlmodel import Session

from bot.corpus.files import Corpus
from bot.corpus.schema import Case
from bot.digest.data import Digest, Item
from bot.digest.outbox import flaggers_of

WEEK = timedelta(days=7)


@dataclass(frozen=True)
class Growth:
    """The corpus's week: cases added (promoted), by whom, new tags and first-time contributors."""

    since: datetime
    until: datetime
    added: int
    total: int
    tags_total: int
    new_tags: tuple[str, ...]
    contributors: tuple[tuple[str, int], ...]  # (user id, cases added), most first
    first_timers: tuple[str, ...]


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def weekly_growth(cases: Sequence[Case], *, until: datetime, span: timedelta = WEEK) -> Growth:
    """How the promoted corpus grew in the `span` before `until` (cases promoted at or after `until` are left out)."""
    until = _utc(until)
    since = until - span
    promoted = [c for c in cases if c.status == "promoted"]
    when = {c.id: _utc(c.promoted_at or c.source.flagged_at) for c in promoted}
    before = [c for c in promoted if when[c.id] < since]
    added = [c for c in promoted if since <= when[c.id] < until]
    old_tags = {t for c in before for t in c.tags}
    now_tags = old_tags | {t for c in added for t in c.tags}
    counts = Counter(user for c in added for user in dict.fromkeys(c.source.flagged_by))
    earlier = {user for c in before for user in c.source.flagged_by}
    contributors = tuple(sorted(counts.items(), key=lambda item: (-item[1], item[0])))
    return Growth(since=since, until=until, added=len(added), total=len(before) + len(added), tags_total=len(now_tags),
                  new_tags=tuple(sorted(now_tags - old_tags)),
                  contributors=contributors, first_timers=tuple(u for u, _ in contributors if u not in earlier))


def first_of_week(when: datetime, previous: datetime | None) -> bool:
    """True when `when` is in a later ISO week (UTC) than `previous` (or there is no previous run)."""
    if previous is None:
        return True
    return _utc(when).astimezone(timezone.utc).isocalendar()[:2] != _utc(previous).astimezone(timezone.utc).isocalendar()[:2]


def with_people(digest: Digest, flaggers: Mapping[str, Sequence[str]], growth: Growth | None = None) -> Digest:
    """The digest with each regression's and fix's flaggers, and the weekly line when `growth` is given."""

    def named(items: tuple[Item, ...]) -> tuple[Item, ...]:
        return tuple(replace(item, flaggers=tuple(flaggers.get(item.case_id, ()))) for item in items)

    return replace(digest, regressions=named(digest.regressions), fixes=named(digest.fixes), growth=growth)


def load_people(session: Session, corpus: Corpus, digest: Digest) -> Digest:
    """`with_people` from the database and the case files: flaggers always, the weekly line on a week's first run."""
    ids = [item.case_id for item in (*digest.regressions, *digest.fixes)]
    cases, _problems = corpus.scan()
    files = {case.id: case for case in cases if case.id in set(ids)}
    growth = None
    earlier = [point.when for point in digest.trend if point.run_id < digest.run_id]
    if digest.failure is None and first_of_week(digest.when, earlier[-1] if earlier else None):
        growth = weekly_growth(cases, until=digest.when)
    return with_people(digest, flaggers_of(session, ids, files), growth)

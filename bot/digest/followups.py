"""Follow-ups to flaggers, as plain data: what to tell the people who flagged a case, and when.

Slack-free. An event in a case's life becomes one `FollowUp` for its flag thread:
- `promoted`: the candidate became a test (by whom, with which expectations, one line each);
- `rejected`: it will not be one (by whom, why);
- `first_result`: its first graded run: does the failure reproduce today?
- `fixed`: it failed at its previous graded run and passes now ("passes since run N", what changed);
- `regressed`: it passed at its previous graded run and fails again.

`run_followups(run_id, outcomes)` decides the run events: at most one per case per run, none for a case that could
not be graded (an error says nothing about the model), and no fixed/regressed for a flaky result. The edge renders a FollowUp (bot/slack/blocks/followups.py),
mentioning each flagger who has not muted follow-ups once. `key` names the event, so recording it twice is a no-op
(bot/digest/outbox.py keeps the outbox).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal, cast, get_args
from urllib.parse import parse_qs, urlparse

from pydantic import BaseModel

from bot.core.kinds import Outcome

Kind = Literal["promoted", "rejected", "first_result", "fixed", "regressed"]
KINDS: tuple[Kind, ...] = get_args(Kind)
Graded = Literal["pass", "fail"]
LINE_CHARS = 200


@dataclass(frozen=True)
class FollowUp:
    """One message owed to the flaggers of a case, in its flag thread."""

    kind: Kind
    case_id: str
    title: str
    channel: str
    thread_ts: str
    flaggers: tuple[str, ...]  # user ids, first flagger first
    run_id: int | None = None  # the run the event happened in (run events)
    actor: str | None = None  # who promoted or rejected it
    expectations: tuple[str, ...] = ()  # promoted: one line per expectation
    reason: str | None = None  # rejected: why
    reproduces: bool | None = None  # first_result: True when the case fails today (the failure is caught)
    detail: str | None = None  # the failing expectation or the judge's reason
    previous_run: int | None = None  # fixed/regressed: the previous graded run of the case
    changes: tuple[str, ...] = ()  # fixed/regressed: what changed since then ("prompts/system.md at abc1234")

    @property
    def key(self) -> str:
        """The event's identity: one follow-up per case for triage, one per case and run for results."""
        if self.kind in ("promoted", "rejected"):
            return f"{self.kind}:{self.case_id}"
        return f"run:{self.run_id}:{self.case_id}"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (what the outbox stores)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FollowUp:
        """The FollowUp `to_json` wrote."""
        values = dict(data)
        if values.get("kind") not in KINDS:
            raise ValueError(f"unknown follow-up kind {values.get('kind')!r}")
        for name in ("flaggers", "expectations", "changes"):
            values[name] = tuple(values.get(name) or ())
        return cls(**values)


@dataclass(frozen=True)
class CaseOutcome:
    """One case's result in a run, next to its previous graded result, and where its flaggers are."""

    case_id: str
    title: str
    status: Outcome
    failure: str | None
    previous: tuple[int, Graded] | None  # (run id, status) of its last graded run before this one
    thread: tuple[str, str] | None  # (channel, thread ts) of the flag thread; None: not from Slack
    flaggers: tuple[str, ...]
    changes: tuple[str, ...] = field(default=())
    flaky: bool = False  # its trials disagreed this run: a flip is not news until it is confirmed


def thread_of(channel: str | None, ts: str | None, permalink: str | None = None) -> tuple[str, str] | None:
    """The flag thread of a case: (channel, the thread's parent ts), or None for a case not captured from Slack.

    A flagged reply's permalink carries its parent as `?thread_ts=`; otherwise the flagged message is the parent.
    """
    if not channel or not ts:
        return None
    if permalink:
        parent = parse_qs(urlparse(permalink).query).get("thread_ts")
        if parent and parent[0]:
            return channel, parent[0]
    return channel, ts


def clip(text: str, limit: int = LINE_CHARS) -> str:
    """`text` on one line, at most `limit` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def expectation_line(expectation: BaseModel | dict[str, Any]) -> str:
    """'rubric: States the 30-day window' / 'not contains: 90 days' — one line per expectation."""
    data = expectation if isinstance(expectation, dict) else expectation.model_dump(exclude_none=True)
    parts = [f"{name.replace('_', ' ')}: {value if isinstance(value, str) else repr(value)}" for name, value in data.items()]
    return clip("; ".join(parts) or "(empty)")


def first_problem(failure: str | None) -> str | None:
    """The first line of a failure text (one problem per line)."""
    lines = [line.strip() for line in (failure or "").splitlines() if line.strip()]
    return clip(lines[0]) if lines else None


def _unique(users: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(u for u in users if u))


def promoted_followup(*, case_id: str, title: str, thread: tuple[str, str] | None, flaggers: Sequence[str],
                      promoted_by: str | None, expect: Sequence[BaseModel | dict[str, Any]]) -> FollowUp | None:
    """'your flag is now a test': None when the case has no flag thread or nobody flagged it."""
    if thread is None or not flaggers:
        return None
    return FollowUp("promoted", case_id, title, thread[0], thread[1], _unique(flaggers), actor=promoted_by,
                    expectations=tuple(expectation_line(e) for e in expect))


def rejected_followup(*, case_id: str, title: str, thread: tuple[str, str] | None, flaggers: Sequence[str],
                      rejected_by: str, reason: str) -> FollowUp | None:
    """'your flag was not added, because…': None without a flag thread or flaggers."""
    if thread is None or not flaggers:
        return None
    return FollowUp("rejected", case_id, title, thread[0], thread[1], _unique(flaggers), actor=rejected_by,
                    reason=clip(reason, 1000))


def run_followup(run_id: int, outcome: CaseOutcome) -> FollowUp | None:
    """The follow-up a run owes one case's flaggers, or None (nothing new, not graded, or nobody to tell)."""
    if outcome.thread is None or not outcome.flaggers or outcome.status not in ("pass", "fail"):
        return None
    channel, thread_ts = outcome.thread
    base = FollowUp("first_result", outcome.case_id, outcome.title, channel, thread_ts, _unique(outcome.flaggers),
                    run_id=run_id)
    failing = outcome.status == "fail"
    if outcome.previous is None:
        return replace(base, reproduces=failing, detail=first_problem(outcome.failure) if failing else None)
    previous_run, previous_status = outcome.previous
    if outcome.flaky:
        return None
    if previous_status == "fail" and not failing:
        return replace(base, kind="fixed", previous_run=previous_run, changes=outcome.changes)
    if previous_status == "pass" and failing:
        return replace(base, kind="regressed", previous_run=previous_run, detail=first_problem(outcome.failure),
                       changes=outcome.changes)
    return None


def run_followups(run_id: int, outcomes: Iterable[CaseOutcome]) -> list[FollowUp]:
    """Every follow-up run `run_id` owes, one per case at most, in case id order."""
    found: dict[str, FollowUp] = {}
    for outcome in sorted(outcomes, key=lambda o: o.case_id):
        followup = run_followup(run_id, outcome)
        if followup is not None and followup.case_id not in found:
            found[followup.case_id] = followup
    return list(found.values())


def to_mention(followup: FollowUp, muted: Iterable[str]) -> tuple[str, ...]:
    """The flaggers to @-mention: each once, first flagger first, without those who muted follow-ups."""
    quiet = set(muted)
    return tuple(u for u in _unique(followup.flaggers) if u not in quiet)


def as_graded(status: str) -> Graded:
    """A graded status (pass or fail) as its Literal."""
    if status not in ("pass", "fail"):
        raise ValueError(f"{status!r} is not a graded status")
    return cast(Graded, status)

"""Who last decided on a case, and when: what a maintainer is told when someone else got there first.

Read inside the corpus lock, so it is the decision that won: the case file for a promotion (`promoted_by`,
`promoted_at`), otherwise the newest commit touching the case's files (its author and date; evalbot writes
Slack users as `Name <U…@users.slack>`, so the user id comes back as a mention).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from bot.core.clock import precise_utcnow
from bot.core.people import person
from bot.corpus.files import STATUS_DIRS, Corpus
from bot.corpus.schema import Case

_VERBS = {"Promote": "promoted", "Reject": "rejected", "Edit": "edited", "Capture": "captured", "Flag": "flagged"}


@dataclass(frozen=True)
class Decision:
    """One past change of a case: what was done (a past participle), by whom (as shown) and when."""

    verb: str
    who: str | None
    when: datetime | None

    def told(self) -> str:
        """e.g. "promoted by @U0ANA 3 s ago" (`bot.core.people`: each edge shows the person its way)."""
        parts = [self.verb]
        if self.who:
            parts.append(f"by {self.who}")
        if self.when is not None:
            parts.append(ago(self.when))
        return " ".join(parts)


def who(user_id: str | None = None, *, name: str | None = None) -> str | None:
    """The person behind a decision, as the domain writes people (`bot.core.people.person`)."""
    return person(user_id, name=name)


def ago(moment: datetime, *, now: datetime | None = None) -> str:
    """A short age: "3 s ago", "4 min ago", "2 h ago", "5 d ago" (by evalbot's clock)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    seconds = max(0, int(((now or precise_utcnow()) - moment).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def promotion(case: Case) -> Decision:
    """The promotion recorded in a promoted case's file."""
    return Decision("promoted", who(case.promoted_by), case.promoted_at)


def last_decision(corpus: Corpus, case_id: str) -> Decision | None:
    """The newest change to the case's files, as a decision: one still waiting in the group commit, else the
    newest commit touching them; None when there is no record of it."""
    files = [corpus.path_for(case_id, status) for status in STATUS_DIRS]
    waiting = corpus.uncommitted(files)
    if waiting is not None:
        name, email = waiting.author.git_identity
        subject, when = waiting.message, waiting.at
    else:
        found = corpus.repo.last_change([corpus.repo.relative(path) for path in files], mentioning=case_id)
        if found is None:
            return None
        name, email, subject, when = found
    user_id = email.removesuffix("@users.slack") if email.endswith("@users.slack") else None
    verb = _VERBS.get(subject.split(" ", 1)[0], "changed")
    return Decision(verb, who(user_id, name=name), when)


def gone(corpus: Corpus, case_id: str) -> str:
    """Why a case that was there is not any more, e.g. "qa31qo8q was rejected by @U0ANA 3 s ago"."""
    decision = last_decision(corpus, case_id)
    if decision is None:
        return f"{case_id} is no longer in the corpus"
    if decision.verb != "rejected":  # its file went without a commit saying so (removed by hand)
        return f"{case_id} is no longer in the corpus (last {decision.told()})"
    return f"{case_id} was {decision.told()}"

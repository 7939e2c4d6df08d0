"""People reviewing the LLM judge: a verdict marked right or wrong, agreement per rubric, and corrected examples.

`review_verdict` stores a person's verdict on one rubric verdict of one trial (a second review of the same
verdict replaces the first). `agreement` is judge–human agreement over every reviewed verdict, per rubric and
overall. `few_shot` gives, per rubric, the latest verdicts people corrected, which `bot.evals.judge` shows the judge
as labelled examples on later runs (so a rubric the judge keeps misreading gets better, not just noted).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlmodel import Session, col, select

from bot.core.clock import utcnow
from bot.core.errors import RunNotFoundError
from bot.corpus.files import Corpus
from bot.corpus.schema import Rubric
from bot.evals import records
from bot.evals.judge import Example
from bot.store.tables import JudgeReview

FEW_SHOT = 3  # corrected examples per rubric given to the judge

__all__ = ["Agreement", "Example", "agreement", "correct_judge", "few_shot", "review_verdict"]


def review_verdict(session: Session, *, run_id: int, case_id: str, rubric: str, human_passed: bool, reviewer: str,
                   trial: int = 0, rubric_index: int = 0, note: str | None = None) -> JudgeReview:
    """Record that `reviewer` says the reply of that trial passes (`human_passed`) the case's `rubric_index`-th rubric."""
    rows = records.trial_results(session, run_id, case_id=case_id)
    row = next((r for r in rows if r.trial == trial), None)
    if row is None:
        raise RunNotFoundError(f"run {run_id} has no trial {trial + 1} of case {case_id} (see `evalbot eval report {run_id}`)")
    verdicts = [v for v in row.verdicts if v.get("kind") == "rubric" and not v.get("error")]
    if rubric_index >= len(verdicts):
        raise RunNotFoundError(f"trial {trial + 1} of {case_id} in run {run_id} has {len(verdicts)} judge verdict(s): "
                               f"there is no rubric {rubric_index + 1} to review")
    judge_passed = bool(verdicts[rubric_index].get("passed"))
    existing = session.exec(select(JudgeReview).where(
        JudgeReview.run_id == run_id, JudgeReview.case_id == case_id, JudgeReview.trial == trial,
        JudgeReview.rubric_index == rubric_index)).first()
    review = existing or JudgeReview(run_id=run_id, case_id=case_id, trial=trial, rubric_index=rubric_index,
                                     rubric=rubric.strip(), judge_passed=judge_passed, human_passed=human_passed,
                                     reviewer=reviewer)
    review.rubric, review.reply, review.judge_passed = rubric.strip(), row.output, judge_passed
    review.human_passed, review.reviewer, review.note, review.reviewed_at = human_passed, reviewer, note, utcnow()
    session.add(review)
    session.flush()
    return review


@dataclass(frozen=True)
class Agreement:
    """Judge–human agreement over the reviewed verdicts."""

    agreed: int
    reviewed: int
    per_rubric: dict[str, tuple[int, int]] = field(default_factory=dict)  # rubric -> (agreed, reviewed)

    @property
    def rate(self) -> float | None:
        return self.agreed / self.reviewed if self.reviewed else None

    def summary(self, *, limit: int = 3) -> str | None:
        """'judge agrees with people on 5 of 6 reviewed verdicts (83%); worst: "Is polite" 1/2', or None."""
        if not self.reviewed or self.rate is None:
            return None
        text = f"judge agrees with people on {self.agreed} of {self.reviewed} reviewed verdicts ({self.rate:.0%})"
        worst = sorted(((a / n, rubric, a, n) for rubric, (a, n) in self.per_rubric.items() if a < n))[:limit]
        if worst:
            text += "; least: " + ", ".join(f"{_short(r)!r} {a}/{n}" for _, r, a, n in worst)
        return text


def _short(rubric: str, limit: int = 60) -> str:
    flat = " ".join(rubric.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def agreement(session: Session) -> Agreement:
    """Agreement over every review, per rubric and overall."""
    per: dict[str, tuple[int, int]] = {}
    for review in session.exec(select(JudgeReview)):
        agreed, total = per.get(review.rubric, (0, 0))
        per[review.rubric] = (agreed + (review.judge_passed == review.human_passed), total + 1)
    return Agreement(sum(a for a, _ in per.values()), sum(n for _, n in per.values()), per)


def few_shot(session: Session, rubrics: Iterable[str] | None = None, *, limit: int = FEW_SHOT) -> dict[str, list[Example]]:
    """The newest corrected verdicts (the judge was wrong) of each rubric (of every rubric people reviewed, when
    `rubrics` is None), at most `limit` each."""
    query = select(JudgeReview).where(col(JudgeReview.judge_passed) != col(JudgeReview.human_passed))
    if rubrics is not None:
        wanted = {r.strip() for r in rubrics}
        if not wanted:
            return {}
        query = query.where(col(JudgeReview.rubric).in_(sorted(wanted)))
    examples: dict[str, list[Example]] = {}
    for review in session.exec(query.order_by(col(JudgeReview.reviewed_at).desc(), col(JudgeReview.id).desc())):
        chosen = examples.setdefault(review.rubric, [])
        if len(chosen) < limit and review.reply is not None:
            chosen.append(Example(review.reply, review.human_passed, review.note))
    return examples


def correct_judge(session: Session, corpus: Corpus, *, run_id: int, case_id: str, reviewer: str) -> JudgeReview:
    """'The judge was wrong' on a case's first failed rubric verdict in a run (the digest's button): a review that
    passes the reply the judge failed."""
    case = corpus.get(case_id)
    rubrics = [e.rubric for e in case.expect if isinstance(e, Rubric)]
    for row in records.trial_results(session, run_id, case_id=case.id):
        graded = [v for v in row.verdicts if v.get("kind") == "rubric" and not v.get("error")]
        for index, verdict in enumerate(graded):
            if not verdict.get("passed") and index < len(rubrics):
                return review_verdict(session, run_id=run_id, case_id=case.id, rubric=rubrics[index], human_passed=True,
                                      reviewer=reviewer, trial=row.trial, rubric_index=index)
    raise RunNotFoundError(f"run {run_id} has no failed judge verdict of {case.id} to correct")

"""Triage domain: promote, reject and edit, on both databases."""

from __future__ import annotations

import subprocess

import pytest
from sqlmodel import select

from bot.core.errors import CaseStateError, InvalidCaseError, PermissionDeniedError
from bot.corpus.files import Corpus
from bot.corpus.gitrepo import Author
from bot.store.tables import CaseIndex, Rejection, get_engine, migrate, session_scope
from bot.triage import decisions as triage

pytestmark = pytest.mark.migrated_db  # the database starts migrated: each test's first use of it migrates in-process

LEAD = Author(user_id="U01LEAD", name="Lead")


@pytest.fixture
def env(db_url, corpus_dir):
    engine = get_engine(db_url)
    migrate(engine)
    return Corpus(corpus_dir), engine


def log(corpus: Corpus, *args: str) -> str:
    return subprocess.run(["git", "log", *args], cwd=corpus.root, capture_output=True, text=True, check=True).stdout


def test_promote_moves_the_file_in_one_commit_by_the_maintainer(env):
    corpus, engine = env
    expect = triage.parse_expectations([{"rubric": "Recommends our stoves."}, {"not_contains": "another outdoor retailer"}])
    with session_scope(engine) as session:
        result = triage.promote(corpus=corpus, session=session, ref="qa31", actor=LEAD, expect=expect, tags=["catalog"])
    case = result.case
    assert case.status == "promoted" and case.promoted_by == "U01LEAD" and case.tags == ["catalog"]
    assert not (corpus.root / "candidates" / "qa31qo8q.yaml").exists()
    assert corpus.get("qa31").expect == case.expect
    assert log(corpus, "-1", "--format=%an|%s").strip() == "Lead|Promote qa31qo8q: Recommends a competitor's store for stoves"
    changed = log(corpus, "-1", "--name-status", "--format=", "-M").split()
    assert changed[0].startswith("R")  # git sees a rename, so history follows the file
    assert result.warnings == []
    with session_scope(engine) as session:
        assert session.get(CaseIndex, "qa31qo8q").status == "promoted"


def test_promote_warns_when_expectations_would_not_catch_the_flagged_reply(env):
    corpus, engine = env
    with session_scope(engine) as session:
        result = triage.promote(corpus=corpus, session=session, ref="qa31", actor=LEAD,
                                expect=triage.parse_expectations([{"contains": "retailer"}]))
    assert "would not have caught" in result.warnings[0]


def test_promote_without_expectations_changes_nothing(env):
    corpus, engine = env
    head = corpus.repo.head()
    with pytest.raises(InvalidCaseError, match="at least one expectation"):
        with session_scope(engine) as session:
            triage.promote(corpus=corpus, session=session, ref="qa31", actor=LEAD, expect=[])
    assert corpus.repo.head() == head


def test_promoting_a_promoted_case_is_refused(env):
    corpus, engine = env
    with pytest.raises(CaseStateError, match="already a promoted case"):
        with session_scope(engine) as session:
            triage.promote(corpus=corpus, session=session, ref="tne8", actor=LEAD,
                           expect=triage.parse_expectations([{"contains": "x"}]))


def test_reject_removes_the_candidate_and_keeps_the_reason(env):
    corpus, engine = env
    with session_scope(engine) as session:
        triage.reject(corpus=corpus, session=session, ref="qa31", actor=LEAD, reason="we do not sell stoves")
    assert corpus.ids().get("qa31qo8q") is None
    assert "Reason: we do not sell stoves" in log(corpus, "-1", "--format=%B")
    with session_scope(engine) as session:
        row = session.exec(select(Rejection)).one()
    assert (row.case_id, row.rejected_by, row.reason) == ("qa31qo8q", "U01LEAD", "we do not sell stoves")


def test_reject_needs_a_reason(env):
    corpus, engine = env
    with pytest.raises(InvalidCaseError, match="say why"):
        with session_scope(engine) as session:
            triage.reject(corpus=corpus, session=session, ref="qa31", actor=LEAD, reason="  ")
    assert corpus.ids().get("qa31qo8q") == "candidate"


def test_edit_changes_title_and_tags_in_one_commit(env):
    corpus, engine = env
    count = int(subprocess.run(["git", "rev-list", "--count", "HEAD"], cwd=corpus.root, capture_output=True, text=True).stdout)
    with session_scope(engine) as session:
        case = triage.edit(corpus=corpus, session=session, ref="tne8", actor=LEAD, title="New title", tags=["x"])
        same = triage.edit(corpus=corpus, session=session, ref="tne8", actor=LEAD, title="New title", tags=["x"])
    assert case == same and case.title == "New title"
    after = int(subprocess.run(["git", "rev-list", "--count", "HEAD"], cwd=corpus.root, capture_output=True, text=True).stdout)
    assert after == count + 1


def test_edit_cannot_empty_a_promoted_case(env):
    corpus, engine = env
    with pytest.raises(InvalidCaseError, match="at least one expectation"):
        with session_scope(engine) as session:
            triage.edit(corpus=corpus, session=session, ref="tne8", actor=LEAD, expect=[])


def test_bad_expectation_input_is_named():
    with pytest.raises(InvalidCaseError, match="expectation 0: not a valid regular expression"):
        triage.parse_expectations([{"regex": "(unclosed"}])


def test_maintainer_check():
    triage.require_maintainer("U1", allowed_users=None, who="anyone")
    triage.require_maintainer("U1", allowed_users={"U1"}, who="<@U1>")
    with pytest.raises(PermissionDeniedError, match="only maintainers can do this: <@U1>"):
        triage.require_maintainer("U2", allowed_users={"U1"}, who="<@U1>")


def _promoted(*expect: dict):
    from bot.corpus.schema import Case
    from tests.helpers import candidate

    return Case.model_validate({**candidate().model_dump(), "status": "promoted", "expect": list(expect)})


@pytest.mark.parametrize(
    ("expect", "verdict", "warned"),
    [
        ([{"not_contains": "90 days"}], None, False),  # fails on the flagged reply: it catches the failure
        ([{"contains": "days"}], None, True),  # passes on it: it would not have caught it
        ([{"rubric": "States 30 days."}], None, False),  # no judge: a rubric is not checked
        ([{"rubric": "States 30 days."}], False, False),  # the judge finds the flagged reply fails the rubric
        ([{"rubric": "States 30 days."}], True, True),  # the judge finds it satisfies the rubric
        ([{"rubric": "States 30 days."}], "unsure", False),  # the judge cannot tell: no claim
        ([{"rubric": "States 30 days."}], "crash", False),  # a failing judge never fails the promotion
        ([{"contains": "days"}, {"rubric": "States 30 days."}], False, False),  # the rubric catches it
    ],
)
def test_catches_failure_with_and_without_a_judge(expect, verdict, warned):
    case = _promoted(*expect)

    def judge(judged, rubric):
        assert judged is case and rubric == "States 30 days."
        if verdict == "crash":
            raise RuntimeError("judge down")
        return None if verdict == "unsure" else verdict

    warnings = triage.catches_failure(case, case.expect, judge=None if verdict is None else judge)
    assert bool(warnings) is warned
    if warned:
        assert "would not have caught the failure" in warnings[0]


def test_preview_promotion_validates_without_writing(env):
    corpus, _ = env
    head = corpus.repo.head()
    case = triage.preview_promotion(corpus.get("qa31"), actor=LEAD, expect=triage.parse_expectations([{"contains": "x"}]),
                                    title=" Better title ", tags=["a"])
    assert (case.status, case.title, case.tags, case.promoted_by) == ("promoted", "Better title", ["a"], "U01LEAD")
    assert corpus.repo.head() == head and corpus.get("qa31").status == "candidate"
    with pytest.raises(InvalidCaseError, match="tags.0"):
        triage.preview_promotion(corpus.get("qa31"), actor=LEAD, expect=case.expect, tags=["bad tag"])


def test_reject_candidate_returns_what_was_removed(env):
    corpus, engine = env
    with session_scope(engine) as session:
        result = triage.reject_candidate(corpus=corpus, session=session, ref="qa31", actor=LEAD, reason="dup")
    assert result.case.id == result.rejection.case_id == "qa31qo8q"
    assert result.case.title == "Recommends a competitor's store for stoves"


def test_promote_names_near_duplicates(env):
    corpus, engine = env
    twin = corpus.get("tne8").model_dump()
    twin.update(id="twin0001", status="candidate", expect=[], promoted_by=None, promoted_at=None)
    from bot.corpus.gitrepo import SYSTEM
    from bot.corpus.schema import Case

    with corpus.change(author=SYSTEM, message="twin") as tx:
        tx.write(Case.model_validate(twin))
    with session_scope(engine) as session:
        result = triage.promote(corpus=corpus, session=session, ref="twin", actor=LEAD,
                                expect=triage.parse_expectations([{"rubric": "States 30 days."}]))
    assert [(d.case_id, d.score) for d in result.near_duplicates] == [("tne841s8", 1.0)]


def test_no_rubric_judge_without_an_api_key():
    from bot.core.settings import load_settings

    assert triage.rubric_judge(load_settings()) is None

"""Two maintainers deciding on the same candidates at once, through the real Bolt listeners over Socket Mode
against the fake Slack: exactly one wins each race, the other is told who did, and files, git and the database
agree afterwards. On SQLite and PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from bot.corpus.files import Corpus
from bot.corpus.gitrepo import SYSTEM
from bot.store.tables import CaseIndex, Rejection, session_scope
from tests.fakes.slack import FakeSlack
from tests.helpers import candidate
from tests.helpers.slackbot import CHANNEL, LEAD, SECOND, configure, running_bot, seed

pytestmark = pytest.mark.migrated_db  # the database starts migrated: each test's first use of it migrates in-process

RACES = 20
SLACK_ACK_LIMIT = 3.0  # seconds
UNTRACKED_ONLY = "?? NOTES.txt\n"  # nothing staged, changed or swept into a commit


@pytest.fixture
def slack():
    with FakeSlack() as fake:
        seed(fake)
        yield fake


@pytest.fixture
def contested(corpus_dir):
    """RACES fresh candidates in the corpus, committed before the bot starts, and an untracked file beside them."""
    cases = [candidate(f"1764000000.{i:06d}", channel=CHANNEL, title=f"Contested {i}") for i in range(RACES)]
    with Corpus(corpus_dir).change(author=SYSTEM, message="Capture the contested candidates") as tx:
        for case in cases:
            tx.write(case)
    (corpus_dir / "NOTES.txt").write_text("a maintainer's scratch file, never committed\n")
    return [case.id for case in cases]


@pytest.fixture
def bot(slack, contested, db_url, monkeypatch):
    configure(monkeypatch, slack, EVALBOT_MAINTAINERS=f"{LEAD},{SECOND}")
    with running_bot(slack) as running:
        yield running


def race(slack: FakeSlack, commands: list[tuple[str, str]]) -> None:
    """Send every (user, text) /eval command at once; each must still be acked inside Slack's limit."""
    def send(item: tuple[str, str]):
        user, text = item
        return slack.send_slash_command({"command": "/eval", "text": text, "user_id": user, "channel_id": CHANNEL},
                                        timeout=30)

    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        acks = list(pool.map(send, commands))
    assert max(ack.latency for ack in acks) < SLACK_ACK_LIMIT


def answers(slack: FakeSlack, case_id: str, expected: int) -> list[str]:
    """The ephemeral answers about `case_id` (waiting until `expected` have come)."""
    def about() -> list[str]:
        texts = [c.params.get("text", "") for c in slack.calls_to("response_url")]
        return [t for t in texts if f"`{case_id}`" in t.splitlines()[0] or t.startswith(f":warning: {case_id} ")]

    for _ in range(expected):
        slack.wait_for_call("response_url", lambda c, seen=len(about()): len(about()) > seen or len(about()) >= expected,
                            timeout=60)
    return about()


def decision_commits(bot, case_id: str) -> list[str]:
    """'author email|subject' of each commit naming the case (the seed commit lists it too)."""
    out = bot.runtime.corpus.repo.run("log", "--format=%ae|%s", "-E", f"--grep=^(- )?[A-Z][a-z]+ {case_id}:")
    return [line for line in out.splitlines() if not line.endswith("contested candidates")]


def check_agreement(bot, case_id: str) -> str:
    """Files, git's HEAD and the database tell the same story of `case_id`; returns its outcome."""
    corpus, repo = bot.runtime.corpus, bot.runtime.corpus.repo
    on_disk = corpus.ids().get(case_id)
    in_head = {line.split("/")[0] for line in repo.run("ls-tree", "-r", "--name-only", "HEAD").splitlines()
               if line.endswith(f"/{case_id}.yaml")}
    with session_scope(bot.runtime.engine) as session:
        row = session.get(CaseIndex, case_id)
        rejection = session.get(Rejection, case_id)
    if on_disk == "promoted":
        case = corpus.get(case_id)
        assert in_head == {"cases"}
        assert repo.run("show", f"HEAD:cases/{case_id}.yaml") == corpus.path_for(case_id, "promoted").read_text()
        assert row is not None and row.status == "promoted" and row.promoted_by == case.promoted_by
        assert rejection is None
        assert decision_commits(bot, case_id) == [f"{case.promoted_by}@users.slack|Promote {case_id}: {case.title}"]
        return f"promoted by {case.promoted_by}"
    assert on_disk is None and in_head == set() and row is None
    assert rejection is not None
    [commit] = decision_commits(bot, case_id)
    assert commit.startswith(f"{rejection.rejected_by}@users.slack|Reject {case_id}:")
    return f"rejected by {rejection.rejected_by}"


def test_promote_against_promote(bot, slack, contested):
    commands = [(user, f"promote {case_id} States the 30-day window") for case_id in contested for user in (LEAD, SECOND)]
    race(slack, commands)
    for case_id in contested:
        told = answers(slack, case_id, 2)
        winners = [t for t in told if t.startswith(":white_check_mark: Promoted")]
        assert len(winners) == 1, told
        outcome = check_agreement(bot, case_id)
        winner = outcome.removeprefix("promoted by ")
        [refusal] = [t for t in told if t not in winners]
        assert f"is already a promoted case (promoted by <@{winner}> " in refusal, refusal
    assert bot.runtime.corpus.repo.run("status", "--porcelain") == UNTRACKED_ONLY


def test_promote_against_reject(bot, slack, contested):
    commands = []
    for i, case_id in enumerate(contested):
        pair = [(LEAD, f"promote {case_id} States the 30-day window"), (SECOND, f"reject {case_id} not a failure")]
        commands += pair if i % 2 else pair[::-1]
    race(slack, commands)
    outcomes = []
    for case_id in contested:
        told = answers(slack, case_id, 2)
        winners = [t for t in told if t.startswith((":white_check_mark: Promoted", ":no_entry_sign: Rejected"))]
        assert len(winners) == 1, told
        outcome = check_agreement(bot, case_id)
        outcomes.append(outcome.split()[0])
        [refusal] = [t for t in told if t not in winners]
        if outcome.startswith("promoted"):
            assert winners[0].startswith(":white_check_mark: Promoted")
            assert f"is a promoted case (promoted by <@{LEAD}> " in refusal and "only candidates can be rejected" in refusal
        else:
            assert winners[0].startswith(":no_entry_sign: Rejected")
            assert f"was rejected by <@{SECOND}> " in refusal, refusal
    assert bot.runtime.corpus.repo.run("status", "--porcelain") == UNTRACKED_ONLY

"""Follow-ups in flag threads end to end: flags, `/eval promote` and `/eval mute` through the real Bolt app over
Socket Mode, runs recorded in the database, and the sender posting through the real WebClient to the fake Slack
(paced on a virtual clock, 429s answered with Retry-After)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlmodel import select

from bot.corpus.gitrepo import SYSTEM
from bot.digest import outbox
from bot.digest.followups import FollowUp
from bot.evals import records
from bot.slack.flows.followups import FollowUpSender
from bot.store.claims import claim
from bot.store.tables import CaseResult, EvalRun, Flag, FollowUpRow, JobClaim, session_scope
from tests.fakes.slack import FakeSlack
from tests.helpers.evalruns import record_run, wait_until
from tests.helpers.followups import FakeClock, flag_reply, followups_in
from tests.helpers.slackbot import CHANNEL, FLAGGER, LEAD, SECOND, configure, running_bot, seed

pytestmark = pytest.mark.migrated_db  # the database starts migrated: each test's first use of it migrates in-process

QUESTION = "Can I bring my stove on a plane?"
RUBRIC = "Says stoves with fuel residue are not allowed in carry-on"


@pytest.fixture
def slack():
    with FakeSlack() as fake:
        seed(fake)
        yield fake


@pytest.fixture
def bot(slack, corpus_dir, db_url, monkeypatch):
    configure(monkeypatch, slack, EVALBOT_MAINTAINERS=LEAD)
    with running_bot(slack) as running:
        yield running


def command(slack: FakeSlack, text: str, *, user: str = LEAD) -> None:
    start = len(slack.calls)
    slack.send_slash_command({"command": "/eval", "text": text, "user_id": user, "channel_id": CHANNEL})
    slack.wait_for_call("response_url", start=start)


def send(bot, clock: FakeClock | None = None, holder: str = "replica-a") -> FollowUpSender:
    sender = FollowUpSender(bot.runtime, bot.app.client, clock=clock or FakeClock(), holder=holder)
    sender.run_once(until_empty=True)
    return sender


def mentions(message: dict) -> list[str]:
    """The people a follow-up @-mentions at its start (the flaggers it tells)."""
    lead = re.match(r"^((?:<@[A-Z0-9]+> )+)", message["blocks"][0]["text"]["text"])
    return re.findall(r"<@([A-Z0-9]+)>", lead[1]) if lead else []


def test_promoted_then_fails_passes_fails_tells_both_flaggers_once_per_event(bot, slack):
    case_id, thread = flag_reply(slack, bot.runtime, question=QUESTION, reply="Sure, pack it anywhere.",
                                 flaggers=[FLAGGER, SECOND])
    command(slack, f"promote {case_id} {RUBRIC}")
    wait_until(lambda: bot.runtime.corpus.find(case_id).status == "promoted", what="promotion")
    send(bot)
    record_run(bot.runtime, trigger="nightly", **{case_id: "BAD: pack it anywhere"})
    send(bot)
    prompt = bot.runtime.corpus.root / "prompts" / "system.md"
    prompt.write_text(prompt.read_text() + "\nStoves with fuel residue never go in carry-on.\n")
    bot.runtime.corpus.repo.commit([prompt], message="Tell the assistant about stoves", author=SYSTEM)
    sha = bot.runtime.corpus.repo.run("rev-parse", "--short", "HEAD").strip()
    record_run(bot.runtime, trigger="nightly", **{case_id: "Not with fuel residue in carry-on."})
    send(bot)
    record_run(bot.runtime, trigger="slack", **{case_id: "BAD: pack it anywhere"})
    sender = send(bot)

    posted = followups_in(slack, thread)
    texts = [m["blocks"][0]["text"]["text"] for m in posted]
    assert len(posted) == 4, texts
    promoted, first, fixed, regressed = texts
    assert "Your flag is now a test" in promoted and f"promoted by <@{LEAD}>" in promoted
    assert f"• rubric: {RUBRIC}" in promoted
    assert "run #1" in first and "reproduces the failure" in first and "judge says no" in first
    assert "passes since run #2" in fixed and "failed in run #1" in fixed and f"`prompts/system.md at {sha}`" in fixed
    assert "regressed" in regressed and "passed in run #2" in regressed and "run #3" in regressed
    for message in posted:  # each flagger mentioned once per event, first flagger first, in the flag thread
        assert mentions(message) == [FLAGGER, SECOND]
        assert all(message["blocks"][0]["text"]["text"].count(f"<@{user}>") == 1 for user in (FLAGGER, SECOND))
        assert message["thread_ts"] == thread
    # A second replica, or a restart: nothing is recorded or sent twice.
    with session_scope(bot.runtime.engine) as session:
        assert outbox.record_run(session, bot.runtime.corpus, 3, holder="replica-b") is None
        assert outbox.record_promotion(session, bot.runtime.corpus.find(case_id)) == 0
    assert send(bot, holder="replica-b").sent == [] and sender.send_due() == []
    assert len(followups_in(slack, thread)) == 4


def test_a_muted_flagger_is_not_mentioned_and_unmute_brings_the_mentions_back(bot, slack):
    case_id, thread = flag_reply(slack, bot.runtime, question=QUESTION, reply="Sure.", flaggers=[FLAGGER, SECOND])
    command(slack, "mute", user=SECOND)
    command(slack, f"promote {case_id} {RUBRIC}")
    wait_until(lambda: bot.runtime.corpus.find(case_id).status == "promoted", what="promotion")
    send(bot)
    command(slack, "unmute", user=SECOND)
    record_run(bot.runtime, trigger="nightly", **{case_id: "BAD"})
    send(bot)
    promoted, first = followups_in(slack, thread)
    assert mentions(promoted) == [FLAGGER] and mentions(first) == [FLAGGER, SECOND]


def test_everyone_muted_skips_the_follow_up(bot, slack):
    case_id, thread = flag_reply(slack, bot.runtime, question=QUESTION, reply="Sure.", flaggers=[FLAGGER])
    command(slack, "mute", user=FLAGGER)
    command(slack, f"reject {case_id} not an assistant problem")
    wait_until(lambda: bot.runtime.corpus.find(case_id) is None, what="rejection")
    send(bot)
    assert followups_in(slack, thread) == []
    with session_scope(bot.runtime.engine) as session:
        assert outbox.statuses(session) == {"skipped": 1}


def test_a_rejection_says_who_and_why(bot, slack):
    case_id, thread = flag_reply(slack, bot.runtime, question=QUESTION, reply="Sure.", flaggers=[FLAGGER])
    command(slack, f"reject {case_id} the stove question was a test message")
    wait_until(lambda: bot.runtime.corpus.find(case_id) is None, what="rejection")
    send(bot)
    [message] = followups_in(slack, thread)
    assert mentions(message) == [FLAGGER] and f"<@{LEAD}> rejected it" in message["blocks"][0]["text"]["text"]
    assert "was not added to the evals" in message["text"] + message["blocks"][0]["text"]["text"]
    assert "the stove question was a test message" in message["blocks"][0]["text"]["text"]


# ---------------------------------------------------------------- 300 fixes, paced, with 429s


def _fixing_run(rt, slack: FakeSlack, count: int) -> list[str]:
    """Run 1 fails `count` flagged cases (its follow-ups already recorded), run 2 passes them; the flag threads."""
    threads = [slack.post(CHANNEL, f"question {n}", user=FLAGGER) for n in range(count)]
    case_ids = [f"c{n:07d}" for n in range(count)]
    with session_scope(rt.engine) as session:
        runs = [records.create_run(session, trigger="nightly", mode="sync", corpus_commit=None, config_fingerprint="f",
                                   target_label="fake", judge_model=None, trials=1, cases_total=count) for _ in (1, 2)]
        for run, status in zip(runs, ("fail", "pass"), strict=True):
            for n, case_id in enumerate(case_ids):
                session.add(CaseResult(run_id=run.id, case_id=case_id, title=f"Case {n}", status=status,
                                               failure="expected 30 days" if status == "fail" else None))
            run.status = "finished"
            session.add(run)
        session.flush()
        for n, thread in enumerate(threads):
            session.add(Flag(case_id=f"c{n:07d}", channel=CHANNEL, ts=thread, user_id=FLAGGER, trigger="reaction"))
        assert claim(session, job=outbox.RUN_JOB, slot=str(runs[0].id), holder="test")
    return threads


def test_a_run_that_fixes_300_cases_posts_300_follow_ups_paced_with_no_loss_on_429s(slack, monkeypatch, corpus_dir):
    configure(monkeypatch, slack)
    with running_bot(slack) as bot:
        threads = _fixing_run(bot.runtime, slack, 300)
        slack.rate_limit_next("chat.postMessage", times=2, retry_after=3)

        def more_429s(clock: FakeClock) -> None:
            if len(clock.sleeps) % 100 == 50:
                slack.rate_limit_next("chat.postMessage", times=1, retry_after=2)

        clock = FakeClock(on_sleep=more_429s)
        sender = FollowUpSender(bot.runtime, bot.app.client, clock=clock)
        sent = sender.run_once(until_empty=True)

    assert len(sent) == 300 and len({s.key for s in sent}) == 300
    assert sorted(s.thread_ts for s in sent) == sorted(threads)
    for thread in threads:
        [message] = followups_in(slack, thread)
        assert "is *fixed*: it passes since run #2" in message["blocks"][0]["text"]["text"]
    gaps = [b.at - a.at for a, b in zip(sent, sent[1:])]
    assert min(gaps) >= 1.0  # never more than one message a second in the channel
    assert sent[0].at >= 3.0  # the first 429 asked for 3 s
    assert 299 <= sent[-1].at - sent[0].at < 320, sent[-1].at  # paced, not slower than the limit needs
    assert len(slack.calls_to("chat.postMessage")) >= 303  # every 429 was tried again
    assert sum(1 for s in clock.sleeps if s >= 1.5) >= 3  # each Retry-After was waited for
    with session_scope(bot.runtime.engine) as session:
        assert outbox.statuses(session) == {"sent": 300}
        assert session.exec(select(EvalRun).where(EvalRun.id == 2)).one().status == "finished"


def test_a_follow_up_posted_before_a_crash_is_not_posted_again(bot, slack):
    thread = slack.post(CHANNEL, "question", user=FLAGGER)
    followup = FollowUp("rejected", "abcd1234", "A case", CHANNEL, thread, (FLAGGER,), actor=LEAD, reason="dupe")
    with session_scope(bot.runtime.engine) as session:
        assert outbox.record(session, [followup, followup]) == 1
    first = send(bot)
    assert len(first.sent) == 1
    clock = FakeClock()
    with session_scope(bot.runtime.engine) as session:  # as if the sender died after posting, before marking it sent
        row = session.exec(select(FollowUpRow)).one()
        row.status, row.claimed_by, row.claimed_at = "pending", "dead", clock.now() - timedelta(hours=1)
        session.add(row)
        lock = session.get(JobClaim, (outbox.SENDER_JOB, outbox.SENDER_SLOT))
        lock.claimed_by, lock.claimed_at = "dead", clock.now() - timedelta(hours=1)
        session.add(lock)
    assert send(bot, clock, holder="replica-b").sent == []  # it takes the dead sender's place and finds the message
    assert len(followups_in(slack, thread)) == 1 and len(slack.calls_to("conversations.replies")) == 1
    with session_scope(bot.runtime.engine) as session:
        assert outbox.statuses(session) == {"sent": 1}


def test_one_sender_at_a_time_across_replicas(db_url, corpus_dir):
    from bot.runtime import open_runtime

    rt = open_runtime()
    now = FakeClock().now()
    with session_scope(rt.engine) as session:
        assert outbox.claim_sender(session, holder="replica-a", now=now)
    with session_scope(rt.engine) as session:
        assert not outbox.claim_sender(session, holder="replica-b", now=now)
        assert outbox.claim_sender(session, holder="replica-a", now=now)  # a refresh
    with session_scope(rt.engine) as session:  # replica-a died: after CLAIM_TTL its claim is taken over
        assert outbox.claim_sender(session, holder="replica-b", now=now + outbox.CLAIM_TTL + timedelta(seconds=1))


def test_turning_follow_ups_on_does_not_replay_a_week_of_runs(db_url, corpus_dir):
    from bot.runtime import open_runtime

    rt = open_runtime()
    for _ in range(3):
        record_run(rt, trigger="nightly")
    with session_scope(rt.engine) as session:
        owed = outbox.owed_runs(session)
        assert outbox.skip_backlog(session, owed, holder="a") == [3] and owed == [1, 2, 3]
    with session_scope(rt.engine) as session:
        assert outbox.owed_runs(session) == [3]
        assert outbox.skip_backlog(session, [3, 4], holder="a") == [3, 4]  # later looks keep every run

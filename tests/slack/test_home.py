"""App Home through the real Bolt app and the fake Slack: `app_home_opened` → `views.publish`, for a maintainer (the
triage queue with the capture card's buttons, near-duplicates grouped, paged) and for a flagger (their flags)."""

from __future__ import annotations

import hashlib
import json

import pytest
import yaml

from bot.corpus.files import Corpus
from bot.corpus.gitrepo import SYSTEM
from bot.slack.blocks import capture as cb
from bot.slack.blocks.home import PAGE_ACTION
from tests.fakes.slack import FakeSlack
from tests.helpers.evalruns import record_run, wait_until
from tests.helpers.followups import flag_reply
from tests.helpers.slackbot import FLAGGER, LEAD, SECOND, configure, running_bot, seed

pytestmark = pytest.mark.migrated_db  # the database starts migrated: each test's first use of it migrates in-process

STOVES = "qa31qo8q"  # the example corpus's candidate, flagged by U04SAM


@pytest.fixture
def slack():
    with FakeSlack() as fake:
        seed(fake)
        fake.add_user("U04SAM", "sam", display_name="Sam")
        fake.add_user("U03DEV", "devon", display_name="Devon")
        yield fake


def start(slack, monkeypatch):
    configure(monkeypatch, slack, EVALBOT_MAINTAINERS=LEAD)
    return running_bot(slack)


def open_home(slack: FakeSlack, user: str) -> dict:
    start = len(slack.calls)
    slack.send_event({"type": "app_home_opened", "user": user, "channel": "D0HOME001", "tab": "home"})
    slack.wait_for_call("views.publish", lambda c: c.params.get("user_id") == user, start=start)
    return slack.home_view(user)


def text_of(view: dict) -> str:
    return json.dumps(view["blocks"], ensure_ascii=False)


def buttons(view: dict, action_id: str) -> list[tuple[dict, dict]]:
    return [(b, e) for b in view["blocks"] if b["type"] == "actions" for e in b["elements"]
            if e["action_id"].startswith(action_id)]


def click_in_home(slack: FakeSlack, view: dict, block: dict, button: dict, *, user: str) -> None:
    payload = {"type": "block_actions", "user": {"id": user}, "container": {"type": "view", "view_id": view["id"]},
               "view": view, "trigger_id": "1234.5678.home",
               "actions": [{"type": "button", "action_id": button["action_id"], "block_id": block["block_id"],
                            "value": button["value"], "action_ts": "1763800000.000001"}]}
    slack.send_interactive(payload)


def test_a_maintainer_sees_the_example_candidate_in_the_triage_queue_and_promote_opens_the_modal(slack, corpus_dir, db_url,
                                                                                                   monkeypatch):
    with start(slack, monkeypatch) as bot:
        record_run(bot.runtime, trigger="nightly")
        view = open_home(slack, LEAD)
        body = text_of(view)
        assert view["type"] == "home" and len(view["blocks"]) <= 100
        assert "*Triage queue* (1 candidate, oldest first)" in body and f"`{STOVES}`" in body
        assert "flagged by <@U04SAM>" in body and "should recommend our own stoves" in body
        assert ":bar_chart: *Last run #1:* 100% passed (6 of 6 cases)" in body
        [(block, promote)] = buttons(view, cb.PROMOTE_ACTION)
        assert promote["value"] == STOVES and [e["action_id"] for e in block["elements"]] == [cb.PROMOTE_ACTION, cb.REJECT_ACTION]
        start_at = len(slack.calls)
        click_in_home(slack, view, block, promote, user=LEAD)
        opened = slack.wait_for_call("views.open", start=start_at).params["view"]
        opened = json.loads(opened) if isinstance(opened, str) else opened
        assert STOVES in opened["private_metadata"] and opened["type"] == "modal"


def test_a_flagger_sees_their_flags_and_no_triage_queue(slack, corpus_dir, monkeypatch):
    with start(slack, monkeypatch) as bot:
        case_id, _ = flag_reply(slack, bot.runtime, question="Can I bring my stove on a plane?", reply="Sure.",
                                flaggers=[FLAGGER, SECOND])
        view = open_home(slack, FLAGGER)
        body = text_of(view)
        assert "*Your flags* (1)" in body and f"`{case_id}`" in body and "awaiting triage" in body
        assert "Triage queue" not in body and not buttons(view, cb.PROMOTE_ACTION)
        sam = text_of(open_home(slack, "U04SAM"))  # the example candidate's flagger, from its case file
        assert f"`{STOVES}`" in sam and "awaiting triage" in sam
        flagged = [c.id for c in bot.runtime.corpus.cases("promoted") if "U03DEV" in c.source.flagged_by]
        promoted = text_of(open_home(slack, "U03DEV"))  # flagged promoted example cases
        assert f"*Your flags* ({len(flagged)})" in promoted and all(f"`{c}`" in promoted for c in flagged)
        assert promoted.count("a test now") == len(flagged) >= 2 and "not run yet" in promoted


def _words(n: int) -> str:
    return " ".join(hashlib.sha1(f"{n}-{k}".encode()).hexdigest()[:8] for k in range(10))


def _candidates(corpus_dir, count: int) -> list[str]:
    """`count` more candidates, committed, oldest first by flag time: each its own conversation but the last two alike."""
    example = yaml.safe_load((corpus_dir / "candidates" / f"{STOVES}.yaml").read_text())
    ids = []
    for n in range(count):
        case_id = f"zz{n:06d}"
        question = _words(n if n < count - 1 else n - 1)
        data = {**example, "id": case_id, "title": f"Candidate {n}",
                "source": {**example["source"], "flagged_at": f"2026-11-{n // 24 + 21:02d}T{n % 24:02d}:00:00Z",
                           "ts": f"1763700{n:03d}.000100"},
                "conversation": [{"role": "user", "content": question}, {"role": "assistant", "content": f"Answer {n}."}]}
        (corpus_dir / "candidates" / f"{case_id}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
        ids.append(case_id)
    Corpus(corpus_dir).repo.commit([corpus_dir / "candidates"], message="More candidates", author=SYSTEM)
    return ids


def test_the_queue_is_paged_within_100_blocks_and_groups_near_duplicates(slack, corpus_dir, monkeypatch):
    ids = _candidates(corpus_dir, 20)
    with start(slack, monkeypatch):
        view = open_home(slack, LEAD)
        body = text_of(view)
        assert "oldest first) · page 1 of 3" in body and len(view["blocks"]) <= 100
        assert body.index(f"`{STOVES}`") < body.index(f"`{ids[0]}`") < body.index(f"`{ids[6]}`")
        assert f"`{ids[8]}`" not in body
        [(block, nxt)] = buttons(view, f"{PAGE_ACTION}_queue")
        start_at = len(slack.calls)
        click_in_home(slack, view, block, nxt, user=LEAD)
        slack.wait_for_call("views.publish", start=start_at)
        wait_until(lambda: "page 2 of 3" in text_of(slack.home_view(LEAD)), what="page 2")
        last = slack.home_view(LEAD)
        [(block, nxt)] = [(b, e) for b, e in buttons(last, f"{PAGE_ACTION}_queue") if e["text"]["text"] == "Next →"]
        click_in_home(slack, last, block, nxt, user=LEAD)
        wait_until(lambda: "page 3 of 3" in text_of(slack.home_view(LEAD)), what="page 3")
        third = text_of(slack.home_view(LEAD))
        # The last two candidates are alike: the younger is grouped under the older, not listed again.
        assert f"`{ids[18]}`" in third and "Looks like: `zz000019`" in third and third.count(f"`{ids[19]}`") == 1
        assert "*Triage queue* (20 candidates" in third

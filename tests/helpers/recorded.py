"""Recorded-shape Slack threads through the real capture path, and checks of what came out.

A thread is `{"id", "channel", "flag", "outcome": "captured"|"refused", "assistant_ids", "messages", "expect"}`
(the shape of ../shared/peer-data/slack/threads.json, and of the project's own tests/fixtures/slack_threads.json); each expect entry names a message by `ts` and either
`skip: true` (left out) or a `role` and phrases it `contains`, plus phrases that must be `absent`.
`CaptureHarness` stores the messages in a fake Slack, captures with the real SlackThreadSource and WebClient,
and `misses` lists what was captured wrong. Used by tests/capture and benchmarks/slack_fidelity.py.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slack_sdk import WebClient
from sqlalchemy.engine import Engine

from bot.capture.candidate import CaptureOptions, CaptureResult, FlagRequest, capture
from bot.core.errors import AlreadyRejectedError, CaptureError
from bot.corpus.files import Corpus
from bot.slack.source import SlackThreadSource
from bot.store.tables import make_engine, migrate
from tests.fakes.slack import BOT_ID, BOT_USER_ID, FakeSlack

FLAGGER = "U0FLAGGER"
SHAPES = Path(__file__).resolve().parent.parent / "fixtures" / "slack_threads.json"
_MARKS = re.compile(r"\*\*|~~|[*_~`]")


@dataclass
class Outcome:
    """What a flag did: the captured result, or the sentence the flagger was told."""

    result: CaptureResult | None
    refusal: str | None


class CaptureHarness:
    """A fake Slack, a corpus and a database, for capturing recorded threads one channel each."""

    def __init__(self, slack: FakeSlack, root: Path, *, engine: Engine | None = None):
        self.slack = slack
        self.client = WebClient(token="xoxb-test-token", base_url=slack.api_url)
        self.source = SlackThreadSource(self.client, bot_user_id=BOT_USER_ID, bot_id=BOT_ID)
        self.corpus = Corpus(root / "corpus")
        if engine is None:
            engine = make_engine(f"sqlite:///{root / 'capture.db'}")
            migrate(engine)
        self.engine = engine
        self._channels = 0
        slack.add_user(FLAGGER, "flagger", display_name="Flagger")

    def load(self, thread: dict[str, Any]) -> str:
        """Store the thread's messages in a channel of their own; returns the channel."""
        self._channels += 1
        channel = f"C{self._channels:08d}"
        parents = [m for m in thread["messages"] if not m.get("thread_ts") or m["thread_ts"] == m["ts"]]
        for message in parents + [m for m in thread["messages"] if m not in parents]:
            self.slack.post_raw(channel, message)
        return channel

    def flag(self, channel: str, ts: str, *, assistant_ids: frozenset[str] = frozenset(),
             trigger: str = "reaction", note: str | None = None) -> Outcome:
        """Flag message `ts` of `channel` as a reaction (or shortcut) would."""
        flag = FlagRequest(channel=channel, user_id=FLAGGER, trigger=trigger, ts=ts, note=note)
        try:
            result = capture(flag, source=self.source, corpus=self.corpus, engine=self.engine,
                             options=CaptureOptions(assistant_ids=assistant_ids))
        except (CaptureError, AlreadyRejectedError) as exc:
            return Outcome(None, str(exc))
        return Outcome(result, None)

    def run(self, thread: dict[str, Any], *, exact: bool = False) -> tuple[Outcome, list[str]]:
        """Load and flag one recorded thread; returns the outcome and every miss (see `misses`)."""
        channel = self.load(thread)
        outcome = self.flag(channel, thread["flag"], assistant_ids=frozenset(thread.get("assistant_ids") or ()))
        return outcome, misses(thread, outcome, exact=exact)


def shape_threads() -> list[dict[str, Any]]:
    """The project's own threads in Slack's payload shapes (tests/fixtures/slack_threads.json)."""
    return list(json.loads(SHAPES.read_text())["threads"])


def plain(text: str) -> str:
    """Text with Markdown style marks and runs of spaces removed, to compare with recorded phrases."""
    return " ".join(_MARKS.sub("", text).split())


def misses(thread: dict[str, Any], outcome: Outcome, *, exact: bool = False) -> list[str]:
    """What was captured wrong, one line per expected message (empty when everything is right).

    `contains` phrases are matched with Markdown style marks and spacing ignored (recorded phrases are plain
    words), or with `exact` as written."""
    expect = thread["expect"]
    if thread["outcome"] == "refused":
        if outcome.result is not None:
            return [f"{e['ts']}: captured, should be refused" for e in expect]
        return [f"{e['ts']}: refused with {outcome.refusal!r}, which does not say why"
                for e in expect if not _says_why(outcome.refusal or "")]
    if outcome.result is None:
        return [f"{e['ts']}: refused ({outcome.refusal})" for e in expect]
    turns = outcome.result.case.conversation
    found: list[str] = []
    for entry in expect:
        for phrase in entry.get("absent") or []:
            if any(phrase in t.content or plain(phrase) in plain(t.content) for t in turns):
                found.append(f"{entry['ts']}: kept {phrase!r}")
        if entry.get("skip"):
            continue
        role = entry["role"]
        for phrase in entry.get("contains") or []:
            if not any(t.role == role and (phrase in t.content if exact else plain(phrase) in plain(t.content)) for t in turns):
                where = [t.role for t in turns if plain(phrase) in plain(t.content)]
                found.append(f"{entry['ts']}: {phrase!r} not in a {role} turn" + (f" (it is in {where})" if where else ""))
    roles = _merged([e["role"] for e in expect if not e.get("skip")])
    if [t.role for t in turns] != roles:
        found.append(f"roles {[t.role for t in turns]}, expected {roles}")
    return found


def _says_why(refusal: str) -> bool:
    return "system message" in refusal or "deleted" in refusal


def _merged(roles: list[str]) -> list[str]:
    out: list[str] = []
    for role in roles:
        if not out or out[-1] != role:
            out.append(role)
    return out

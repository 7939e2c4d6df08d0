"""Catch-up's domain on plain messages: which flags a channel's messages make (one inbox row per message), a mention
the bot already answered, and the limit on messages read."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.capture import catchup
from bot.capture.catchup import ChannelMessage
from bot.corpus.files import Corpus
from bot.store.tables import get_engine, migrate

pytestmark = pytest.mark.migrated_db  # the database starts migrated: each test's first use of it migrates in-process

CHANNEL = "C0EVALS01"
NOW = 1_763_800_000.0


def at(minutes_ago: float) -> str:
    return f"{NOW - minutes_ago * 60:.6f}"


class ListReader:
    """Top-level messages (newest first) and threads from lists; counts what was read, lazily like the edge."""

    def __init__(self, top: list[ChannelMessage], threads: dict[str, list[ChannelMessage]] | None = None) -> None:
        self.top, self.threads, self.read = top, threads or {}, 0

    @property
    def calls(self) -> int:
        return self.read

    def history(self, channel: str, *, oldest: str, latest: str) -> Iterator[ChannelMessage]:
        for message in self.top:
            self.read += 1
            yield message

    def replies(self, channel: str, ts: str) -> list[ChannelMessage]:
        return self.threads.get(ts, [])


@pytest.fixture
def engine(db_url):
    engine = get_engine(db_url)
    migrate(engine)
    return engine


def test_flags_from_reactions_and_unanswered_mentions(engine, tmp_path):
    parent, answered = at(30), at(20)
    thread = [ChannelMessage(ts=parent, user="U0ASKER"),
              ChannelMessage(ts=at(25), thread_ts=parent, user="U0FLAGGER", mentions_bot=True, note="wrong window"),
              ChannelMessage(ts=at(24), thread_ts=parent, user="U0OTHER", mentions_bot=True, by_bot=True)]
    answered_thread = [ChannelMessage(ts=answered, user="U0ASKER"),
                       ChannelMessage(ts=at(19), thread_ts=answered, user="U0SECOND", mentions_bot=True),
                       ChannelMessage(ts=at(18), thread_ts=answered, own=True, by_bot=True)]
    reader = ListReader(
        [ChannelMessage(ts=at(5), user="U0ASKER", flagged_by=("U0FLAGGER", "U0SECOND")),
         ChannelMessage(ts=answered, user="U0ASKER", reply_count=2, latest_reply=at(18)),
         ChannelMessage(ts=parent, user="U0ASKER", reply_count=2, latest_reply=at(24))],
        {parent: thread, answered: answered_thread},
    )

    result = catchup.catch_up(reader, engine=engine, corpus=Corpus(tmp_path / "corpus"), channel=CHANNEL, now=NOW)

    # one row per message (its first flagger); the mention answered by the bot and the bot's post make none
    assert sorted(result.keys) == sorted([f"catchup:{CHANNEL}:{at(5)}:U0FLAGGER", f"catchup:{CHANNEL}:{at(25)}:U0FLAGGER"])
    assert (result.messages, result.calls) == (3, 3)
    assert catchup.checkpoint(engine, CHANNEL) == f"{NOW:.6f}"


def test_reading_stops_at_max_messages(engine, tmp_path):
    reader = ListReader([ChannelMessage(ts=at(i), user="U0ASKER", flagged_by=("U0FLAGGER",)) for i in range(5)])

    result = catchup.catch_up(reader, engine=engine, corpus=Corpus(tmp_path / "corpus"), channel=CHANNEL, now=NOW,
                              max_messages=2)

    assert result.messages == 2 and len(result.keys) == 2
    assert reader.read == 3  # the third is read, seen past the limit, and reading stops there

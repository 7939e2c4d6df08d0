"""Capture: a flagged Slack message becomes a candidate case (or one more flag on an existing case).

Slack-free: the edge hands over a `FlagRequest` and a `ThreadSource` that fetches normalised messages
(`bot.capture.message.Message`: content as text, system messages marked); this module finds
the flagged message's thread, builds the conversation up to the flagged message, redacts secrets, drafts a
title, and writes the candidate in one commit authored by the flagger. Redelivered and repeated flags of the
same message never make a second case or commit; a flag on a rejected message raises AlreadyRejectedError.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.engine import Engine

from bot.capture.message import Message, SharedFile
from bot.capture.transcripts import merge_turns, parse_messages_file, parse_pasted
from bot.core.clock import utcnow
from bot.core.errors import AlreadyRejectedError, CaptureError
from bot.core.kinds import FlagTrigger, Role
from bot.core.people import person
from bot.core.redaction import redact
from bot.corpus import index as caseindex
from bot.corpus.files import Corpus
from bot.corpus.gitrepo import Author
from bot.corpus.ids import slack_case_id
from bot.corpus.schema import Case, Turn
from bot.corpus.similarity import NearDuplicate, near_duplicates
from bot.store import writes
from bot.store.tables import CaptureReply, Flag, Rejection, session_scope

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 5_000_000
TITLE_CHARS = 90


class ThreadSource(Protocol):
    """What capture needs from Slack; the Slack edge implements it over the Web API."""

    bot_user_id: str | None
    bot_id: str | None

    def message(self, channel: str, ts: str) -> Message | None: ...
    def thread(self, channel: str, thread_ts: str) -> list[Message]: ...
    def user_name(self, user_id: str) -> str: ...
    def permalink(self, channel: str, ts: str) -> str | None: ...
    def download(self, file: SharedFile, *, max_bytes: int) -> bytes: ...


@dataclass(frozen=True)
class FlagRequest:
    """Someone flagged a message: by reaction or shortcut (`ts` is the message), or by mention (`ts` is the mention)."""

    channel: str
    user_id: str
    trigger: FlagTrigger
    ts: str
    thread_ts: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class Draft:
    """A drafted title and, optionally, a suggested rubric."""

    title: str
    rubric: str | None = None


Drafter = Callable[[list[Turn], str | None], Draft | None]


@dataclass(frozen=True)
class CaptureOptions:
    """Capture settings taken from Settings by the edge."""

    assistant_ids: frozenset[str] = frozenset()
    redact_contacts: bool = True
    drafter: Drafter | None = None


@dataclass
class CaptureResult:
    """What a flag did: a new candidate, or one more flagger on an existing case (or nothing new)."""

    case: Case
    created: bool
    new_flagger: bool
    thread_ts: str
    warnings: list[str] = field(default_factory=list)
    near_duplicates: list[NearDuplicate] = field(default_factory=list)  # other cases with a very similar conversation

    @property
    def flag_count(self) -> int:
        return len(self.case.source.flagged_by)

    @property
    def turns(self) -> int:
        return len(self.case.conversation)


def capture(flag: FlagRequest, *, source: ThreadSource, corpus: Corpus, engine: Engine, options: CaptureOptions) -> CaptureResult:
    """Turn a flag into a candidate case, or add the flagger to the existing case of that message."""
    flagged, thread = _locate(flag, source)
    case_id = slack_case_id(flag.channel, flagged.ts)
    thread_ts = flagged.thread_ts or flagged.ts
    with session_scope(engine) as session:
        rejection = session.get(Rejection, case_id)
    if rejection is not None:
        raise AlreadyRejectedError(
            f"this message was already flagged as case {case_id} and rejected by {person(rejection.rejected_by)} "
            f"on {rejection.rejected_at:%Y-%m-%d}: {rejection.reason}"
        )
    author = Author(user_id=flag.user_id, name=_safe_name(source, flag.user_id))
    existing = corpus.find(case_id)
    if existing is not None:
        return _add_flagger(existing, flag, author=author, corpus=corpus, engine=engine, thread_ts=thread_ts)

    turns, kind, warnings = _conversation(flagged, thread, flag, source, options)
    turns = [Turn(role=t.role, content=redact(t.content, contacts=options.redact_contacts)) for t in turns]
    note = redact(flag.note.strip(), contacts=options.redact_contacts) if flag.note and flag.note.strip() else None
    draft = _draft(turns, note, options)
    case = Case.model_validate(
        {
            "id": case_id,
            "title": redact(draft.title, contacts=options.redact_contacts),
            "status": "candidate",
            "source": {
                "kind": kind,
                "permalink": source.permalink(flag.channel, flagged.ts),
                "channel": flag.channel,
                "ts": flagged.ts,
                "flagged_by": [flag.user_id],
                "flagged_at": utcnow(),
                "note": note,
            },
            "conversation": [t.model_dump() for t in turns],
            "suggested_expect": [{"rubric": draft.rubric}] if draft.rubric else [],
        }
    )
    with corpus.change(author=author, message=f"Capture {case.id}: {case.title}") as tx:
        # Another process may have captured the same message while we were reading Slack.
        raced = corpus.find(case_id)
        if raced is None:
            tx.write(case)
    if raced is not None:
        return _add_flagger(raced, flag, author=author, corpus=corpus, engine=engine, thread_ts=thread_ts)
    _record(engine, case=case, flag=flag)
    log.info("captured %s (%d turns, %s) flagged by %s", case.id, len(turns), kind, flag.user_id,
             extra={"event": "capture", "case_id": case.id, "turns": len(turns), "trigger": flag.trigger})
    return CaptureResult(case=case, created=True, new_flagger=True, thread_ts=thread_ts,
                         warnings=warnings, near_duplicates=near_duplicates(case, corpus))


def _locate(flag: FlagRequest, source: ThreadSource) -> tuple[Message, list[Message] | None]:
    """The flagged message, and the thread when it had to be fetched to find it."""
    if flag.trigger != "mention":
        message = source.message(flag.channel, flag.ts)
        if message is None or message.deleted:
            raise CaptureError("that message was deleted, so there is nothing to capture")
        if message.system is not None:
            raise CaptureError(f"that is a Slack system message ({message.system}), not conversation, so there is "
                               "nothing to capture: flag a message someone wrote")
        return message, None
    if flag.thread_ts and flag.thread_ts != flag.ts:
        thread = source.thread(flag.channel, flag.thread_ts)
        before = [m for m in thread if _ts(m.ts) < _ts(flag.ts) and m.is_conversation and not _is_own(m, source)]
        if not before:
            raise CaptureError("there is nothing above your mention in this thread to capture")
        # The flagged reply is the newest non-human message before the mention, else the newest message.
        bots = [m for m in before if m.is_bot]
        return (bots or before)[-1], thread
    mention = source.message(flag.channel, flag.ts)
    if mention is not None and (_has_transcript(mention) or _messages_file(mention)):
        return mention, None
    raise CaptureError(
        "mention me inside the thread of the conversation you want to flag, or paste a transcript "
        "(lines starting User: / Assistant:) or attach a .json/.jsonl file of messages"
    )


def _conversation(
    flagged: Message, thread: list[Message] | None, flag: FlagRequest, source: ThreadSource, options: CaptureOptions
) -> tuple[list[Turn], str, list[str]]:
    """The turns to store, the source kind, and warnings for the flagger."""
    warnings: list[str] = []
    file = _messages_file(flagged)
    if file is not None:
        try:
            return parse_messages_file(file.name, source.download(file, max_bytes=MAX_FILE_BYTES)), "file", warnings
        except ValueError as exc:
            raise CaptureError(f"could not read the attached file: {exc}") from None
    pasted = parse_pasted(flagged.content(with_files=False))
    if pasted is not None:
        return pasted, "transcript", warnings
    if thread is None:
        parent_ts = flagged.thread_ts
        thread = source.thread(flag.channel, parent_ts) if parent_ts else [flagged]
    upto = [m for m in thread if _ts(m.ts) <= _ts(flagged.ts) and m.is_conversation and not _is_own(m, source)]
    turns = []
    for message in upto:
        content = message.content(with_files=True).strip()
        if content:
            turns.append(Turn(role=_role(message, options.assistant_ids), content=content))
    if not turns:
        raise CaptureError("that message has no text or files to capture")
    turns = merge_turns(turns)
    if not any(t.role == "assistant" for t in turns):
        warnings.append(
            "no reply from the AI system was found in this thread: set EVALBOT_ASSISTANT_IDS to its bot or user id "
            "so its messages are recorded as assistant turns"
        )
    return turns, "slack", warnings


def _add_flagger(case: Case, flag: FlagRequest, *, author: Author, corpus: Corpus, engine: Engine, thread_ts: str) -> CaptureResult:
    new = flag.user_id not in case.source.flagged_by
    if new:
        with corpus.change(author=author, message=f"Flag {case.id}: also flagged by {flag.user_id}") as tx:
            fresh = corpus.find(case.id) or case
            if flag.user_id not in fresh.source.flagged_by:
                source = fresh.source.model_copy(update={"flagged_by": [*fresh.source.flagged_by, flag.user_id]})
                case = fresh.model_copy(update={"source": source})
                tx.write(case)
            else:
                case, new = fresh, False
    # Always indexed: a retry after a crash between the commit and this write still indexes the case.
    _record(engine, case=case, flag=flag)
    # The reply is re-rendered for a new flagger, so it keeps naming the near-duplicates.
    dupes = near_duplicates(case, corpus) if new else []
    return CaptureResult(case=case, created=False, new_flagger=new, thread_ts=thread_ts, near_duplicates=dupes)


def _record(engine: Engine, *, case: Case, flag: FlagRequest) -> None:
    """The flag row and the index row: one statement each, committed as it completes. On SQLite a transaction
    holds the one writer lock from its first write to its commit, and the flag inbox's ack path waits for that
    lock; a single statement in autocommit mode holds it only while SQLite itself writes (`bot.store.writes`)."""
    writes.write(engine, writes.insert_ignore(engine, Flag, {
        "case_id": case.id, "channel": flag.channel, "ts": flag.ts, "user_id": flag.user_id, "trigger": flag.trigger,
        "note": flag.note, "flagged_at": utcnow()}, keys=["case_id", "user_id"]))  # once per case and flagger
    caseindex.write(engine, case)


def _draft(turns: list[Turn], note: str | None, options: CaptureOptions) -> Draft:
    if options.drafter is not None:
        try:
            drafted = options.drafter(turns, note)
        except Exception:  # noqa: BLE001 - drafting is best effort; the capture must succeed without it
            log.warning("drafting a title failed; using the heuristic title", exc_info=True)
            drafted = None
        if drafted is not None and drafted.title.strip():
            return Draft(title=_clip(drafted.title.strip()), rubric=(drafted.rubric or "").strip() or None)
    return Draft(title=heuristic_title(turns, note))


def heuristic_title(turns: list[Turn], note: str | None) -> str:
    """A title from the flagger's note, else from the question the flagged reply answered."""
    if note:
        return _clip(note[0].upper() + note[1:])
    users = [t for t in turns if t.role == "user"]
    question = (users[-1] if users else turns[-1]).content
    first_line = next((line.strip() for line in question.splitlines() if line.strip()), "") or "(no text)"
    return _clip(f"Reply to: {first_line}")


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= TITLE_CHARS else text[: TITLE_CHARS - 1].rstrip() + "…"


def _ts(ts: str) -> tuple[int, int]:
    seconds, _, micros = (ts or "0").partition(".")
    return int(seconds or 0), int(micros or 0)


def _is_own(message: Message, source: ThreadSource) -> bool:
    return bool(
        (source.bot_id and message.bot_id == source.bot_id)
        or (source.bot_user_id and message.user == source.bot_user_id)
    )


def _role(message: Message, assistant_ids: frozenset[str]) -> Role:
    if assistant_ids:
        return "assistant" if message.author_ids & assistant_ids else "user"
    # Without configured ids, any other bot in the thread is taken to be the AI system.
    return "assistant" if message.is_bot else "user"


def _has_transcript(message: Message) -> bool:
    return parse_pasted(message.text) is not None


def _messages_file(message: Message) -> SharedFile | None:
    for file in message.files:
        if file.name.lower().endswith((".json", ".jsonl")):
            return file
    return None


def _safe_name(source: ThreadSource, user_id: str) -> str:
    try:
        return source.user_name(user_id)
    except CaptureError:
        return user_id


def remember_reply(engine: Engine, *, case_id: str, channel: str, message_ts: str) -> None:
    """Record where the bot answered a capture, so later flags and triage update that message."""
    writes.write(engine, writes.upsert(engine, CaptureReply, {"case_id": case_id, "channel": channel,
                                                              "message_ts": message_ts}, keys=["case_id"]))


def reply_of(engine: Engine, *, case_id: str) -> tuple[str, str] | None:
    """(channel, message_ts) of the bot's capture reply for a case, if it posted one."""
    with session_scope(engine) as session:
        row = session.get(CaptureReply, case_id)
        return (row.channel, row.message_ts) if row else None

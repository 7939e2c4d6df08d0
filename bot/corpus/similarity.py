"""Near-duplicate cases: offline text similarity of conversations (rapidfuzz), no network, no Slack.

A conversation is compared as one normalised, role-tagged text (lower case, punctuation dropped, whitespace
collapsed, the last MAX_CHARS kept) with rapidfuzz's normalised Indel similarity (`fuzz.ratio`). Case files are
read through a small cache keyed by file mtime and size, so a capture or a promotion re-reads only what changed.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from rapidfuzz import fuzz, process

from bot.core.errors import EvalbotError
from bot.corpus.files import STATUS_DIRS, Corpus
from bot.corpus.schema import Case, Turn

THRESHOLD = 0.85  # 0..1; two captures of the same failure score well above, unrelated ones well below
LIMIT = 3
MAX_CHARS = 6000  # long threads: the end (with the flagged reply) is what identifies the failure
_PUNCTUATION = re.compile(r"[^\w\s]+")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class NearDuplicate:
    """An existing case whose conversation is very similar to another's."""

    case_id: str
    title: str
    status: str
    permalink: str | None
    score: float  # 0..1


@dataclass(frozen=True)
class _Entry:
    title: str
    status: str
    permalink: str | None
    text: str


def normalise(text: str) -> str:
    """Lower case, punctuation dropped, whitespace collapsed."""
    return _SPACE.sub(" ", _PUNCTUATION.sub(" ", text.lower())).strip()


def conversation_text(turns: Sequence[Turn]) -> str:
    """The text a conversation is compared by: role-tagged normalised turns, the last MAX_CHARS of them."""
    text = " ".join(f"{turn.role}: {normalise(turn.content)}" for turn in turns)
    return text[-MAX_CHARS:]


def rank(text: str, others: Mapping[str, str], *, threshold: float = THRESHOLD, limit: int = LIMIT) -> list[tuple[str, float]]:
    """(key, score) of the `others` texts at least `threshold` similar to `text`, most similar first."""
    if not text or not others:
        return []
    found = process.extract(text, others, scorer=fuzz.ratio, processor=None, score_cutoff=threshold * 100, limit=limit)
    return sorted(((key, round(score / 100, 3)) for _, score, key in found), key=lambda pair: (-pair[1], pair[0]))


class _TextCache:
    """Per corpus folder: case id -> ((inode, mtime, size), entry), refreshed from a directory scan on each use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._folders: dict[Path, dict[str, tuple[tuple[int, int, int], _Entry]]] = {}

    def entries(self, corpus: Corpus) -> dict[str, _Entry]:
        with self._lock:
            old = self._folders.get(corpus.root, {})
        fresh: dict[str, tuple[tuple[int, int, int], _Entry]] = {}
        for status, folder in STATUS_DIRS.items():
            try:
                listing = list(os.scandir(corpus.root / folder))
            except FileNotFoundError:
                continue
            for item in listing:
                case_id, dot, suffix = item.name.partition(".")
                if suffix != "yaml" or not dot or item.name.startswith("."):
                    continue
                try:
                    stat = item.stat()
                except FileNotFoundError:
                    continue  # removed since the scan listed it
                key = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
                cached = old.get(case_id)
                if cached and cached[0] == key and cached[1].status == status:
                    fresh[case_id] = cached
                    continue
                try:
                    case = corpus.load(case_id, status)
                except EvalbotError:
                    continue  # an invalid file is `corpus validate`'s business, not a duplicate
                fresh[case_id] = (key, _entry(case))
        with self._lock:
            self._folders[corpus.root] = fresh
        return {case_id: value[1] for case_id, value in fresh.items()}


def _entry(case: Case) -> _Entry:
    return _Entry(title=case.title, status=case.status, permalink=case.source.permalink, text=conversation_text(case.conversation))


_CACHE = _TextCache()


def warm(corpus: Corpus) -> int:
    """Read every case into the cache now (at start), so the first capture does not pay for it; returns the count."""
    return len(_CACHE.entries(corpus))


def near_duplicates(case: Case, corpus: Corpus, *, threshold: float = THRESHOLD, limit: int = LIMIT) -> list[NearDuplicate]:
    """Other cases and candidates of the corpus whose conversation is at least `threshold` similar to `case`'s."""
    entries = _CACHE.entries(corpus)
    entries.pop(case.id, None)
    texts = {case_id: entry.text for case_id, entry in entries.items()}
    return [
        NearDuplicate(case_id=case_id, title=entries[case_id].title, status=entries[case_id].status,
                      permalink=entries[case_id].permalink, score=score)
        for case_id, score in rank(conversation_text(case.conversation), texts, threshold=threshold, limit=limit)
    ]

"""Near-duplicate cases: offline text similarity of conversations (rapidfuzz), no network, no Slack.

A conversation is compared as one normalised, role-tagged text (lower case, punctuation dropped, whitespace
collapsed, the last MAX_CHARS kept) with rapidfuzz's normalised Indel similarity (`fuzz.ratio`). Case files are
read through a cache keyed by file inode, mtime and size (and skipped entirely while the folders are
unchanged), so a capture or a promotion re-reads only what changed, and a new process starts from the texts
kept in the git folder (by `warm`, and by a full index rebuild, which parses every file anyway: `keep`). Files
not covered by kept texts are parsed in worker processes when there are many (`bot.corpus.bulk`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rapidfuzz import fuzz, process

from bot.core.errors import EvalbotError
from bot.corpus.bulk import map_chunks
from bot.corpus.files import STATUS_DIRS, Corpus, atomic_write
from bot.corpus.gitrepo import GitRepo
from bot.corpus.schema import Case, Turn

log = logging.getLogger(__name__)

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


_SETTLE_NS = 2_000_000_000
_Stat = tuple[int, int, int]  # inode, mtime (ns), size: a file whose three are unchanged is not read again


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


@dataclass
class _Folder:
    """One corpus folder's texts, with what it takes to tell whether they are still current."""

    files: dict[str, tuple[_Stat, _Entry]] = field(default_factory=dict)
    dirs: tuple[tuple[int, int], ...] = ()  # (inode, mtime ns) of each status folder when last scanned
    ids: list[str] = field(default_factory=list)  # the same order as `texts`, for rapidfuzz's list scorer
    texts: list[str] = field(default_factory=list)
    settled: bool = False  # the folders' mtimes were old enough when scanned to be trusted (see _dir_stamps)


class _TextCache:
    """Per corpus folder: case id -> (file stat, entry), refreshed when a status folder changed.

    Case files are written by atomic rename (and git replaces files the same way), which changes the folder's
    mtime, so an unchanged pair of folder mtimes means an unchanged set of files and nothing is stat-ed: at
    20,000 cases, a capture's check costs the fuzzy match only. `warm` also keeps the texts in the git folder
    (`.git/evalbot/similarity.json`) so a new worker reads one file instead of parsing every case.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._folders: dict[Path, _Folder] = {}

    def folder(self, corpus: Corpus, *, persisted: dict[str, tuple[_Stat, _Entry]] | None = None) -> _Folder:
        with self._lock:
            old = self._folders.get(corpus.root)
        dirs = _dir_stamps(corpus)
        if old is not None and old.settled and old.dirs == dirs and persisted is None:
            return old
        known = dict(persisted or {}) | (old.files if old else {})
        files: dict[str, tuple[_Stat, _Entry]] = {}
        unread: dict[tuple[str, str], _Stat] = {}  # (case id, status) -> the stat the file had when listed
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
                cached = known.get(case_id)
                if cached and cached[0] == key and cached[1].status == status:
                    files[case_id] = cached
                else:
                    unread[(case_id, status)] = key
        # A first start reads every case: in worker processes when there are many (bulk).
        for entries in map_chunks(corpus, sorted(unread), _entries_chunk):
            for case_id, status, entry in entries:
                files[case_id] = (unread[(case_id, status)], entry)
        ids = sorted(files)
        # Like git's "racily clean" entries: a folder changed within the clock's granularity of the scan may change
        # again with the same mtime, so it is only trusted once its mtime is comfortably in the past.
        settled = all(time.time_ns() - mtime > _SETTLE_NS for _, mtime in dirs)
        fresh = _Folder(files=files, dirs=dirs, ids=ids, texts=[files[case_id][1].text for case_id in ids], settled=settled)
        with self._lock:
            self._folders[corpus.root] = fresh
        return fresh


def _dir_stamps(corpus: Corpus) -> tuple[tuple[int, int], ...]:
    stamps = []
    for folder in STATUS_DIRS.values():
        try:
            stat = (corpus.root / folder).stat()
        except FileNotFoundError:
            stamps.append((0, 0))
            continue
        stamps.append((stat.st_ino, stat.st_mtime_ns))
    return tuple(stamps)


def _entry(case: Case) -> _Entry:
    return _Entry(title=case.title, status=case.status, permalink=case.source.permalink, text=conversation_text(case.conversation))


def _entries_chunk(root: str, items: list[tuple[str, str]]) -> list[tuple[str, str, _Entry]]:
    """(case id, status, entry) of the readable files among (case id, status) `items`."""
    corpus = Corpus(Path(root))
    entries = []
    for case_id, status in items:
        try:
            entries.append((case_id, status, _entry(corpus.load(case_id, status))))
        except EvalbotError:
            continue  # an invalid file is `corpus validate`'s business, not a duplicate
    return entries


_CACHE = _TextCache()
_PERSIST_VERSION = 1


def _persist_path(corpus: Corpus) -> Path | None:
    repo = GitRepo.find(corpus.root) if corpus.root.is_dir() else None
    if repo is None:
        return None
    return repo.git_dir / "evalbot" / f"similarity-{hashlib.sha1(str(corpus.root).encode()).hexdigest()[:12]}.json"


def _load_persisted(path: Path | None) -> dict[str, tuple[_Stat, _Entry]]:
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("version") != _PERSIST_VERSION or data.get("max_chars") != MAX_CHARS:
            return {}
        return {case_id: ((row[0], row[1], row[2]), _Entry(title=row[3], status=row[4], permalink=row[5], text=row[6]))
                for case_id, row in data["files"].items()}
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return {}  # a missing or damaged cache only costs a full read


def _save_persisted(path: Path | None, folder: _Folder) -> None:
    if path is None:
        return
    rows = {case_id: [*stat, entry.title, entry.status, entry.permalink, entry.text]
            for case_id, (stat, entry) in folder.files.items()}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps({"version": _PERSIST_VERSION, "max_chars": MAX_CHARS, "files": rows}))
    except OSError as exc:
        log.info("similarity cache not saved (%s): the next start reads every case", exc)


def stat_key(path: Path) -> _Stat | None:
    """What tells whether a case file changed since its text was kept; taken before the file is read."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


def cache_entry(case: Case) -> _Entry:
    """What the cache keeps of a case: its title, status, permalink and conversation text."""
    return _entry(case)


def keep(corpus: Corpus, entries: Mapping[str, tuple[_Stat, _Entry]]) -> None:
    """Keep the texts of every case file, just read elsewhere (a full index rebuild), for the next `warm`: a first
    start then parses each file once, not once for the index and again for this cache."""
    _save_persisted(_persist_path(corpus), _Folder(files=dict(entries)))


def warm(corpus: Corpus) -> int:
    """Read every case into the cache now (at start), so the first capture does not pay for it; returns the count."""
    path = _persist_path(corpus)
    folder = _CACHE.folder(corpus, persisted=_load_persisted(path))
    _save_persisted(path, folder)
    return len(folder.files)


def near_duplicates(case: Case, corpus: Corpus, *, threshold: float = THRESHOLD, limit: int = LIMIT) -> list[NearDuplicate]:
    """Other cases and candidates of the corpus whose conversation is at least `threshold` similar to `case`'s."""
    folder = _CACHE.folder(corpus)
    text = conversation_text(case.conversation)
    if not text or not folder.texts:
        return []
    # One more than asked for: the case itself may be among the texts.
    found = process.extract(text, folder.texts, scorer=fuzz.ratio, processor=None, score_cutoff=threshold * 100,
                            limit=limit + 1)
    scored = sorted(((folder.ids[index], round(score / 100, 3)) for _, score, index in found if folder.ids[index] != case.id),
                    key=lambda pair: (-pair[1], pair[0]))[:limit]
    return [
        NearDuplicate(case_id=case_id, title=entry.title, status=entry.status, permalink=entry.permalink, score=score)
        for case_id, score in scored
        for entry in (folder.files[case_id][1],)
    ]

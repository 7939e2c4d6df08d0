"""Keeps the database's case index current with the corpus files, parsing only what git says changed.

Files are the truth; the index (`case_index`) is what listings read. `refresh` compares the corpus with the
commit the index was built from (`index_state`): the files `git diff` names since that commit, the files
`git status` shows uncommitted now, and the ones that were uncommitted last time are parsed again; nothing
else is. An index that is current costs one `git rev-parse` and one `git status`. A corpus outside git, an
index built from a commit git no longer knows (a force-push), or `full=True` rebuild the whole index, parsing
the files in parallel processes when there are many (`bot.corpus.bulk`).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import insert
from sqlmodel import Session, col, delete, func, select

from bot.core.clock import utcnow
from bot.core.errors import EvalbotError
from bot.corpus.bulk import map_chunks
from bot.corpus.files import STATUS_DIRS, Corpus
from bot.corpus.gitrepo import GitRepo
from bot.corpus.index import index_row, listing
from bot.store.tables import CaseIndex, IndexState

Mode = Literal["full", "incremental", "unchanged"]
_FOLDER_STATUS = {folder: status for status, folder in STATUS_DIRS.items()}


@dataclass
class Refreshed:
    """What a refresh did: how, how many files it parsed, the rows now indexed, and each unreadable file."""

    mode: Mode
    parsed: int
    indexed: int
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _GitView:
    head: str | None
    dirty: set[str]  # case files (relative to the corpus folder) that differ from HEAD or are untracked


def case_file(rel: str) -> tuple[str, str] | None:
    """(case id, status) of a path like `cases/abc12345.yaml` relative to the corpus folder, else None."""
    folder, _, name = rel.partition("/")
    stem, dot, suffix = name.partition(".")
    if folder not in _FOLDER_STATUS or suffix != "yaml" or not dot or not stem or "/" in name or name.startswith("."):
        return None
    return stem, _FOLDER_STATUS[folder]


def _git(repo: GitRepo, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-c", "core.quotepath=off", *args], cwd=repo.top, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "LC_ALL": "C", "GIT_OPTIONAL_LOCKS": "0"})


def _scope(corpus: Corpus, repo: GitRepo) -> tuple[str, list[str]]:
    """The corpus folder's prefix inside the work tree and the pathspecs of its case folders."""
    prefix = corpus.root.relative_to(repo.top.resolve()).as_posix()
    prefix = "" if prefix == "." else prefix + "/"
    return prefix, [f"{prefix}{folder}" for folder in STATUS_DIRS.values()]


def _view(corpus: Corpus, repo: GitRepo) -> _GitView | None:
    head = _git(repo, "rev-parse", "--verify", "-q", "HEAD")
    prefix, specs = _scope(corpus, repo)
    # GIT_OPTIONAL_LOCKS=0: a status that only reads must not take index.lock from a writer.
    status = _git(repo, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames", "--", *specs)
    if status.returncode != 0:
        return None
    dirty = {entry[3:][len(prefix):] for entry in status.stdout.split("\0") if len(entry) > 3}
    return _GitView(head=head.stdout.strip() if head.returncode == 0 else None, dirty=dirty)


def _changed_since(corpus: Corpus, repo: GitRepo, old: str, new: str) -> set[str] | None:
    """Case paths changed between two commits, or None when `old` is not a commit git knows."""
    if old == new:
        return set()
    prefix, specs = _scope(corpus, repo)
    diff = _git(repo, "diff", "--name-only", "-z", "--no-renames", old, new, "--", *specs)
    if diff.returncode != 0:
        return None
    return {name[len(prefix):] for name in diff.stdout.split("\0") if name}


Kept = dict[str, tuple[Any, Any]]  # case id -> what the near-duplicate cache keeps of it (similarity.keep)


def _parse_chunk(root: str, items: list[tuple[str, str]]) -> tuple[list[dict[str, Any]], list[tuple[str, str]], Kept]:
    """Index rows of the readable files among (case id, status) `items`, (path, problem) for the others, and what
    the near-duplicate cache keeps of each readable one."""
    from bot.corpus import similarity  # rapidfuzz: not for a `corpus list` that has nothing to parse

    corpus = Corpus(Path(root))
    rows: list[dict[str, Any]] = []
    problems: list[tuple[str, str]] = []
    kept: Kept = {}
    for case_id, status in items:
        stat = similarity.stat_key(corpus.path_for(case_id, status))  # before reading: a later change is noticed
        try:
            case = corpus.load(case_id, status)
        except EvalbotError as exc:
            problems.append((f"{STATUS_DIRS[status]}/{case_id}.yaml", str(exc)))
            continue
        rows.append(index_row(case).model_dump())
        if stat is not None:
            kept[case_id] = (stat, similarity.cache_entry(case))
    return rows, problems, kept


def _state(session: Session, corpus: Corpus) -> IndexState | None:
    return session.get(IndexState, str(corpus.root))


def _full(session: Session, corpus: Corpus) -> tuple[int, dict[str, str]]:
    items = sorted(corpus.ids().items())
    session.exec(delete(CaseIndex))
    problems: dict[str, str] = {}
    parsed = 0
    kept: Kept = {}
    for rows, chunk_problems, chunk_kept in map_chunks(corpus, items, _parse_chunk):
        _insert(session, rows)
        parsed += len(rows) + len(chunk_problems)
        problems.update(chunk_problems)
        kept.update(chunk_kept)
    from bot.corpus import similarity

    similarity.keep(corpus, kept)  # the capture worker's first warm reads these instead of every file again
    return parsed, problems


def _apply(session: Session, corpus: Corpus, paths: set[str], problems: dict[str, str]) -> int:
    """Re-read the cases behind `paths` (changed, added or removed files); returns how many files were read."""
    ids = {found[0] for found in map(case_file, paths) if found}
    parsed = 0
    for case_id in sorted(ids):
        for folder in STATUS_DIRS.values():
            problems.pop(f"{folder}/{case_id}.yaml", None)
        session.exec(delete(CaseIndex).where(col(CaseIndex.id) == case_id))
        # Like Corpus.ids(): when a file exists in both folders, the promoted one counts.
        on_disk = [status for status in STATUS_DIRS if corpus.path_for(case_id, status).is_file()]
        if not on_disk:
            continue
        rows, found, _ = _parse_chunk(str(corpus.root), [(case_id, on_disk[-1])])
        parsed += 1
        problems.update(found)
        _insert(session, rows)
    return parsed


def _insert(session: Session, rows: list[dict[str, Any]]) -> None:
    # A Core executemany on the session's connection: the ORM's bulk insert costs 4 times as much per row.
    if rows:
        session.connection().execute(insert(CaseIndex.__table__), rows)  # type: ignore[attr-defined]


def refresh(session: Session, corpus: Corpus, *, full: bool = False) -> Refreshed:
    """Bring the index in step with the files: incrementally when it can, in full when it must or is asked."""
    repo = GitRepo.find(corpus.root) if corpus.root.is_dir() else None
    view = _view(corpus, repo) if repo else None
    state = _state(session, corpus)
    changed: set[str] | None = None
    if not full and view is not None and view.head and state is not None and state.commit:
        since = _changed_since(corpus, repo, state.commit, view.head) if repo else None
        if since is not None:
            changed = since | view.dirty | set(state.dirty)
    problems: dict[str, str] = dict(state.problems) if state is not None and changed is not None else {}
    if changed is None:
        mode: Mode = "full"
        parsed, problems = _full(session, corpus)
    elif changed:
        mode = "incremental"
        parsed = _apply(session, corpus, changed, problems)
    else:
        mode, parsed = "unchanged", 0
    if state is None:
        state = IndexState(root=str(corpus.root))
    if mode != "unchanged" or state.commit != (view.head if view else None):
        state.commit = view.head if view else None
        state.dirty = sorted(view.dirty) if view else []
        state.problems = problems
        state.refreshed_at = utcnow()
        session.add(state)
    indexed = session.exec(select(func.count()).select_from(CaseIndex)).one()
    return Refreshed(mode=mode, parsed=parsed, indexed=indexed, problems=[problems[path] for path in sorted(problems)])


def current_listing(session: Session, corpus: Corpus, *, status: str | None = None, limit: int = 20,
                    offset: int = 0) -> tuple[list[CaseIndex], int, list[str]]:
    """A page of the index (newest first), its total and the unreadable files, after bringing it up to date."""
    problems = refresh(session, corpus).problems
    rows, total = listing(session, status=status, limit=limit, offset=offset)
    return rows, total, problems

"""What changed among the case files since a commit, as git tells it: the incremental half of every derived view.

The database's case index (`refresh`) and `validate`'s kept verdicts (`verdicts`) both remember the commit they
were built from and the files that were uncommitted then; `since` names the case files to read again: those
`git diff` names between that commit and HEAD, those `git status` shows uncommitted now, and those uncommitted
last time (they may have been reverted). A current view costs one `git rev-parse` and one `git status`.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass

from bot.corpus.files import STATUS_DIRS, Corpus
from bot.corpus.gitrepo import GitRepo

_FOLDER_STATUS = {folder: status for status, folder in STATUS_DIRS.items()}


@dataclass(frozen=True)
class Changes:
    """HEAD now (None outside git or before the first commit), the case files uncommitted now, and the case files
    to read again (None: every file, since nothing tells what changed)."""

    head: str | None
    dirty: set[str]
    paths: set[str] | None


def case_file(rel: str) -> tuple[str, str] | None:
    """(case id, status) of a path like `cases/abc12345.yaml` relative to the corpus folder, else None."""
    folder, _, name = rel.partition("/")
    stem, dot, suffix = name.partition(".")
    if folder not in _FOLDER_STATUS or suffix != "yaml" or not dot or not stem or "/" in name or name.startswith("."):
        return None
    return stem, _FOLDER_STATUS[folder]


def since(corpus: Corpus, commit: str | None, dirty_before: Iterable[str] = ()) -> Changes:
    """The case files to read again to bring a view built from `commit` (None: none yet) up to HEAD and the files."""
    repo = GitRepo.find(corpus.root) if corpus.root.is_dir() else None
    if repo is None:
        return Changes(head=None, dirty=set(), paths=None)
    prefix, specs = _scope(corpus, repo)
    head = _git(repo, "rev-parse", "--verify", "-q", "HEAD")
    # GIT_OPTIONAL_LOCKS=0: a status that only reads must not take index.lock from a writer.
    status = _git(repo, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames", "--", *specs)
    if status.returncode != 0:
        return Changes(head=None, dirty=set(), paths=None)
    dirty = {entry[3:][len(prefix):] for entry in status.stdout.split("\0") if len(entry) > 3}
    now = head.stdout.strip() if head.returncode == 0 else None
    if now is None or commit is None:
        return Changes(head=now, dirty=dirty, paths=None)
    if commit == now:
        return Changes(head=now, dirty=dirty, paths=dirty | set(dirty_before))
    diff = _git(repo, "diff", "--name-only", "-z", "--no-renames", commit, now, "--", *specs)
    if diff.returncode != 0:  # a commit git no longer knows (history rewritten by a force-push)
        return Changes(head=now, dirty=dirty, paths=None)
    changed = {name[len(prefix):] for name in diff.stdout.split("\0") if name}
    return Changes(head=now, dirty=dirty, paths=changed | dirty | set(dirty_before))


def _git(repo: GitRepo, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-c", "core.quotepath=off", *args], cwd=repo.top, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "LC_ALL": "C", "GIT_OPTIONAL_LOCKS": "0"})


def _scope(corpus: Corpus, repo: GitRepo) -> tuple[str, list[str]]:
    """The corpus folder's prefix inside the work tree and the pathspecs of its case folders."""
    prefix = corpus.root.relative_to(repo.top.resolve()).as_posix()
    prefix = "" if prefix == "." else prefix + "/"
    return prefix, [f"{prefix}{folder}" for folder in STATUS_DIRS.values()]

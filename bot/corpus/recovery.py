"""Recovery at start: whatever a crash left in the corpus folder is settled, so `git status` is empty after it.

A process killed mid-change can leave stray temp files of an atomic write, stale git lock files (`.git/index.lock`
makes every later `git add` fail; `HEAD.lock` or `refs/heads/main.lock`, left by a commit killed while it moved
the branch, every later commit), and case files written but not yet committed. Under the corpus locks (the
writers' and git's, and the replicas' shared lock), `recover` removes the temp files, clears the git locks when no
git process works in this repository, commits every valid case file that differs from HEAD (the flag that wrote it
is still in the inbox and is answered when it is captured again) and restores the ones that are not valid (one
that was never committed is moved to `.git/evalbot/lost+found/`, never deleted).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from bot.core.errors import EvalbotError
from bot.corpus.files import STATUS_DIRS, Corpus
from bot.corpus.gitrepo import SYSTEM, GitRepo

log = logging.getLogger(__name__)

HOLDER_WAIT_SECONDS = 10
STALE_LOCK_SECONDS = 600  # without /proc to ask, a lock this old is taken to be stale
_FOLDER_STATUS = {folder: status for status, folder in STATUS_DIRS.items()}


@dataclass
class Recovered:
    """What recovery found and did."""

    temp_files: list[Path] = field(default_factory=list)
    git_locks_cleared: list[Path] = field(default_factory=list)  # stale .git/…lock files removed
    committed: list[Path] = field(default_factory=list)
    restored: list[Path] = field(default_factory=list)

    @property
    def anything(self) -> bool:
        return bool(self.temp_files or self.git_locks_cleared or self.committed or self.restored)


def recover(corpus: Corpus) -> Recovered:
    """Settle the corpus folder after a crash (see the module docstring); a clean folder is left as it is."""
    done = Recovered()
    with corpus.lock("write"), corpus.shared_lock(), corpus.lock("git"):
        repo = corpus.repo
        done.temp_files = _remove_temp_files(corpus.root)
        done.git_locks_cleared = _clear_stale_git_locks(repo)
        changed = _changed_case_paths(repo, corpus.root)
        for path in changed:
            if not path.exists() or _valid(corpus, path):
                done.committed.append(path)
            else:
                done.restored.append(path)
        if done.committed:
            _commit(repo, done.committed)
        if done.restored:
            _restore(repo, done.restored)
    if done.anything:
        log.warning("corpus recovery: %d temp file(s) removed, %d stale git lock(s) cleared, %d file(s) committed, "
                    "%d restored", len(done.temp_files), len(done.git_locks_cleared), len(done.committed),
                    len(done.restored))
    return done


def _commit(repo: GitRepo, paths: list[Path]) -> None:
    """Commit exactly `paths` as they are on disk, deletions included, as evalbot."""
    ids = ", ".join(sorted({p.stem for p in paths}))
    repo.commit(paths, message=f"Recover {len(paths)} case file(s) left uncommitted by a crash\n\n{ids}", author=SYSTEM)


def _restore(repo: GitRepo, paths: list[Path]) -> None:
    """Put invalid files back as HEAD has them. One that HEAD does not have is moved, not deleted, into
    `.git/evalbot/lost+found/` (out of the work tree, so the folder is clean, and nothing is lost)."""
    for path in paths:
        rel = repo.relative(path)
        if repo.succeeds("cat-file", "-e", f"HEAD:{rel}"):
            repo.run("checkout", "HEAD", "--", rel)
            continue
        kept = repo.git_dir / "evalbot" / "lost+found" / f"{time.strftime('%Y%m%dT%H%M%S')}-{rel.replace('/', '_')}"
        kept.parent.mkdir(parents=True, exist_ok=True)
        path.replace(kept)
        log.warning("corpus recovery: %s was not a valid case and was never committed: moved to %s", rel, kept)


def _remove_temp_files(root: Path) -> list[Path]:
    removed = []
    for folder in (root, *(root / name for name in STATUS_DIRS.values())):
        if folder.is_dir():
            for stray in folder.glob(".*.tmp"):
                stray.unlink(missing_ok=True)
                removed.append(stray)
    return removed


def git_processes_in(top: Path) -> list[int]:
    """Pids of running `git` processes whose working directory is inside `top` (Linux /proc); [] elsewhere."""
    found = []
    proc = Path("/proc")
    top = top.resolve()
    for entry in proc.iterdir() if proc.is_dir() else []:
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "git":
                continue
            cwd = (entry / "cwd").resolve()
        except OSError:
            continue
        if cwd == top or top in cwd.parents:
            found.append(int(entry.name))
    return found


def _git_lock_files(repo: GitRepo) -> list[Path]:
    """The lock files git leaves behind when killed mid-command: the index's, HEAD's and any ref's or config's."""
    git_dir = repo.git_dir
    found = [git_dir / name for name in ("index.lock", "HEAD.lock", "ORIG_HEAD.lock", "packed-refs.lock", "config.lock")]
    found = [path for path in found if path.exists()]
    refs = git_dir / "refs"
    if refs.is_dir():
        found += sorted(refs.rglob("*.lock"))
    return found


def _clear_stale_git_locks(repo: GitRepo) -> list[Path]:
    """Remove the git lock files no running git holds (a lock kept by a running git is left in place)."""
    locks = _git_lock_files(repo)
    if not locks:
        return []
    if Path("/proc").is_dir():
        # git processes of a killed writer may take a moment to go; a git that keeps running keeps its locks.
        deadline = time.monotonic() + HOLDER_WAIT_SECONDS
        while (holders := git_processes_in(repo.top)) and time.monotonic() < deadline:
            time.sleep(0.1)
        if holders:
            log.warning("%s held by running git process(es) %s: left in place", ", ".join(map(str, locks)), holders)
            return []
    else:
        locks = [lock for lock in locks if time.time() - lock.stat().st_mtime >= STALE_LOCK_SECONDS]
    for lock in locks:
        lock.unlink(missing_ok=True)
        log.warning("removed a stale %s left by a git process that stopped mid-command", lock)
    return locks


def _changed_case_paths(repo: GitRepo, root: Path) -> list[Path]:
    """Case files (in candidates/ and cases/) that differ from HEAD: new, changed, deleted, staged or not."""
    folders = [str((root / name).resolve().relative_to(repo.top.resolve())) for name in STATUS_DIRS.values()]
    out = repo.run("status", "--porcelain", "-z", "--untracked-files=all", "--", *folders)
    paths: list[Path] = []
    entries = iter(out.split("\0"))
    for entry in entries:
        if len(entry) < 4:
            continue
        code, rel = entry[:2], entry[3:]
        paths.append(repo.top / rel)
        if "R" in code or "C" in code:
            paths.append(repo.top / next(entries, ""))  # the rename's source follows its target
    return [p for p in dict.fromkeys(paths) if p.suffix == ".yaml" and not p.name.startswith(".")]


def _valid(corpus: Corpus, path: Path) -> bool:
    status = _FOLDER_STATUS.get(path.parent.name)
    if status is None:
        return False
    try:
        corpus.load(path.stem, status)
    except EvalbotError as exc:
        log.warning("restoring %s, which is not a valid case file: %s", path, exc)
        return False
    return True

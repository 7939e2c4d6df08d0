"""Git plumbing for the corpus: init, commit exactly the given paths as a given author, pull and push.

Runs the `git` command line; every call is bounded in time and its failures become CorpusError, with git's
whole message. Nothing depends on the machine's git config: every commit, rebase and stash runs with an
explicit author and committer (and dates from `bot.core.clock`). A commit is built in a private index from
HEAD plus the given paths (`commit-tree`, then `update-ref` as a compare-and-set on HEAD), so whatever else is
staged or untracked in a shared work tree is never swept in, and a folder without a first commit works too.
"""

from __future__ import annotations

import functools
import logging
import os
import subprocess
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bot.core.clock import utcnow
from bot.core.errors import CorpusError, RebaseStoppedError

log = logging.getLogger(__name__)

COMMITTER = ("evalbot", "evalbot@localhost")
DEFAULT_BRANCH = "main"
_PUSH_REFUSED = ("rejected", "fetch first", "non-fast-forward")


@dataclass(frozen=True)
class Author:
    """Who caused a corpus change: a Slack user id and, when known, their display name."""

    user_id: str
    name: str | None = None
    email: str | None = None

    @property
    def git_identity(self) -> tuple[str, str]:
        return self.name or self.user_id, self.email or f"{self.user_id}@users.slack"


SYSTEM = Author(user_id="evalbot", name="evalbot")


def identity_env(author: Author | None = None, *, when: datetime | None = None) -> dict[str, str]:
    """Environment giving git an explicit committer (evalbot) and author (`author`, else evalbot too)."""
    name, email = (author or SYSTEM).git_identity
    date = (when or utcnow()).isoformat()
    return {
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_AUTHOR_DATE": date,
        "GIT_COMMITTER_NAME": COMMITTER[0],
        "GIT_COMMITTER_EMAIL": COMMITTER[1],
        "GIT_COMMITTER_DATE": date,
    }


def _read(path: Path) -> str | None:
    """The file's text exactly as stored (no newline translation), or None when absent, a folder or not UTF-8."""
    try:
        return path.read_bytes().decode("utf-8")
    except (FileNotFoundError, IsADirectoryError, UnicodeDecodeError):
        return None


class GitRepo:
    """The git work tree that holds the corpus folder."""

    def __init__(self, top: Path):
        self.top = top

    @classmethod
    def find(cls, folder: Path) -> GitRepo | None:
        """The work tree containing the existing `folder`, or None when it is in no git repository."""
        probe = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"], cwd=folder, capture_output=True, text=True, timeout=30
        )
        return cls(Path(probe.stdout.strip())) if probe.returncode == 0 else None

    @classmethod
    def for_folder(cls, folder: Path) -> GitRepo:
        """The work tree containing `folder`, initialising one in `folder` (branch main) when there is none."""
        folder.mkdir(parents=True, exist_ok=True)
        found = cls.find(folder)
        if found is not None:
            return found
        repo = cls(folder)
        repo.run("init", "-q", "-b", DEFAULT_BRANCH)
        return repo

    def run(self, *args: str, env: dict[str, str] | None = None, timeout: float = 60, stdin: str | None = None) -> str:
        """Run git in the work tree; a failure is a CorpusError carrying git's whole message."""
        done = self._git(*args, env=env, timeout=timeout, stdin=stdin)
        if done.returncode != 0:
            output = (done.stderr.strip() + "\n" + done.stdout.strip()).strip()
            raise CorpusError(f"git {args[0]} failed: {output or f'exit status {done.returncode}'}")
        return done.stdout

    def succeeds(self, *args: str, env: dict[str, str] | None = None) -> bool:
        """Whether a git query exits 0 (for probes whose failure is an answer, not an error)."""
        return self._git(*args, env=env, timeout=30).returncode == 0

    def _git(self, *args: str, env: dict[str, str] | None, timeout: float, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", **(env or {})}
        try:
            return subprocess.run(
                ["git", "-c", "commit.gpgsign=false", "-c", "core.quotepath=off", *args],
                cwd=self.top, capture_output=True, text=True, env=full_env, timeout=timeout, input=stdin,
            )
        except FileNotFoundError:
            raise CorpusError("git is not installed: install git so evalbot can version the corpus") from None
        except subprocess.TimeoutExpired:
            raise CorpusError(f"git {args[0]} did not finish within {timeout:.0f} s") from None

    @functools.cached_property
    def git_dir(self) -> Path:
        """The repository's .git folder (asked once: it does not move)."""
        return (self.top / self.run("rev-parse", "--git-dir").strip()).resolve()

    def relative(self, path: Path) -> str:
        """`path` relative to the work tree's top, as git names it."""
        return str(path.resolve().relative_to(self.top.resolve()))

    def commit(self, paths: list[Path], *, message: str, author: Author, when: datetime | None = None) -> bool:
        """Commit `paths` as they are on disk (added, changed or deleted) as `author`; False when none changed."""
        rel = list(dict.fromkeys(self.relative(p) for p in paths))

        def stage(private: dict[str, str]) -> None:
            present = [r for r in rel if (self.top / r).exists()]
            gone = [r for r in rel if r not in present]
            if present:
                self.run("add", "-A", "--", *present, env=private)
            if gone:
                self.run("rm", "-r", "-q", "--cached", "--ignore-unmatch", "--", *gone, env=private)

        return self._commit(rel, stage, message=message, author=author, when=when) is not None

    def commit_files(self, files: dict[Path, str | None], *, message: str, author: Author, when: datetime | None = None,
                     allow_empty: bool = False) -> str | None:
        """Commit exactly these file contents (None: the file is deleted) as `author`, whatever is on disk now.

        So a change commits what it wrote, even when a later change has already rewritten the same file.
        `allow_empty`: commit even when git sees no difference (a decision about a file git never saw).
        Returns the new commit's id, or None when nothing was committed.
        """
        contents = {self.relative(path): text for path, text in files.items()}

        def stage(private: dict[str, str]) -> None:
            # The usual case: the disk still holds what the change left, so git reads the files itself.
            as_on_disk = [rel for rel, text in contents.items() if _read(self.top / rel) == text]
            if as_on_disk:
                self.run("update-index", "--add", "--remove", "--", *as_on_disk, env=private)
            lines = []
            for rel, text in contents.items():
                if rel in as_on_disk:
                    continue
                if text is None:
                    lines.append(f"0 {'0' * 40}\t{rel}")
                else:
                    lines.append(f"100644 {self.run('hash-object', '-w', '--stdin', stdin=text).strip()}\t{rel}")
            if lines:
                self.run("update-index", "--index-info", env=private, stdin="".join(f"{line}\n" for line in lines))

        return self._commit(list(contents), stage, message=message, author=author, when=when, allow_empty=allow_empty)

    def _commit(self, rel: list[str], stage: Callable[[dict[str, str]], None], *, message: str, author: Author,
                when: datetime | None, allow_empty: bool = False) -> str | None:
        """Build the commit in a private index (HEAD + `stage`), then move HEAD only if nobody else did.

        Nothing else is committed, whatever is staged or untracked around these paths; a failure at any step
        leaves git as it was. The message is an exit like the files: it is redacted.
        """
        from bot.core.redaction import redact  # compiled on the first commit, not by commands that only read

        message = redact(message, contacts=False)
        probe = self._git("show", "-s", "--format=%H %T", "HEAD", env=None, timeout=30)
        head, head_tree = probe.stdout.split() if probe.returncode == 0 else (None, None)
        index = self.git_dir / f"evalbot-index-{os.getpid()}-{threading.get_ident()}-{uuid.uuid4().hex[:6]}"
        private = {"GIT_INDEX_FILE": str(index)}
        try:
            if head is not None:
                self.run("read-tree", head, env=private)
            stage(private)
            tree = self.run("write-tree", env=private).strip()
            if not allow_empty and head is None and not self.run("ls-files", env=private).strip():
                return None
            if not allow_empty and tree == head_tree:
                return None
            parents = ["-p", head] if head is not None else []
            sha = self.run("commit-tree", tree, *parents, "-m", message, env=identity_env(author, when=when)).strip()
            self.run("update-ref", "-m", f"evalbot: {message.splitlines()[0]}", "HEAD", sha, head or "")
        finally:
            index.unlink(missing_ok=True)
        # The shared index follows the new HEAD for these paths only (so they show neither staged nor untracked).
        try:
            self.run("reset", "-q", "--", *rel)
        except CorpusError as exc:
            log.warning("committed, but could not refresh git's index for %s: %s", ", ".join(rel), exc)
        return sha

    def uncommit(self, sha: str, paths: list[Path]) -> bool:
        """Take back commit `sha` if it is still HEAD (HEAD returns to its parent; the files are left alone)."""
        if self.head() != sha:
            return False
        parent = self._git("rev-parse", "-q", "--verify", f"{sha}^", env=None, timeout=30)
        if parent.returncode == 0:
            self.run("update-ref", "-m", "evalbot: take back a change", "HEAD", parent.stdout.strip(), sha)
        else:  # it was the first commit: the branch goes back to having none
            self.run("update-ref", "-d", "HEAD", sha)
        rel = list(dict.fromkeys(self.relative(p) for p in paths))
        if parent.returncode == 0:
            self.run("reset", "-q", "--", *rel)
        else:
            self.run("rm", "-r", "-q", "--cached", "--ignore-unmatch", "--", *rel)
        return True

    def has_commits(self) -> bool:
        return self.head() is not None

    def head(self) -> str | None:
        """The current commit id, or None in a repository without commits."""
        probe = self._git("rev-parse", "--verify", "-q", "HEAD", env=None, timeout=30)
        return probe.stdout.strip() if probe.returncode == 0 else None

    def last_change(self, rel_paths: list[str], *, mentioning: str | None = None) -> tuple[str, str, str, datetime] | None:
        """(author name, author email, message line, author date) of the newest commit about a file.

        With `mentioning` (e.g. "Reject abcd1234:"-style lines name a case id), the newest commit with a
        message line "<Verb> <mentioning>:" (also inside a group commit's list), which also finds a decision
        about a file git never saw; otherwise, or when none does, the newest commit touching `rel_paths`.
        """
        if not self.has_commits():
            return None
        fmt = "--format=%an%x1f%ae%x1f%aI%x1f%B%x1e"
        out = ""
        if mentioning:
            out = self.run("log", "-1", fmt, "-E", f"--grep=^(- )?[A-Z][a-z]+ {mentioning}:").strip()
        if not out:
            out = self.run("log", "-1", fmt, "--", *rel_paths).strip()
        if not out:
            return None
        name, email, date, body = out.rstrip("\x1e").split("\x1f", 3)
        line = next((ln.removeprefix("- ") for ln in body.splitlines() if mentioning and f" {mentioning}:" in ln),
                    body.strip().splitlines()[0] if body.strip() else "")
        return name, email, line, datetime.fromisoformat(date)

    def is_dirty(self, folder: Path) -> bool:
        rel = self.relative(folder) or "."
        return bool(self.run("status", "--porcelain", "--", rel).strip())

    def rebasing(self) -> bool:
        """Whether a rebase is stopped half-way in this work tree."""
        return any((self.git_dir / name).exists() for name in ("rebase-merge", "rebase-apply"))

    def pull(self, remote: str) -> None:
        """Fetch `remote` and rebase the current branch onto it (nothing to do when the remote has no such branch)."""
        branch = self.run("symbolic-ref", "--short", "HEAD").strip()
        probe = self._git("ls-remote", "--exit-code", "--heads", remote, branch, env=None, timeout=120)
        if probe.returncode not in (0, 2):  # 2: reachable, but no such branch there yet
            raise CorpusError(f"git ls-remote failed: {probe.stderr.strip() or f'exit status {probe.returncode}'}")
        if probe.returncode == 2:
            return
        if not self.has_commits():  # an empty clone: take the remote's branch as ours
            self.run("pull", "-q", remote, branch, env=identity_env(), timeout=120)
            return
        self._rebase(remote, branch)

    def _rebase(self, remote: str, branch: str) -> None:
        """`pull --rebase` as evalbot; a rebase that stops is aborted, so the work tree is never left half-way."""
        try:
            self.run("pull", "-q", "--rebase", "--autostash", remote, branch, env=identity_env(), timeout=120)
        except CorpusError as exc:
            if self.rebasing():
                try:
                    self.run("rebase", "--abort", env=identity_env())
                except CorpusError as abort:
                    raise CorpusError(f"{exc}; and aborting the rebase failed too: {abort}") from None
                raise RebaseStoppedError(f"rebasing onto {remote} {branch} stopped and was aborted (the local commits are kept): {exc}") from None
            raise

    def push(self, remote: str) -> None:
        """Push HEAD to `remote`; on a rejected (non-fast-forward) push, rebase onto it and try again."""
        branch = self.run("symbolic-ref", "--short", "HEAD").strip()
        for attempt in range(3):
            try:
                self.run("push", "-q", remote, f"HEAD:refs/heads/{branch}", timeout=120)
                return
            except CorpusError as exc:
                if attempt == 2 or not any(s in str(exc) for s in _PUSH_REFUSED):
                    raise
                self._rebase(remote, branch)

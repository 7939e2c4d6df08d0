"""Git plumbing for the corpus: init, commit only given paths as a given author, push with retry.

Runs the `git` command line; every call is bounded in time and its failures become CorpusError.
"""

from __future__ import annotations

import functools
import logging
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bot.core.errors import CorpusError

log = logging.getLogger(__name__)

COMMITTER = ("evalbot", "evalbot@localhost")


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
        """The work tree containing `folder`, initialising one in `folder` when there is none."""
        folder.mkdir(parents=True, exist_ok=True)
        found = cls.find(folder)
        if found is not None:
            return found
        repo = cls(folder)
        repo.run("init", "-q")
        return repo

    def run(self, *args: str, env: dict[str, str] | None = None, timeout: float = 60) -> str:
        full_env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", **(env or {})}
        try:
            done = subprocess.run(
                ["git", "-c", "commit.gpgsign=false", "-c", "core.quotepath=off", *args],
                cwd=self.top,
                capture_output=True,
                text=True,
                env=full_env,
                timeout=timeout,
            )
        except FileNotFoundError:
            raise CorpusError("git is not installed: install git so evalbot can version the corpus") from None
        except subprocess.TimeoutExpired:
            raise CorpusError(f"git {args[0]} did not finish within {timeout:.0f} s") from None
        if done.returncode != 0:
            raise CorpusError(f"git {args[0]} failed: {(done.stderr or done.stdout).strip()[:500]}")
        return done.stdout

    @functools.cached_property
    def git_dir(self) -> Path:
        """The repository's .git folder (asked once: it does not move)."""
        return (self.top / self.run("rev-parse", "--git-dir").strip()).resolve()

    def commit(self, paths: list[Path], *, message: str, author: Author) -> bool:
        """Commit exactly `paths` (added, changed or deleted) as `author`; False when nothing changed."""
        rel = [str(p.resolve().relative_to(self.top.resolve())) for p in paths]
        self.run("add", "-A", "--", *rel)
        name, email = author.git_identity
        env = {
            "GIT_AUTHOR_NAME": name,
            "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": COMMITTER[0],
            "GIT_COMMITTER_EMAIL": COMMITTER[1],
        }
        from bot.core.redaction import redact  # compiled on the first commit, not by commands that only read

        # `commit -- paths` commits only these paths, even if something else is staged in a shared work tree.
        try:
            self.run("commit", "-q", "--no-verify", "-m", redact(message, contacts=False), "--", *rel, env=env)
        except CorpusError as exc:
            if "nothing to commit" in str(exc) or "no changes added" in str(exc):
                return False
            raise
        return True

    def restore(self, paths: list[Path]) -> None:
        """Put `paths` back as they are in HEAD (removing ones HEAD does not have)."""
        for path in paths:
            rel = str(path.resolve().relative_to(self.top.resolve()))
            tracked = subprocess.run(
                ["git", "cat-file", "-e", f"HEAD:{rel}"], cwd=self.top, capture_output=True, timeout=30
            ).returncode == 0
            if tracked:
                self.run("reset", "-q", "--", rel)
                self.run("checkout", "--", rel)
            else:
                self.run("rm", "-q", "--cached", "--ignore-unmatch", "--", rel)
                path.unlink(missing_ok=True)

    def has_commits(self) -> bool:
        return subprocess.run(
            ["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=self.top, capture_output=True, timeout=30
        ).returncode == 0

    def head(self) -> str | None:
        """The current commit id, or None in a repository without commits."""
        if not self.has_commits():
            return None
        return self.run("rev-parse", "HEAD").strip()

    def is_dirty(self, folder: Path) -> bool:
        rel = str(folder.resolve().relative_to(self.top.resolve())) or "."
        return bool(self.run("status", "--porcelain", "--", rel).strip())

    def pull(self, remote: str) -> None:
        """Fetch `remote` and rebase the current branch onto it (nothing to do when the remote has no such branch)."""
        branch = self.run("symbolic-ref", "--short", "HEAD").strip()
        self.run("fetch", "-q", remote, timeout=120)
        probe = subprocess.run(["git", "ls-remote", "--exit-code", "--heads", remote, branch], cwd=self.top,
                               capture_output=True, timeout=120)
        if probe.returncode != 0 or not self.has_commits():
            if probe.returncode == 0:  # an empty clone: take the remote's branch as ours
                self.run("pull", "-q", remote, branch, timeout=120)
            return
        self.run("pull", "-q", "--rebase", "--autostash", remote, branch, timeout=120)

    def push(self, remote: str) -> None:
        """Push HEAD to `remote`; on a rejected (non-fast-forward) push, rebase onto it and try again."""
        branch = self.run("symbolic-ref", "--short", "HEAD").strip()
        for attempt in range(3):
            try:
                self.run("push", "-q", remote, f"HEAD:refs/heads/{branch}", timeout=120)
                return
            except CorpusError as exc:
                if attempt == 2 or not any(s in str(exc) for s in ("rejected", "fetch first", "non-fast-forward")):
                    raise
                self.run("pull", "-q", "--rebase", "--autostash", remote, branch, timeout=120)

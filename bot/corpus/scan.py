"""Secret scanning of a corpus: every file in the folder, and every line ever added to it in git history.

The check a maintainer runs before pushing a corpus made elsewhere (`evalbot corpus scan`); `corpus validate`
runs the file half. The scanner is the redactor itself (`bot.core.redaction.find_secrets`, secrets only: a
corpus may quote a support address on purpose), so whatever the bot would have redacted is reported here.

History is read with `git log -p -U0 --all` over the corpus folder: each run of added lines in a hunk is scanned
as one text (so a private key block spread over lines is found) and each find is mapped to its line in the file
as of that commit. Commit messages are scanned too. A secret is never printed, only where it is and its kind.
"""

from __future__ import annotations

import bisect
import os
import re
import subprocess
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from bot.core.errors import CorpusError
from bot.core.redaction import find_secrets
from bot.corpus.gitrepo import GitRepo

_HUNK = re.compile(r"^@@ -\d+(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_COMMIT = "\x00commit "
GIT_TIMEOUT_S = 300


@dataclass(frozen=True)
class Finding:
    """A secret of `kind` at `line` of `path` (as shown to people), in the working file or in `commit`."""

    path: str
    line: int
    kind: str
    commit: str | None = None  # None: the file as it is now

    def __str__(self) -> str:
        where = f" (history: commit {self.commit[:12]})" if self.commit else ""
        return f"{self.path}:{self.line}: {self.kind}{where}"


def scan_text(text: str, *, first_line: int = 1) -> Iterator[tuple[int, str]]:
    """(line number, kind) of each secret in `text`, whose first line is numbered `first_line`."""
    found = find_secrets(text)
    if not found:
        return
    newlines = [match.start() for match in re.finditer("\n", text)]
    for start, _end, kind in found:
        yield first_line + bisect.bisect_left(newlines, start), kind


def scan_files(root: Path, *, shown_from: Path | None = None, skip: Iterable[str] = ()) -> list[Finding]:
    """Every secret in the text files under `root` (the .git folder and the files `skip` aside: paths as
    `os.scandir` gives them), paths relative to `shown_from`."""
    base = (shown_from or root.parent).resolve()
    findings: list[Finding] = []
    for path in sorted(_files(root, skip=set(skip))):
        try:
            text = path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue  # not text: nothing a person pasted
        if "\x00" not in text:
            findings += findings_in(text, shown=partial(_relative, path, base))
    return findings


def findings_in(text: str, *, shown: Callable[[], str]) -> list[Finding]:
    """The secrets in one file's `text`; `shown` names the file, and is only asked when there is a secret."""
    found = list(scan_text(text))
    if not found:
        return []
    where = shown()
    return [Finding(where, line, kind) for line, kind in found]


def scan_history(root: Path, *, shown_from: Path | None = None) -> list[Finding]:
    """Every secret in a line ever added under `root`, or in a commit message touching it, in every branch.

    Empty when `root` is in no git repository.
    """
    repo = GitRepo.find(root) if root.is_dir() else None
    if repo is None:
        return []
    base = (shown_from or root.parent).resolve()
    top = repo.top.resolve()
    folder = os.path.relpath(root.resolve(), top)
    output = _git(top, "log", "-p", "-U0", "--all", "--no-color", "--no-ext-diff", "--no-renames",
                  "--format=%x00commit %H", "--", folder)
    findings = [
        Finding(_relative(top / path, base), line, kind, commit) for commit, path, line, kind in _added_secrets(output)
    ]
    messages = _git(top, "log", "--all", "--format=%x00%H%x01%B", "--", folder)
    for entry in messages.split("\x00")[1:]:
        commit, _, body = entry.partition("\x01")
        findings += [Finding("commit message", line, kind, commit) for line, kind in scan_text(body.strip("\n"))]
    return findings


def scan_corpus(root: Path, *, history: bool = True) -> list[Finding]:
    """The files' findings, then the history's."""
    return scan_files(root) + (scan_history(root) if history else [])


def _files(root: Path, *, skip: set[str]) -> Iterator[Path]:
    pending = [str(root)]
    while pending:
        with os.scandir(pending.pop()) as entries:  # a DirEntry knows its type without a stat per file
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name != ".git":
                        pending.append(entry.path)
                elif entry.is_file(follow_symlinks=False) and entry.path not in skip:
                    yield Path(entry.path)


def _relative(path: Path, base: Path) -> str:
    """`path` relative to the resolved folder `base`."""
    try:
        return str(path.resolve().relative_to(base))
    except ValueError:
        return str(path)


def _git(top: Path, *args: str) -> str:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    try:
        done = subprocess.run(["git", "-c", "core.quotepath=off", *args], cwd=top, capture_output=True, env=env,
                              timeout=GIT_TIMEOUT_S)
    except FileNotFoundError:
        raise CorpusError("git is not installed: install git to scan the corpus history") from None
    except subprocess.TimeoutExpired:
        raise CorpusError(f"git {args[0]} did not finish within {GIT_TIMEOUT_S} s") from None
    if done.returncode != 0:
        if b"does not have any commits" in done.stderr:
            return ""
        raise CorpusError(f"git {args[0]} failed: {done.stderr.decode('utf-8', 'replace').strip()[:500]}")
    return done.stdout.decode("utf-8", "replace")


def _added_secrets(log: str) -> Iterator[tuple[str, str, int, str]]:
    """(commit, path, line, kind) for each secret in the added lines of a `git log -p -U0` output."""
    for commit, path, first_line, lines in _added_blocks(log.split("\n")):
        for line, kind in scan_text("\n".join(lines), first_line=first_line):
            yield commit, path, line, kind


def _added_blocks(lines: Iterable[str]) -> Iterator[tuple[str, str, int, list[str]]]:
    """Each run of consecutive added lines: (commit, path in the new tree, its first line number, the lines).

    Hunk bodies are read by their counts, so an added line that itself starts with "+++" or "diff" is content.
    """
    commit = path = ""
    iterator = iter(lines)
    for raw in iterator:
        if raw.startswith(_COMMIT):
            commit, path = raw[len(_COMMIT) :].strip(), ""
        elif raw.startswith("+++ "):
            target = raw[4:].strip('"')  # git quotes a path holding a tab, a quote or a backslash
            path = target[2:] if target.startswith("b/") else ""  # "/dev/null": a deletion adds nothing
        elif raw.startswith("@@") and (hunk := _HUNK.match(raw)):
            removed = int(hunk.group(1)) if hunk.group(1) is not None else 1
            line = int(hunk.group(2))
            added = int(hunk.group(3)) if hunk.group(3) is not None else 1
            block: list[str] = []
            block_start = line
            while removed > 0 or added > 0:
                body = next(iterator, None)
                if body is None:
                    break
                if body.startswith("\\"):  # "\ No newline at end of file"
                    continue
                if body.startswith("+") and added > 0:
                    if not block:
                        block_start = line
                    block.append(body[1:])
                    line += 1
                    added -= 1
                    continue
                if body.startswith("-") and removed > 0:
                    removed -= 1
                if block and path:
                    yield commit, path, block_start, block
                block = []
            if block and path:
                yield commit, path, block_start, block

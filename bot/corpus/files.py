"""The corpus folder: case files on disk, atomic writes, one git commit per change, and a writers' lock.

Files are the source of truth. Every path is derived from a validated case id, so nothing outside the
corpus folder is read or written. A change (`with corpus.change(...) as tx`) holds a lock that serialises
writers in this process (a thread lock) and across processes (a file lock in the git directory), writes
each file atomically, and ends in exactly one commit of the touched paths; if anything fails before the
commit, the touched files are restored.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock

from bot.core.errors import AmbiguousIdError, CaseNotFoundError, CorpusError, EvalbotError, InvalidCaseError
from bot.corpus.casefile import dump_case, parse_case
from bot.corpus.gitrepo import Author, GitRepo
from bot.corpus.ids import check_prefix
from bot.corpus.schema import Case

log = logging.getLogger(__name__)

STATUS_DIRS = {"candidate": "candidates", "promoted": "cases"}
_THREAD_LOCKS: dict[tuple[Path, str], threading.RLock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


def _thread_lock(root: Path, name: str) -> threading.RLock:
    with _THREAD_LOCKS_GUARD:
        return _THREAD_LOCKS.setdefault((root, name), threading.RLock())


def atomic_write(path: Path, text: str) -> None:
    """Write `text` to `path` so a crash leaves either the old or the new file, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass
class _Pending:
    """A written change waiting for its commit."""

    paths: list[Path]
    message: str
    author: Author
    done: bool = False
    error: BaseException | None = None


@dataclass
class _CommitQueue:
    pending: list[_Pending] = field(default_factory=list)
    guard: threading.Lock = field(default_factory=threading.Lock)  # protects `pending`
    mutex: threading.Lock = field(default_factory=threading.Lock)  # one committer at a time


_QUEUES: dict[Path, _CommitQueue] = {}


def _commit_queue(root: Path) -> _CommitQueue:
    with _THREAD_LOCKS_GUARD:
        return _QUEUES.setdefault(root, _CommitQueue())


def _by_author(batch: list[_Pending]) -> list[list[_Pending]]:
    groups: list[list[_Pending]] = []
    for entry in batch:
        if groups and groups[-1][0].author == entry.author:
            groups[-1].append(entry)
        else:
            groups.append([entry])
    return groups


def _group_message(group: list[_Pending]) -> str:
    if len(group) == 1:
        return group[0].message
    verbs = {entry.message.split(" ", 1)[0] for entry in group}
    subject = f"{verbs.pop()} {len(group)} cases" if len(verbs) == 1 else f"{len(group)} corpus changes"
    return subject + "\n\n" + "\n".join(f"- {entry.message.splitlines()[0]}" for entry in group)


@dataclass
class CorpusChange:
    """The files one change touches; the change commits them together."""

    corpus: Corpus
    touched: list[Path] = field(default_factory=list)

    def write(self, case: Case) -> Path:
        """Write `case` to the folder of its status, removing its file from the other status folder."""
        path = self.corpus.path_for(case.id, case.status)
        from bot.core.redaction_exits import redact_case  # the rules' regexes compile here, not in `corpus list`

        text = dump_case(redact_case(case))  # the file is the exit: a case made elsewhere is redacted too
        if not (path.exists() and path.read_text(encoding="utf-8") == text):
            atomic_write(path, text)
            self.touched.append(path)
        for status in STATUS_DIRS:
            other = self.corpus.path_for(case.id, status)
            if other != path and other.exists():
                other.unlink()
                self.touched.append(other)
        return path

    def delete(self, case: Case) -> None:
        """Remove the case's file."""
        path = self.corpus.path_for(case.id, case.status)
        if path.exists():
            path.unlink()
            self.touched.append(path)


class Corpus:
    """The corpus folder and the git work tree around it."""

    def __init__(
        self, root: Path, *, push_remote: str | None = None, shared_lock: Callable[[], AbstractContextManager[object]] | None = None
    ):
        self.root = Path(root).expanduser().resolve()
        self.push_remote = push_remote
        # Replicas with their own clones serialise changes through this (a database lock); None on one host.
        self.shared_lock = shared_lock or nullcontext
        self._repo: GitRepo | None = None

    @property
    def repo(self) -> GitRepo:
        if self._repo is None:
            self._repo = GitRepo.for_folder(self.root)
        return self._repo

    def path_for(self, case_id: str, status: str) -> Path:
        """The file of case `case_id` with `status`; the id is validated so the path stays inside the corpus."""
        checked = check_prefix(case_id)
        path = (self.root / STATUS_DIRS[status] / f"{checked}.yaml").resolve()
        if path.parent.parent != self.root:
            raise CorpusError(f"refusing a path outside the corpus folder: {path}")
        return path

    def ids(self, status: str | None = None) -> dict[str, str]:
        """Every case id on disk mapped to its status, read from file names only (cheap)."""
        found: dict[str, str] = {}
        for name, folder in STATUS_DIRS.items():
            if status not in (None, name):
                continue
            directory = self.root / folder
            if directory.is_dir():
                for entry in directory.iterdir():
                    if entry.suffix == ".yaml" and not entry.name.startswith("."):
                        found[entry.stem] = name
        return found

    def resolve(self, prefix: str, *, status: str | None = None) -> tuple[str, str]:
        """The (id, status) of the one case whose id starts with `prefix`."""
        checked = check_prefix(prefix)
        matches = sorted((cid, st) for cid, st in self.ids(status).items() if cid.startswith(checked))
        if not matches:
            kind = {"candidate": "candidate", "promoted": "promoted case"}.get(status or "", "case")
            raise CaseNotFoundError(f"no {kind} has an id starting with '{checked}' (see `list`)")
        if len(matches) > 1:
            shown = ", ".join(cid for cid, _ in matches[:5])
            raise AmbiguousIdError(f"'{checked}' matches {len(matches)} cases ({shown}): type more characters")
        return matches[0]

    def load(self, case_id: str, status: str) -> Case:
        """Read and validate one case file."""
        path = self.path_for(case_id, status)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise CaseNotFoundError(f"case {case_id} is not in the corpus") from None
        case = parse_case(text, where=self.display(path))
        if case.id != path.stem or case.status != status:
            raise InvalidCaseError(
                f"{self.display(path)}: id '{case.id}' and status '{case.status}' must match the file's name and folder"
            )
        return case

    def get(self, prefix: str, *, status: str | None = None) -> Case:
        """The case whose id starts with `prefix` (unique, >= 4 characters)."""
        return self.load(*self.resolve(prefix, status=status))

    def find(self, case_id: str) -> Case | None:
        """The case with exactly this id, or None."""
        for status in STATUS_DIRS:
            if self.path_for(case_id, status).exists():
                return self.load(case_id, status)
        return None

    def scan(self, status: str | None = None) -> tuple[list[Case], list[str]]:
        """Every readable case, and one message per file that is not valid."""
        cases, problems = [], []
        for case_id, st in sorted(self.ids(status).items()):
            try:
                cases.append(self.load(case_id, st))
            except EvalbotError as exc:
                problems.append(str(exc))
        return cases, problems

    def cases(self, status: str | None = None) -> list[Case]:
        """Every case, raising on the first invalid file."""
        cases, problems = self.scan(status)
        if problems:
            raise InvalidCaseError(problems[0])
        return cases

    def display(self, path: Path) -> str:
        try:
            return str(path.resolve().relative_to(self.root.parent))
        except ValueError:
            return str(path)

    @contextmanager
    def lock(self, name: str = "write") -> Iterator[None]:
        """Serialise corpus writers ("write") or git commands ("git"), in this process and in others.

        Two locks so that file writes (and the checks before them) go on while a commit runs; that is what
        lets changes arriving during a commit share the next one. Order: "write" before "git".
        """
        with _thread_lock(self.root, name):
            self.root.mkdir(parents=True, exist_ok=True)
            with FileLock(str(self.repo.git_dir / f"evalbot-corpus-{name}.lock"), timeout=120):
                yield

    @contextmanager
    def change(self, *, author: Author, message: str) -> Iterator[CorpusChange]:
        """File writes that end up committed as `author`; restored if anything fails before the commit.

        On one host, changes that arrive while another commit is running are committed together (group
        commit): one commit per run of consecutive changes by the same author, its message listing each.
        With EVALBOT_GIT_PUSH, each change first pulls the remote, and commits and pushes before the shared
        (cross-replica) lock is released, so replicas with their own clones see each other's cases.
        """
        queue = _commit_queue(self.root)
        with self.lock(), self.shared_lock():
            if self.push_remote:
                self.pull()
            tx = CorpusChange(self)
            try:
                yield tx
            except BaseException:
                if tx.touched:
                    with self.lock("git"):
                        self.repo.restore(tx.touched)
                raise
            if not tx.touched:
                return
            entry = _Pending(paths=list(tx.touched), message=message, author=author)
            with queue.guard:
                queue.pending.append(entry)
            if self.push_remote:
                self._committed(queue, entry)
                self.push()
                return
        self._committed(queue, entry)

    def _committed(self, queue: _CommitQueue, entry: _Pending) -> None:
        self._flush(queue, entry)
        if entry.error is not None:
            raise entry.error

    def _flush(self, queue: _CommitQueue, entry: _Pending) -> None:
        """Commit every pending change (ours included) unless another thread already did."""
        with queue.mutex:
            if entry.done:
                return
            with queue.guard:
                batch, queue.pending = queue.pending, []
            with self.lock("git"):
                for group in _by_author(batch):
                    paths = list(dict.fromkeys(p for e in group for p in e.paths))
                    try:
                        self.repo.commit(paths, message=_group_message(group), author=group[0].author)
                    except BaseException as exc:  # noqa: BLE001 - every writer in the group gets the failure
                        self.repo.restore(paths)
                        for pending in group:
                            pending.error = exc
                    for pending in group:
                        pending.done = True

    def pull(self) -> bool:
        """Rebase onto the remote's branch before a change; an unreachable remote is logged, not fatal."""
        try:
            with self.lock("git"):
                self.repo.pull(self.push_remote)
            return True
        except CorpusError as exc:
            log.warning("corpus pull from %s failed (working on the local copy): %s", self.push_remote, exc)
            return False

    def push(self) -> bool:
        """Push to the configured remote; a failure is logged and retried on the next push, never fatal."""
        if not self.push_remote:
            return True
        try:
            with self.lock("git"):
                self.repo.push(self.push_remote)
            return True
        except CorpusError as exc:
            log.warning("corpus push to %s failed (will retry): %s", self.push_remote, exc)
            return False

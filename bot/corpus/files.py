"""The corpus folder: case files on disk, atomic writes, one git commit per change, and a writers' lock.

Files are the source of truth. Every path is derived from a validated case id, so nothing outside the
corpus folder is read or written. A change (`with corpus.change(...) as tx`) holds a lock that serialises
writers in this process (a thread lock) and across processes (a file lock in the git directory), writes
each file atomically, and ends in exactly one commit of what it wrote; if anything fails before the commit
exists, the touched files are put back as they were (from memory, so files git never saw survive too).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from bot.core.clock import precise_utcnow
from bot.core.errors import AmbiguousIdError, CaseNotFoundError, CorpusError, EvalbotError, InvalidCaseError, RebaseStoppedError
from bot.corpus.gitrepo import Author, GitRepo
from bot.corpus.ids import check_prefix

if TYPE_CHECKING:
    from bot.corpus.schema import Case

log = logging.getLogger(__name__)

STATUS_DIRS = {"candidate": "candidates", "promoted": "cases"}
_THREAD_LOCKS: dict[tuple[Path, str], threading.RLock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


def _thread_lock(root: Path, name: str) -> threading.RLock:
    with _THREAD_LOCKS_GUARD:
        return _THREAD_LOCKS.setdefault((root, name), threading.RLock())


def atomic_write(path: Path, text: str | bytes) -> None:
    """Write `text` (UTF-8) or bytes to `path` so a crash leaves either the old or the new file, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8") if isinstance(text, str) else text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def case_digest(case: Case) -> str:
    """A short hash of a case's content (as evalbot writes it): what an edit form was opened on."""
    from bot.corpus.casefile import dump_case

    return hashlib.sha256(dump_case(case).encode("utf-8")).hexdigest()[:16]


@dataclass
class _Failure:
    """A group commit that failed: the changes in it, undone once, newest first, by whichever writer gets there."""

    entries: list[_Pending]
    undone: bool = False
    guard: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class _Pending:
    """A written change waiting for its commit."""

    change: CorpusChange
    message: str
    author: Author
    done: bool = False
    error: BaseException | None = None
    failure: _Failure | None = None
    commit: str | None = None  # the commit holding this change, when it is the only change in it
    at: datetime = field(default_factory=precise_utcnow)  # when it was written


@dataclass(frozen=True)
class Uncommitted:
    """A change written to the corpus folder whose commit does not exist yet."""

    author: Author
    message: str
    at: datetime


@dataclass
class _CommitQueue:
    pending: list[_Pending] = field(default_factory=list)
    committing: list[_Pending] = field(default_factory=list)  # taken from `pending`, their commit not made yet
    writing: list[_Pending] = field(default_factory=list)  # changes still inside their `change` block
    guard: threading.Lock = field(default_factory=threading.Lock)  # protects `writing`, `pending` and `committing`
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


def _read(path: Path) -> str | None:
    """The file's text exactly as stored (no newline translation), or None when it is absent or not UTF-8."""
    data = _bytes(path)
    try:
        return None if data is None else data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _put(path: Path, data: bytes | None) -> None:
    if data is None:
        path.unlink(missing_ok=True)
    else:
        atomic_write(path, data)


@dataclass
class CorpusChange:
    """The files one change touches; the change commits them together (exactly what it wrote).

    It remembers each file as it was before (absent included), so undoing puts back what was there: a
    file git never saw is restored too, and a file this change did not create is never deleted.
    """

    corpus: Corpus
    touched: list[Path] = field(default_factory=list)
    before: dict[Path, bytes | None] = field(default_factory=dict)  # byte for byte, whatever the file held
    after: dict[Path, str | None] = field(default_factory=dict)
    hooks: list[Callable[[], None]] = field(default_factory=list)
    message: str | None = None  # the commit message, when only known inside the change
    record: bool = False  # commit even if git sees no difference (removing a file git never saw is a decision too)

    def _touch(self, path: Path) -> None:
        if path not in self.before:
            self.before[path] = _bytes(path)
        if path not in self.touched:
            self.touched.append(path)

    def write(self, case: Case) -> Path:
        """Write `case` to the folder of its status, removing its file from the other status folder."""
        path = self.corpus.path_for(case.id, case.status)
        from bot.core.redaction_exits import redact_case  # the rules' regexes compile here, not in `corpus list`
        from bot.corpus.casefile import dump_case

        text = dump_case(redact_case(case))  # the file is the exit: a case made elsewhere is redacted too
        if _read(path) != text:
            self._touch(path)
            atomic_write(path, text)
        for status in STATUS_DIRS:
            other = self.corpus.path_for(case.id, status)
            if other != path and other.exists():
                self._touch(other)
                other.unlink()
        return path

    def delete(self, case: Case) -> None:
        """Remove the case's file; CaseNotFoundError when it is not there (someone else removed it)."""
        path = self.corpus.path_for(case.id, case.status)
        if not path.exists():
            raise CaseNotFoundError(f"case {case.id} is not in the corpus (any more)")
        self._touch(path)
        path.unlink()

    def after_commit(self, hook: Callable[[], None]) -> None:
        """Run `hook` once the commit exists, still inside the corpus lock (e.g. the database update)."""
        self.hooks.append(hook)

    def seal(self) -> dict[Path, str | None]:
        """What this change leaves in each file it touched (None: removed), as its commit will record it."""
        self.after = {path: _read(path) for path in self.touched}
        return self.after

    def undo(self) -> None:
        """Put every touched file back as it was, unless a later change has rewritten it since."""
        for path in reversed(self.touched):
            left = self.after.get(path)
            if path in self.after and _bytes(path) != (None if left is None else left.encode("utf-8")):
                log.warning("not restoring %s: it changed again after this change", path)
                continue
            _put(path, self.before[path])


def _undo(entry: _Pending) -> None:
    """Undo the failed group commit `entry` was in (once, newest change first); the caller holds the write lock."""
    failure = entry.failure
    if failure is None:
        return
    with failure.guard:
        if not failure.undone:
            for pending in reversed(failure.entries):
                pending.change.undo()
            failure.undone = True


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
        path = self.root / STATUS_DIRS[status] / f"{checked}.yaml"
        # `root` is resolved and the id is [a-z0-9] only, so only a symbolic link (the status folder or the file
        # itself) can lead elsewhere: resolving costs a stat per path component, so only those are resolved.
        if os.path.islink(path.parent) or os.path.islink(path):
            path = path.resolve()
            if path.parent.parent != self.root:
                raise CorpusError(f"refusing a path outside the corpus folder: {path}")
        return path

    def ids(self, status: str | None = None) -> dict[str, str]:
        """Every case id on disk mapped to its status, read from file names only (cheap)."""
        found: dict[str, str] = {}
        for name, folder in STATUS_DIRS.items():
            if status not in (None, name):
                continue
            try:
                names = os.listdir(self.root / folder)  # plain strings: 20,000 Path objects cost 50 ms
            except (FileNotFoundError, NotADirectoryError):
                continue
            for entry in names:
                stem, dot, suffix = entry.rpartition(".")
                if dot and suffix == "yaml" and stem and not entry.startswith("."):
                    found[stem] = name
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

    def load(self, case_id: str, status: str, *, path: Path | None = None) -> Case:
        """Read and validate one case file (`path`: its `path_for`, when the caller has it already)."""
        path = path or self.path_for(case_id, status)
        return self.parse(case_id, status, self.read_text(case_id, status, path=path), path=path)

    def read_text(self, case_id: str, status: str, *, path: Path | None = None) -> str:
        """The text of one case file (CaseNotFoundError when it is not there)."""
        try:
            return (path or self.path_for(case_id, status)).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise CaseNotFoundError(f"case {case_id} is not in the corpus") from None

    def parse(self, case_id: str, status: str, text: str, *, path: Path | None = None) -> Case:
        """Validate `text` as the file of case `case_id` with `status` (what `load` does once it has read it)."""
        path = path or self.path_for(case_id, status)
        where = self.display(path)
        from bot.corpus.casefile import parse_case  # YAML and the schema's models: not for a listing

        case = parse_case(text, where=where)
        if case.id != path.stem or case.status != status:
            raise InvalidCaseError(f"{where}: id '{case.id}' and status '{case.status}' must match the file's name and folder")
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
        """`path` as shown to people: relative to the folder holding the corpus folder."""
        if path.parent.parent == self.root and not os.path.islink(path):  # a path_for path: nothing to resolve
            return str(path.relative_to(self.root.parent))
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
        from filelock import FileLock  # imported by writers only: readers (`show`, `validate`) never lock

        with _thread_lock(self.root, name):
            self.root.mkdir(parents=True, exist_ok=True)
            with FileLock(str(self.repo.git_dir / f"evalbot-corpus-{name}.lock"), timeout=120):
                yield

    @contextmanager
    def change(self, *, author: Author, message: str = "", wait: bool = False) -> Iterator[CorpusChange]:
        """File writes that end up committed as `author`; undone if anything fails before the commit exists.

        Read, check and write inside the block: it holds the writers' lock, so what is read there is what the
        change applies to (a compare-and-set). On one host, changes that arrive while another commit is
        running are committed together (group commit): one commit per run of consecutive changes by the same
        author, its message listing each (`tx.message` replaces `message` when set inside the block). `wait`
        (or an `after_commit` hook) keeps the lock until the commit exists and the hooks ran, so the next
        writer sees the outcome in git too; if a hook fails, the commit is taken back (when it holds this
        change alone) and the files undone. With EVALBOT_GIT_PUSH, each
        change first pulls the remote, and commits and pushes before the shared (cross-replica) lock is
        released, so replicas with their own clones see each other's cases.
        """
        queue = _commit_queue(self.root)
        with self.lock(), self.shared_lock():
            if self.push_remote:
                self.pull()
            tx = CorpusChange(self)
            # Known from its first write on: a reader who sees the new file (a stale form being refused) can name its
            # author before the change reaches the commit queue.
            writing = _Pending(change=tx, message=message, author=author)
            with queue.guard:
                queue.writing.append(writing)
            try:
                yield tx
            except BaseException:
                with queue.guard:
                    queue.writing.remove(writing)
                tx.undo()
                raise
            if not tx.touched:
                with queue.guard:
                    queue.writing.remove(writing)
                return
            tx.seal()
            entry = _Pending(change=tx, message=tx.message or message, author=author)
            with queue.guard:
                queue.writing.remove(writing)
                queue.pending.append(entry)
            if self.push_remote or wait or tx.hooks:
                self._committed(queue, entry, locked=True)
                try:
                    for hook in tx.hooks:
                        hook()
                except BaseException:
                    self._take_back(entry)
                    raise
                if self.push_remote:
                    self.push()
                return
        self._committed(queue, entry, locked=False)

    def uncommitted(self, paths: Iterable[Path]) -> Uncommitted | None:
        """The newest change to any of `paths` written in this process but not committed yet (it waits in the group
        commit), or None: what git does not know yet about who changed a file."""
        wanted = set(paths)
        queue = _commit_queue(self.root)
        with queue.guard:
            entries = [(entry, set(entry.change.after)) for entry in (*queue.committing, *queue.pending)]
            entries += [(entry, set(entry.change.touched)) for entry in queue.writing]
        for entry, written in reversed(entries):
            if wanted & written:
                return Uncommitted(entry.author, entry.change.message or entry.message, entry.at)
        return None

    def _take_back(self, entry: _Pending) -> None:
        """After-commit work failed (e.g. the database): take the commit back and undo the files, when the commit
        holds this change alone and is still HEAD (we hold the lock; nothing is pushed yet). Else it stays, logged."""
        try:
            with self.lock("git"):
                taken = entry.commit is not None and self.repo.uncommit(entry.commit, entry.change.touched)
        except CorpusError:
            log.exception("could not take back commit %s after a failure", entry.commit)
            return
        if taken:
            entry.change.undo()
        else:
            log.error("a change was committed (%s) but what follows the commit failed; the commit stays "
                      "(`evalbot corpus reindex` brings the index back in step)", entry.commit or "in a group commit")

    def _committed(self, queue: _CommitQueue, entry: _Pending, *, locked: bool) -> None:
        self._flush(queue, entry)
        if entry.error is None:
            return
        if locked:
            _undo(entry)
        else:
            with self.lock():
                _undo(entry)
        raise entry.error

    def _flush(self, queue: _CommitQueue, entry: _Pending) -> None:
        """Commit every pending change (ours included) unless another thread already did."""
        with queue.mutex:
            if entry.done:
                return
            with queue.guard:
                batch, queue.pending = queue.pending, []
                queue.committing = batch
            try:
                self._commit_batch(batch)
            finally:
                with queue.guard:
                    queue.committing = []

    def _commit_batch(self, batch: list[_Pending]) -> None:
        with self.lock("git"):
            failed: _Failure | None = None
            for group in _by_author(batch):
                files = {path: text for e in group for path, text in e.change.after.items()}
                try:
                    if failed is not None:  # later changes may build on the failed ones: they fail too
                        raise failed.entries[0].error or CorpusError("an earlier commit failed")
                    sha = self.repo.commit_files(files, message=_group_message(group), author=group[0].author,
                                                 allow_empty=any(e.change.record for e in group))
                    if len(group) == 1:
                        group[0].commit = sha
                except BaseException as exc:  # noqa: BLE001 - every writer in the group gets the failure
                    failed = failed or _Failure(entries=[])
                    failed.entries.extend(group)
                    for pending in group:
                        pending.error, pending.failure = exc, failed
                for pending in group:
                    pending.done = True

    def pull(self) -> bool:
        """Rebase onto the remote's branch before a change; an unreachable remote is logged, not fatal.

        A rebase that stops is aborted and raised (RebaseStoppedError), so the change is refused, not made on
        a copy that cannot be pushed.
        """
        try:
            with self.lock("git"):
                self.repo.pull(self.push_remote)
            return True
        except RebaseStoppedError:
            raise  # the local copy cannot follow the remote: refuse the change rather than diverge further
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

"""`corpus validate`'s case files: every one checked, and only what changed since the last validate read again.

Each case file's verdict (valid, or the one-line reason it is not, and the secrets in it) is kept in the git
folder (`.git/evalbot/validated-*.json`) with the commit it was made at and the files uncommitted then; the next
validate reads again only the files `bot.corpus.changes` names since, in worker processes when there are many
(`bot.corpus.bulk`). The verdicts also name the code that made them (the schema, the YAML reader, the secret
rules, their libraries' versions): a new evalbot reads every file again. Outside git, every file is read.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bot.corpus import changes
from bot.corpus.bulk import Verdict, check_chunk, map_chunks
from bot.corpus.files import STATUS_DIRS, Corpus, atomic_write
from bot.corpus.gitrepo import GitRepo
from bot.corpus.scan import Finding

log = logging.getLogger(__name__)

_VERSION = 1
# What a verdict depends on besides the file: a change to any of these makes every kept verdict stale.
_CODE = ("bot/corpus/schema.py", "bot/corpus/casefile.py", "bot/corpus/files.py", "bot/corpus/ids.py",
         "bot/corpus/scan.py", "bot/core/redaction.py", "bot/core/redaction_rules.py", "bot/core/redaction_context.py")
_LIBRARIES = ("pydantic", "pydantic-core", "pyyaml")


@dataclass
class Validated:
    """Valid files per status, one message per invalid file (in id order), the secrets found (in path order), the
    files checked (as `os.scandir` names them, for the scan of the rest of the folder) and how many were read."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUS_DIRS, 0))
    problems: list[str] = field(default_factory=list)
    secrets: list[Finding] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    read: int = 0


def validate_cases(corpus: Corpus) -> Validated:
    """Check every case file, reading again only those changed since the verdicts kept from the last time."""
    path = _kept_path(corpus)
    kept = _load(path)
    view = changes.since(corpus, kept.get("commit"), kept.get("dirty", ()))
    current = {f"{STATUS_DIRS[status]}/{case_id}.yaml": (case_id, status) for case_id, status in sorted(corpus.ids().items())}
    verdicts: dict[str, Verdict] = {}
    if view.paths is not None:
        stale = view.paths
        verdicts = {rel: _verdict(rel, row) for rel, row in kept.get("verdicts", {}).items()
                    if rel in current and rel not in stale and row[0] == current[rel][1]}
    todo = [item for rel, item in current.items() if rel not in verdicts]
    for chunk in map_chunks(corpus, todo, check_chunk):
        verdicts.update((verdict.rel, verdict) for verdict in chunk)
    if view.head is not None:
        _save(path, {"version": _VERSION, "code": _fingerprint(), "commit": view.head, "dirty": sorted(view.dirty),
                     "verdicts": {rel: _row(verdicts[rel]) for rel in current}})
    done = Validated(files=[str(corpus.root / rel) for rel in current], read=len(todo))
    for rel in current:
        verdict = verdicts[rel]
        if verdict.problem is None:
            done.counts[verdict.status] += 1
        else:
            done.problems.append(verdict.problem)
        done.secrets += verdict.secrets
    done.secrets.sort(key=lambda finding: (finding.path, finding.line))
    return done


def _row(verdict: Verdict) -> list[Any]:
    return [verdict.status, verdict.problem, [[s.path, s.line, s.kind] for s in verdict.secrets]]


def _verdict(rel: str, row: list[Any]) -> Verdict:
    return Verdict(rel, row[0], row[1], tuple(Finding(path, line, kind) for path, line, kind in row[2]))


@cache
def _fingerprint() -> str:
    digest = hashlib.sha256()
    top = Path(__file__).resolve().parent.parent.parent
    for name in _CODE:
        digest.update((top / name).read_bytes())
    for library in _LIBRARIES:
        digest.update(version(library).encode())
    return digest.hexdigest()[:16]


def _kept_path(corpus: Corpus) -> Path | None:
    repo = GitRepo.find(corpus.root) if corpus.root.is_dir() else None
    if repo is None:
        return None
    return repo.git_dir / "evalbot" / f"validated-{hashlib.sha1(str(corpus.root).encode()).hexdigest()[:12]}.json"


def _load(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("version") != _VERSION or data.get("code") != _fingerprint():
            return {}
        for row in data["verdicts"].values():  # the shape `_verdict` reads, checked before anything trusts it
            if not (isinstance(row, list) and len(row) == 3 and all(len(secret) == 3 for secret in row[2])):
                return {}
        return data if isinstance(data.get("commit"), str) else {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}  # missing or damaged: every file is read


def _save(path: Path | None, data: dict[str, Any]) -> None:
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(data))
    except OSError as exc:
        log.info("validate's verdicts not kept (%s): the next validate reads every file", exc)

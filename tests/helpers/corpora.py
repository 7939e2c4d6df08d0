"""Corpus folders in the states triage must survive: never committed, committed with untracked files around."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from bot.corpus.files import Corpus
from bot.corpus.gitrepo import SYSTEM

EXAMPLE_CORPUS = Path(__file__).resolve().parents[2] / "corpus"


def loose_corpus(target: Path) -> Path:
    """The example corpus copied into a folder in no git repository (evalbot will `git init` it)."""
    shutil.copytree(EXAMPLE_CORPUS, target)
    return target


def committed_corpus_with_clutter(target: Path) -> Path:
    """The example corpus committed once, plus an untracked note and an untracked candidate-looking file."""
    shutil.copytree(EXAMPLE_CORPUS, target)
    Corpus(target).repo.commit([target], message="Example corpus", author=SYSTEM)
    (target / "NOTES.txt").write_text("someone's scratch file\n")
    (target / "candidates" / ".draft.yaml.tmp").write_text("half-written\n")
    return target


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (outside .git) and its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and ".git" not in p.relative_to(folder).parts}


def git_state(folder: Path) -> tuple[str, str]:
    """(HEAD or "", `git status --porcelain -uall`) of the repository holding `folder` ("" when there is none)."""
    head = subprocess.run(["git", "rev-parse", "-q", "--verify", "HEAD"], cwd=folder, capture_output=True, text=True)
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=folder, capture_output=True, text=True)
    return head.stdout.strip(), status.stdout

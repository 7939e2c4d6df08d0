"""First start: the data folder is created and an empty corpus folder is seeded from the example corpus.

The image sets `EVALBOT_DATA_DIR=/data` and `EVALBOT_EXAMPLE_CORPUS=/app/corpus-example`, so a container started
on a fresh (or no) volume has a database, a corpus and a git history without any init step. A corpus folder that
holds anything is never touched: seeding only fills a missing or empty one, and not when EVALBOT_GIT_PUSH names a
remote with history (a replica's corpus is a clone of that remote).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

from bot.core.errors import ConfigError
from bot.core.settings import Settings
from bot.corpus.gitrepo import SYSTEM, GitRepo

log = logging.getLogger(__name__)

SEED_MESSAGE = "Example corpus (seeded on first start)"


def _is_empty(folder: Path) -> bool:
    return not folder.exists() or (folder.is_dir() and not any(folder.iterdir()))


def _copy(source: Path, target: Path) -> None:
    # Contents only, not modes: the example sits in the image's read-only /app, the copy must stay writable.
    target.mkdir(parents=True, exist_ok=True)
    for entry in sorted(source.iterdir()):
        if entry.name == ".git":
            continue
        if entry.is_dir():
            _copy(entry, target / entry.name)
        else:
            shutil.copyfile(entry, target / entry.name)


def seed_corpus(corpus: Path, example: Path) -> bool:
    """Copy `example` into `corpus` and commit it when `corpus` is missing or empty; False when left alone."""
    if not _is_empty(corpus):
        return False
    if not (example / "evalbot.toml").is_file():
        raise ConfigError(f"EVALBOT_EXAMPLE_CORPUS {example} is not a corpus folder (it has no evalbot.toml)")
    _copy(example, corpus)
    repo = GitRepo.for_folder(corpus)
    repo.commit([corpus], message=SEED_MESSAGE, author=SYSTEM)
    return True


def remote_has_history(remote: str) -> bool | None:
    """True when `remote` has a branch, False when it has none, None when it cannot be asked (a remote name only a
    clone knows, or one that is unreachable)."""
    probe = subprocess.run(["git", "ls-remote", "--heads", remote], capture_output=True, text=True, timeout=60,
                           env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})
    if probe.returncode != 0:
        return None
    return bool(probe.stdout.strip())


def prepare_data(settings: Settings) -> None:
    """Create EVALBOT_DATA_DIR and seed the corpus from EVALBOT_EXAMPLE_CORPUS, as far as they are set."""
    if settings.data_dir is not None:
        try:
            settings.data_dir.expanduser().mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"EVALBOT_DATA_DIR {settings.data_dir} cannot be created: {exc.strerror or exc}") from None
    if settings.example_corpus is None or not _is_empty(settings.corpus_path):
        return
    # With a shared remote, a replica's corpus is a clone of it: seeding a history of its own would never push.
    if settings.git_push and remote_has_history(settings.git_push) is not False:
        log.warning("the corpus folder %s is empty and EVALBOT_GIT_PUSH %s has (or may have) history: not seeding it "
                    "from the example; clone the remote there", settings.corpus_path, settings.git_push)
        return
    if seed_corpus(settings.corpus_path, settings.example_corpus.expanduser()):
        log.info("seeded the empty corpus folder %s from %s", settings.corpus_path, settings.example_corpus)

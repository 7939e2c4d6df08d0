"""First start: EVALBOT_DATA_DIR holds the defaults, an empty corpus folder is seeded from the example corpus."""

from __future__ import annotations

import subprocess

import pytest

from bot.core.errors import ConfigError
from bot.core.settings import load_settings
from bot.corpus.seed import SEED_MESSAGE, prepare_data, seed_corpus
from tests.helpers.paths import EXAMPLE_CORPUS


def test_the_data_dir_holds_the_default_corpus_and_database(tmp_path, monkeypatch):
    monkeypatch.delenv("EVALBOT_CORPUS_DIR")
    monkeypatch.delenv("EVALBOT_DATABASE_URL")
    monkeypatch.setenv("EVALBOT_DATA_DIR", str(tmp_path / "data"))
    settings = load_settings()
    assert settings.corpus_path == tmp_path / "data" / "corpus"
    assert settings.database_url == f"sqlite:///{tmp_path / 'data' / 'evalbot.db'}"


def test_explicit_corpus_and_database_settings_win_over_the_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALBOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("EVALBOT_CORPUS_DIR", str(tmp_path / "elsewhere"))
    settings = load_settings()
    assert settings.corpus_path == tmp_path / "elsewhere"
    assert settings.database_url == f"sqlite:///{tmp_path / 'evalbot.db'}"


def test_without_a_data_dir_the_defaults_are_relative_to_the_working_directory(monkeypatch):
    monkeypatch.delenv("EVALBOT_CORPUS_DIR")
    monkeypatch.delenv("EVALBOT_DATABASE_URL")
    settings = load_settings()
    assert (str(settings.corpus_dir), settings.database_url) == ("corpus", "sqlite:///evalbot.db")


def test_an_empty_corpus_folder_is_seeded_and_committed(tmp_path):
    corpus = tmp_path / "data" / "corpus"
    corpus.mkdir(parents=True)
    assert seed_corpus(corpus, EXAMPLE_CORPUS) is True
    assert (corpus / "evalbot.toml").read_bytes() == (EXAMPLE_CORPUS / "evalbot.toml").read_bytes()
    assert {p.name for p in (corpus / "cases").iterdir()} == {p.name for p in (EXAMPLE_CORPUS / "cases").iterdir()}
    log = subprocess.run(["git", "-C", str(corpus), "log", "--format=%an|%s"], capture_output=True, text=True, check=True)
    assert log.stdout.strip() == f"evalbot|{SEED_MESSAGE}"
    assert subprocess.run(["git", "-C", str(corpus), "status", "--porcelain"], capture_output=True, text=True).stdout == ""


def test_a_corpus_folder_with_anything_in_it_is_left_alone(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "notes.txt").write_text("mine")
    assert seed_corpus(corpus, EXAMPLE_CORPUS) is False
    assert [p.name for p in corpus.iterdir()] == ["notes.txt"]


def test_a_seeded_copy_stays_writable_when_the_example_is_read_only(tmp_path):
    example = tmp_path / "example"
    example.mkdir()
    (example / "evalbot.toml").write_text((EXAMPLE_CORPUS / "evalbot.toml").read_text())
    (example / "prompts").mkdir()
    (example / "prompts" / "system.md").write_text("Be brief.")
    for path in (example / "prompts" / "system.md", example / "evalbot.toml", example / "prompts", example):
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        seed_corpus(tmp_path / "corpus", example)
    finally:
        for path in (example, example / "prompts"):
            path.chmod(0o755)
    (tmp_path / "corpus" / "prompts" / "system.md").write_text("changed")  # would raise PermissionError
    assert (tmp_path / "corpus" / "prompts").stat().st_mode & 0o200


def test_prepare_data_creates_the_data_dir_and_seeds_from_the_example_corpus(tmp_path, monkeypatch):
    monkeypatch.delenv("EVALBOT_CORPUS_DIR")
    monkeypatch.setenv("EVALBOT_DATA_DIR", str(tmp_path / "fresh" / "data"))
    monkeypatch.setenv("EVALBOT_EXAMPLE_CORPUS", str(EXAMPLE_CORPUS))
    prepare_data(load_settings())
    assert (tmp_path / "fresh" / "data" / "corpus" / "evalbot.toml").is_file()


def test_an_example_that_is_no_corpus_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="EVALBOT_EXAMPLE_CORPUS .* has no evalbot.toml"):
        seed_corpus(tmp_path / "corpus", tmp_path)


def _bare_remote(tmp_path, *, with_commit: bool):
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    if with_commit:
        work = tmp_path / "work"
        subprocess.run(["git", "init", "-q", str(work)], check=True)
        (work / "x").write_text("x")
        subprocess.run(["git", "-C", str(work), "add", "x"], check=True)
        subprocess.run(["git", "-C", str(work), "-c", "user.name=Someone", "-c", "user.email=someone@example.com",
                        "commit", "-qm", "x"], check=True)
        subprocess.run(["git", "-C", str(work), "push", "-q", str(remote), "HEAD:main"], check=True)
    return remote


@pytest.mark.parametrize(("with_commit", "seeded"), [(True, False), (False, True)])
def test_a_replica_with_a_remote_that_has_history_is_not_seeded(tmp_path, monkeypatch, with_commit, seeded):
    monkeypatch.setenv("EVALBOT_GIT_PUSH", str(_bare_remote(tmp_path, with_commit=with_commit)))
    monkeypatch.setenv("EVALBOT_EXAMPLE_CORPUS", str(EXAMPLE_CORPUS))
    prepare_data(load_settings())
    assert (tmp_path / "corpus" / "evalbot.toml").is_file() is seeded


def test_a_remote_that_cannot_be_asked_means_no_seeding(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALBOT_GIT_PUSH", "origin")  # a remote name: only a clone knows it
    monkeypatch.setenv("EVALBOT_EXAMPLE_CORPUS", str(EXAMPLE_CORPUS))
    prepare_data(load_settings())
    assert not (tmp_path / "corpus").exists()

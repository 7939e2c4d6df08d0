"""Failures a person can cause or meet end in one line naming what failed and what to do, exit 2, no traceback."""

from __future__ import annotations

import shutil

import pytest
from typer.testing import CliRunner

from bot.cli import app
from tests.conftest import EXAMPLE_CORPUS

runner = CliRunner()


@pytest.mark.parametrize(
    ("env", "args", "message"),
    [
        ({"EVALBOT_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/test"}, ["corpus", "list"],
         "error: cannot open the database postgresql+psycopg://postgres@127.0.0.1:1/test: connection failed"),
        ({"EVALBOT_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/test"}, ["db", "upgrade"],
         "(is it running? check EVALBOT_DATABASE_URL)"),
        ({"EVALBOT_DATABASE_URL": "mysql://root@127.0.0.1/test"}, ["corpus", "list"],
         "error: EVALBOT_DATABASE_URL is malformed (the mysql driver is not installed (MySQLdb)"),
        ({"EVALBOT_DATABASE_URL": "telepathy://x"}, ["corpus", "list"],
         "error: EVALBOT_DATABASE_URL is malformed (SQLAlchemy knows no database 'telepathy')"),
        ({"EVALBOT_DATABASE_URL": "sqlite:////proc/evalbot/x.db"}, ["corpus", "list"],
         "error: cannot open the database sqlite:////proc/evalbot/x.db"),
        ({"EVALBOT_CORPUS_DIR": "{tmp}/corpsu"}, ["corpus", "list"],
         "error: EVALBOT_CORPUS_DIR {tmp}/corpsu does not exist: point it at your corpus folder"),
        ({"EVALBOT_CORPUS_DIR": "{tmp}/corpsu"}, ["eval", "run"], "error: EVALBOT_CORPUS_DIR {tmp}/corpsu does not exist"),
    ],
    ids=["pg-down-list", "pg-down-upgrade", "driver-missing", "unknown-dialect", "unwritable-sqlite",
         "corpus-missing-list", "corpus-missing-eval"],
)
def test_a_failure_is_one_line_and_exit_2(tmp_path, monkeypatch, env, args, message):
    shutil.copytree(EXAMPLE_CORPUS, tmp_path / "corpus")
    for name, value in env.items():
        monkeypatch.setenv(name, value.format(tmp=tmp_path))
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert message.format(tmp=tmp_path) in lines[0]
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)


def test_a_postgres_url_is_read_as_psycopg(monkeypatch):
    from bot.config import load_settings

    monkeypatch.setenv("EVALBOT_DATABASE_URL", "postgres://u@db.internal:5432/evalbot")
    assert load_settings().database_url == "postgresql+psycopg://u@db.internal:5432/evalbot"

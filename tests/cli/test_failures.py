"""Failures a person can cause or meet end in one line naming what failed and what to do, exit 2, no traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from bot.cli import app
from tests.helpers.paths import EXAMPLE_CORPUS, REPO

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
    from bot.core.settings import load_settings

    monkeypatch.setenv("EVALBOT_DATABASE_URL", "postgres://u@db.internal:5432/evalbot")
    assert load_settings().database_url == "postgresql+psycopg://u@db.internal:5432/evalbot"


@pytest.mark.parametrize(
    ("refuse", "api_url", "message"),
    [
        ("auth.test", None, "error: Slack refused SLACK_BOT_TOKEN (invalid_auth): set it to the Bot User OAuth Token"),
        ("apps.connections.open", None, "error: Slack refused SLACK_APP_TOKEN (invalid_auth): set it to an app-level"),
        (None, "http://127.0.0.1:1/api/", "error: cannot reach Slack at http://127.0.0.1:1/api/"),
    ],
    ids=["bot-token-refused", "app-token-refused", "slack-unreachable"],
)
def test_serve_that_cannot_sign_in_to_slack_exits_2_with_one_line(tmp_path, refuse, api_url, message):
    from tests.fakes.slack import FakeSlack

    shutil.copytree(EXAMPLE_CORPUS, tmp_path / "corpus")
    with FakeSlack() as slack:
        if refuse:
            slack.fail_next(refuse, "invalid_auth", times=5)
        env = {**os.environ, "PYTHONPATH": str(REPO), "SLACK_BOT_TOKEN": "xoxb-test-token",
               "SLACK_APP_TOKEN": "xapp-test-token", "SLACK_API_URL": api_url or slack.api_url,
               "EVALBOT_CHANNEL": "C0EVALBOT"}
        done = subprocess.run([sys.executable, "-m", "bot", "serve"], env=env, capture_output=True, text=True,
                              timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(message), done.stderr


def test_eval_run_of_an_invalid_case_file_names_the_file_and_its_problem(tmp_path, monkeypatch):
    shutil.copytree(EXAMPLE_CORPUS, tmp_path / "corpus")
    (tmp_path / "corpus" / "cases" / "bad00001.yaml").write_text("id: bad00001\ncolour: red\n")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    result = runner.invoke(app, ["eval", "run", "--case", "bad00001"])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --case bad00001: the case file is invalid ("), lines
    assert "bad00001.yaml: " in lines[0] and "colour: unknown field" in lines[0]
    assert (tmp_path / "corpus" / "cases" / "bad00001.yaml").exists()

"""`evalbot doctor`: every check runs, nothing on disk changes, and the exit code says whether `serve` can start."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.slack import FakeSlack
from tests.helpers.paths import EXAMPLE_CORPUS

runner = CliRunner()


def doctor(*args: str) -> tuple[int, list[str]]:
    result = runner.invoke(app, ["doctor", *args])
    assert "Traceback" not in result.output
    return result.exit_code, result.output.strip().splitlines()


def snapshot(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*")}


@pytest.fixture
def fresh(tmp_path: Path) -> Path:
    """The example corpus copied into a folder with no git repository and no database yet."""
    shutil.copytree(EXAMPLE_CORPUS, tmp_path / "corpus")
    return tmp_path


@pytest.fixture
def services(monkeypatch: pytest.MonkeyPatch):
    with FakeSlack() as slack, FakeAnthropic() as anthropic:
        monkeypatch.setenv("SLACK_API_URL", slack.api_url)
        monkeypatch.setenv("ANTHROPIC_BASE_URL", anthropic.base_url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
        monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test-token")
        monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-test-token")
        monkeypatch.setenv("EVALBOT_CHANNEL", "C0EVALBOT")
        yield slack


def test_a_complete_setup_passes_and_changes_nothing_on_disk(fresh, services):
    before = snapshot(fresh)
    code, lines = doctor()
    assert code == 0, "\n".join(lines)
    assert "ok   slack: Slack: signed in as" in "\n".join(lines) and "the app token opens Socket Mode" in lines[4]
    assert any(line.startswith("ok   anthropic: Anthropic: API key accepted") for line in lines)
    assert any("not in a git repository yet (`serve` runs `git init` there)" in line for line in lines)
    assert any("does not exist yet (`serve` creates it" in line for line in lines)
    assert snapshot(fresh) == before  # no evalbot.db, no .git, no lock file


def test_without_tokens_it_lists_what_serve_needs_and_fails(fresh):
    code, lines = doctor()
    assert code == 1
    assert "FAIL `evalbot serve` needs: SLACK_BOT_TOKEN is not set: it should hold a bot token starting with xoxb-" in lines
    assert any(line.startswith("FAIL `evalbot serve` needs: SLACK_APP_TOKEN is not set") for line in lines)
    assert lines[-1] == "3 problem(s): `evalbot serve` would not start until they are fixed"
    code, lines = doctor("--http")
    assert any(line.startswith("FAIL `evalbot serve --http` needs: SLACK_SIGNING_SECRET is not set") for line in lines)


def test_every_malformed_setting_is_reported_and_the_other_checks_still_run(fresh, monkeypatch):
    monkeypatch.setenv("EVALBOT_TIMEZONE", "Nowhere/Land")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "not-a-token")
    code, lines = doctor()
    assert code == 1
    assert lines[0] == "FAIL settings: SLACK_BOT_TOKEN is malformed: it should hold a bot token starting with xoxb-"
    assert lines[1] == ("FAIL settings: EVALBOT_TIMEZONE is malformed: it should hold an IANA time zone such as UTC "
                        "or Europe/Berlin")
    assert any(line.startswith("ok   corpus: corpus ") for line in lines)
    assert any(line.startswith("ok   database: ") for line in lines)


@pytest.mark.parametrize(
    ("refused", "message"),
    [("auth.test", "FAIL slack: Slack refused SLACK_BOT_TOKEN (invalid_auth): set it to the Bot User OAuth Token"),
     ("apps.connections.open", "FAIL slack: Slack refused SLACK_APP_TOKEN (invalid_auth)")],
)
def test_a_refused_token_fails(fresh, services, refused, message):
    services.fail_next(refused, "invalid_auth", times=5)
    code, lines = doctor()
    assert code == 1
    assert any(line.startswith(message) for line in lines), lines


@pytest.mark.parametrize(
    ("url", "message"),
    [("postgresql+psycopg://nobody@127.0.0.1:1/none", "FAIL database: cannot reach EVALBOT_DATABASE_URL"),
     ("sqlite:////proc/evalbot/x.db", "FAIL database: database sqlite:////proc/evalbot/x.db: /proc is not writable")],
    ids=["postgres-down", "unwritable-sqlite"],
)
def test_a_database_serve_could_not_open_fails(fresh, monkeypatch, url, message):
    monkeypatch.setenv("EVALBOT_DATABASE_URL", url)
    code, lines = doctor()
    assert code == 1
    assert any(line.startswith(message) for line in lines), lines


def test_a_migrated_database_is_reported_up_to_date(corpus_dir, db_url):
    from bot.runtime import open_database

    open_database(db_url)
    code, lines = doctor()
    assert any("schema up to date" in line for line in lines), lines
    assert any("git work tree" in line for line in lines)

"""Settings: defaults, parsing, and one-line errors naming the variable."""

import pytest

from bot.core.errors import ConfigError
from bot.core.settings import load_settings


def test_defaults_match_the_design():
    settings = load_settings()
    assert settings.flag_emoji == ["triangular_flag_on_post"]
    assert settings.nightly == "0 2 * * *"
    assert settings.timezone == "UTC"
    assert settings.slash_command == "/eval"
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.maintainers == []


def test_comma_lists_are_split_and_colons_dropped(monkeypatch):
    monkeypatch.setenv("EVALBOT_FLAG_EMOJI", ":triangular_flag_on_post:, eyes")
    monkeypatch.setenv("EVALBOT_ASSISTANT_IDS", "B0BOT1,U0HUMANBOT")
    settings = load_settings()
    assert settings.flag_emoji == ["triangular_flag_on_post", "eyes"]
    assert settings.assistant_ids == ["B0BOT1", "U0HUMANBOT"]


def test_slack_api_url_gets_a_trailing_slash(monkeypatch):
    monkeypatch.setenv("SLACK_API_URL", "http://127.0.0.1:9/api")
    assert load_settings().slack_api_url == "http://127.0.0.1:9/api/"


def test_dotenv_file_is_read(isolated):
    (isolated / ".env").write_text("EVALBOT_CHANNEL=C0DOTENV1\n")
    assert load_settings().channel == "C0DOTENV1"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SLACK_BOT_TOKEN", "xoxp-user-token"),
        ("SLACK_APP_TOKEN", "xoxb-not-an-app-token"),
        ("EVALBOT_CHANNEL", "#support"),
        ("EVALBOT_NIGHTLY", "every night"),
        ("EVALBOT_TIMEZONE", "Mars/Olympus"),
        ("EVALBOT_DATABASE_URL", "not a url"),
        ("EVALBOT_SLASH_COMMAND", "eval"),
        ("EVALBOT_MAINTAINERS", "alice"),
        ("EVALBOT_FLAG_EMOJI", "Red Flag"),
        ("SLACK_API_URL", "ftp://x"),
    ],
)
def test_malformed_value_names_the_variable_in_one_line(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as raised:
        load_settings()
    message = str(raised.value)
    assert message.startswith(f"{name} is malformed: it should hold ")
    assert "\n" not in message


def test_a_malformed_token_is_not_echoed(monkeypatch):
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxp-secret-value-123")
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert "secret-value" not in str(raised.value)


def test_missing_for_serve_lists_each_variable():
    settings = load_settings()
    socket = settings.missing_for_serve(http=False)
    http = settings.missing_for_serve(http=True)
    assert [line.split()[0] for line in socket] == ["SLACK_BOT_TOKEN", "EVALBOT_CHANNEL", "SLACK_APP_TOKEN"]
    assert [line.split()[0] for line in http] == ["SLACK_BOT_TOKEN", "EVALBOT_CHANNEL", "SLACK_SIGNING_SECRET"]


def test_serve_has_what_it_needs(monkeypatch):
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-1")
    monkeypatch.setenv("EVALBOT_CHANNEL", "C0123ABCD")
    assert load_settings().missing_for_serve(http=False) == []

"""Settings: every environment variable of the design's configuration table, validated once.

Read through the cached `get_settings()`; tests override it with `get_settings.cache_clear()` and env vars.
A malformed value raises `ConfigError` with one line naming the variable and what it should hold; a value
missing for a mode (serve needs the Slack tokens) is reported by `missing_for_serve()`.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.core.errors import ConfigError

CommaList = Annotated[list[str], NoDecode]

SLACK_URL = "https://slack.com/api/"

# What each variable should hold, for one-line error messages.
EXPECTED = {
    "SLACK_BOT_TOKEN": "a bot token starting with xoxb-",
    "SLACK_APP_TOKEN": "an app-level token starting with xapp- (Socket Mode)",
    "SLACK_SIGNING_SECRET": "the app's signing secret (Basic Information page), needed by serve --http",
    "SLACK_API_URL": "an http(s) URL of the Slack Web API, e.g. https://slack.com/api/",
    "ANTHROPIC_API_KEY": "an Anthropic API key",
    "ANTHROPIC_BASE_URL": "an http(s) URL of the Anthropic API",
    "EVALBOT_CHANNEL": "a Slack channel id such as C0123ABCD (not a #name)",
    "EVALBOT_FLAG_EMOJI": "comma-separated reaction names without colons, e.g. triangular_flag_on_post",
    "EVALBOT_ASSISTANT_IDS": "comma-separated bot ids (B…) or user ids (U…/W…)",
    "EVALBOT_MAINTAINERS": "comma-separated user ids (U…/W…) or user-group ids (S…)",
    "EVALBOT_DATA_DIR": "a writable folder for the database and the corpus clone, such as /data",
    "EVALBOT_EXAMPLE_CORPUS": "a corpus folder to copy into an empty EVALBOT_CORPUS_DIR on first start",
    "EVALBOT_CORPUS_DIR": "a folder path for the corpus",
    "EVALBOT_GIT_PUSH": "a git remote name or URL",
    "EVALBOT_DATABASE_URL": "an SQLAlchemy URL such as sqlite:///evalbot.db or postgresql+psycopg://host/db",
    "EVALBOT_NIGHTLY": "a 5-field cron expression such as '0 2 * * *'",
    "EVALBOT_TIMEZONE": "an IANA time zone such as UTC or Europe/Berlin",
    "EVALBOT_SLASH_COMMAND": "a slash command name starting with /, such as /eval",
    "EVALBOT_REDACT_CONTACTS": "true or false (redact emails and phone numbers)",
    "EVALBOT_LOG_FORMAT": "text or json",
    "EVALBOT_CATCHUP_HOURS": "a number of hours, 0 or more (how far back flags are caught up on connect)",
    "EVALBOT_CATCHUP_MAX_MESSAGES": "a whole number, 0 or more (messages read at most when catching up)",
}


class Settings(BaseSettings):
    """Validated process configuration; field names mirror the environment variables."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True)

    slack_bot_token: SecretStr | None = Field(None, validation_alias="SLACK_BOT_TOKEN")
    slack_app_token: SecretStr | None = Field(None, validation_alias="SLACK_APP_TOKEN")
    slack_signing_secret: SecretStr | None = Field(None, validation_alias="SLACK_SIGNING_SECRET")
    slack_api_url: str = Field(SLACK_URL, validation_alias="SLACK_API_URL")
    anthropic_api_key: SecretStr | None = Field(None, validation_alias="ANTHROPIC_API_KEY")
    anthropic_base_url: str | None = Field(None, validation_alias="ANTHROPIC_BASE_URL")
    channel: str | None = Field(None, validation_alias="EVALBOT_CHANNEL")
    flag_emoji: CommaList = Field(["triangular_flag_on_post"], validation_alias="EVALBOT_FLAG_EMOJI")
    assistant_ids: CommaList = Field([], validation_alias="EVALBOT_ASSISTANT_IDS")
    maintainers: CommaList = Field([], validation_alias="EVALBOT_MAINTAINERS")
    corpus_dir: Path = Field(Path("./corpus"), validation_alias="EVALBOT_CORPUS_DIR")
    git_push: str | None = Field(None, validation_alias="EVALBOT_GIT_PUSH")
    database_url: str = Field("sqlite:///evalbot.db", validation_alias="EVALBOT_DATABASE_URL")
    nightly: str = Field("0 2 * * *", validation_alias="EVALBOT_NIGHTLY")
    timezone: str = Field("UTC", validation_alias="EVALBOT_TIMEZONE")
    slash_command: str = Field("/eval", validation_alias="EVALBOT_SLASH_COMMAND")
    redact_contacts: bool = Field(True, validation_alias="EVALBOT_REDACT_CONTACTS")
    log_format: str = Field("text", validation_alias="EVALBOT_LOG_FORMAT")
    # Catch-up on connect (flags made while the bot was not connected): how far back, and how many messages at most.
    catchup_hours: float = Field(48, ge=0, validation_alias="EVALBOT_CATCHUP_HOURS")
    catchup_max_messages: int = Field(1000, ge=0, validation_alias="EVALBOT_CATCHUP_MAX_MESSAGES")

    # The image's writable state (EVALBOT_DATA_DIR=/data there): the default corpus and SQLite database live in it.
    data_dir: Path | None = Field(None, validation_alias="EVALBOT_DATA_DIR")
    example_corpus: Path | None = Field(None, validation_alias="EVALBOT_EXAMPLE_CORPUS")

    @model_validator(mode="after")
    def _inside_data_dir(self) -> Settings:
        # Only the defaults move into the data folder: an explicit EVALBOT_CORPUS_DIR or DATABASE_URL wins.
        if self.data_dir is not None:
            data = self.data_dir.expanduser().resolve()
            if "corpus_dir" not in self.model_fields_set:
                self.corpus_dir = data / "corpus"
            if "database_url" not in self.model_fields_set:
                self.database_url = f"sqlite:///{data / 'evalbot.db'}"
        return self

    @field_validator("flag_emoji", "assistant_ids", "maintainers", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip().strip(":") for part in value.split(",") if part.strip().strip(":")]
        return value

    @field_validator("slack_bot_token")
    @classmethod
    def _bot_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("xoxb-"):
            raise ValueError("SLACK_BOT_TOKEN")
        return value

    @field_validator("slack_app_token")
    @classmethod
    def _app_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("xapp-"):
            raise ValueError("SLACK_APP_TOKEN")
        return value

    @field_validator("slack_api_url")
    @classmethod
    def _slack_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("SLACK_API_URL")
        # WebClient joins method names with urljoin, which drops the last segment without a trailing slash.
        return value if value.endswith("/") else value + "/"

    @field_validator("anthropic_base_url")
    @classmethod
    def _anthropic_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("ANTHROPIC_BASE_URL")
        return value

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[CGD][A-Z0-9]{6,}", value):
            raise ValueError("EVALBOT_CHANNEL")
        return value

    @field_validator("flag_emoji")
    @classmethod
    def _emoji(cls, value: list[str]) -> list[str]:
        if not value or any(not re.fullmatch(r"[a-z0-9_+'\-]+(::skin-tone-\d)?", e) for e in value):
            raise ValueError("EVALBOT_FLAG_EMOJI")
        return value

    @field_validator("assistant_ids")
    @classmethod
    def _assistants(cls, value: list[str]) -> list[str]:
        if any(not re.fullmatch(r"[BUW][A-Z0-9]{2,}", v) for v in value):
            raise ValueError("EVALBOT_ASSISTANT_IDS")
        return value

    @field_validator("maintainers")
    @classmethod
    def _maintainers(cls, value: list[str]) -> list[str]:
        if any(not re.fullmatch(r"[UWS][A-Z0-9]{2,}", v) for v in value):
            raise ValueError("EVALBOT_MAINTAINERS")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        # Heroku-style and driverless PostgreSQL URLs mean the one driver evalbot ships (psycopg 3).
        for prefix in ("postgres://", "postgresql://"):
            if value.startswith(prefix):
                value = "postgresql+psycopg://" + value[len(prefix):]
        if value == "sqlite://" or value.startswith("sqlite:///"):
            # The default: every such URL parses (the rest is a file path) and the driver is Python's own sqlite3,
            # so commands that never open the database (`show`, `validate`) need not import SQLAlchemy to know it.
            return value
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError

        try:
            url = make_url(value)
        except ArgumentError as exc:
            raise ValueError("EVALBOT_DATABASE_URL") from exc
        try:
            url.get_dialect().import_dbapi()
        except NoSuchModuleError:
            raise ValueError(f"EVALBOT_DATABASE_URL: SQLAlchemy knows no database {url.drivername!r}") from None
        except ImportError as exc:
            raise ValueError(f"EVALBOT_DATABASE_URL: the {url.drivername} driver is not installed ({exc.name or exc}); "
                             "use sqlite:///… or postgresql+psycopg://…, or add the driver to the environment") from None
        return value

    @field_validator("nightly")
    @classmethod
    def _cron(cls, value: str) -> str:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value, timezone="UTC")
        except ValueError as exc:
            raise ValueError("EVALBOT_NIGHTLY") from exc
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("EVALBOT_TIMEZONE") from exc
        return value

    @field_validator("slash_command")
    @classmethod
    def _slash(cls, value: str) -> str:
        if not re.fullmatch(r"/[a-z0-9_\-]{1,31}", value):
            raise ValueError("EVALBOT_SLASH_COMMAND")
        return value

    @field_validator("log_format")
    @classmethod
    def _log_format(cls, value: str) -> str:
        if value not in ("text", "json"):
            raise ValueError("EVALBOT_LOG_FORMAT")
        return value

    def missing_for_serve(self, *, http: bool) -> list[str]:
        """One line per setting `serve` still needs, naming the variable and what it should hold."""
        needed = ["SLACK_BOT_TOKEN", "EVALBOT_CHANNEL"]
        needed.append("SLACK_SIGNING_SECRET" if http else "SLACK_APP_TOKEN")
        values = {
            "SLACK_BOT_TOKEN": self.slack_bot_token,
            "SLACK_APP_TOKEN": self.slack_app_token,
            "SLACK_SIGNING_SECRET": self.slack_signing_secret,
            "EVALBOT_CHANNEL": self.channel,
        }
        return [f"{name} is not set: it should hold {EXPECTED[name]}" for name in needed if values[name] is None]

    @property
    def corpus_path(self) -> Path:
        return self.corpus_dir.expanduser().resolve()


def _one_line(error: ValidationError) -> str:
    return _describe(error.errors()[0])


def _describe(first: Any) -> str:
    loc = first.get("loc") or ("?",)
    field = str(loc[0])
    name = Settings.model_fields[field].validation_alias if field in Settings.model_fields else field
    if isinstance(name, AliasChoices):
        name = name.choices[0]
    name = str(name).upper()
    cause = str((first.get("ctx") or {}).get("error", ""))
    detail = f" ({cause.split(': ', 1)[1]})" if cause.startswith(f"{name}: ") else ""
    return f"{name} is malformed{detail}: it should hold {EXPECTED.get(name, 'a valid value')}"


def load_settings(**overrides: object) -> Settings:
    """Build Settings from the environment (and .env), raising ConfigError with one line on a bad value."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc)) from None


def check_settings() -> tuple[Settings, list[str]]:
    """Settings with every malformed value replaced by its default, and one line per malformed value (`doctor`)."""
    try:
        return Settings(), []
    except ValidationError as exc:
        errors = exc.errors()
    by_alias = {}
    for name, info in Settings.model_fields.items():
        alias = info.validation_alias
        for key in (alias.choices if isinstance(alias, AliasChoices) else [alias]):
            by_alias[str(key).upper()] = name
        by_alias[name.upper()] = name
    fields = {by_alias.get(str(error["loc"][0]).upper()) for error in errors if error.get("loc")}
    defaults = {name: Settings.model_fields[name].get_default(call_default_factory=True) for name in fields if name}
    return Settings(**defaults), [_describe(error) for error in errors]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's Settings, read once."""
    return load_settings()

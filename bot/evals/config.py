"""`corpus/evalbot.toml`: what is evaluated ([target]), who judges ([judge]) and how runs go ([run]).

Also the run fingerprint: a hash of the config file and the prompt files it names, so a run records
exactly which system it evaluated.
"""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.core.errors import ConfigError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AnthropicTarget(_Section):
    """A Claude model with a versioned system prompt from the corpus."""

    kind: Literal["anthropic"]
    model: str
    system_prompt: str | None = None
    max_tokens: int = Field(1024, gt=0)
    temperature: float | None = Field(None, ge=0.0, le=1.0, description="Accepted for compatibility; not sent (see README).")
    timeout: float = Field(120.0, gt=0)


class HttpTarget(_Section):
    """An HTTP endpoint that takes `{messages, case_id}` and returns JSON."""

    kind: Literal["http"]
    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    response_path: str = "reply"
    timeout: float = Field(60.0, gt=0)


class CommandTarget(_Section):
    """A command that reads the messages as JSON on stdin and writes the reply on stdout."""

    kind: Literal["command"]
    argv: list[str] = Field(min_length=1)
    timeout: float = Field(60.0, gt=0)


class PythonTarget(_Section):
    """A Python callable `package.module:function(messages) -> str`, sync or async."""

    kind: Literal["python"]
    callable: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    timeout: float = Field(60.0, gt=0)


Target = Annotated[AnthropicTarget | HttpTarget | CommandTarget | PythonTarget, Field(discriminator="kind")]


class JudgeConfig(_Section):
    """The LLM judge for rubric expectations."""

    model: str = "claude-sonnet-4-6"
    max_tokens: int = Field(1024, gt=0)
    timeout: float = Field(120.0, gt=0)


class RunConfig(_Section):
    """How a run samples and grades."""

    trials: int = Field(1, ge=1, le=100)
    pass_threshold: float = Field(1.0, ge=0.0, le=1.0)
    concurrency: int = Field(8, ge=1, le=1000)
    mode: Literal["sync", "batch"] = "sync"
    retries: int = Field(4, ge=0, le=20)
    confirm_trials: int = Field(5, ge=0, le=100, description="Re-run trials per round for a case that flipped (0: no re-run).")
    history_runs: int = Field(10, ge=1, le=100, description="Finished runs pooled as a case's reference and for flakiness.")


class EvalConfig(_Section):
    """The whole evalbot.toml."""

    target: Target
    judge: JudgeConfig = Field(default_factory=JudgeConfig)
    run: RunConfig = Field(default_factory=RunConfig)

    @field_validator("target", mode="before")
    @classmethod
    def _target_kind(cls, value: object) -> object:
        if isinstance(value, dict) and value.get("kind") not in ("anthropic", "http", "command", "python"):
            raise ValueError("kind must be one of anthropic, http, command, python")
        return value

    def prompt_files(self, corpus_root: Path) -> list[Path]:
        """The prompt files the target reads, resolved inside the corpus folder."""
        if isinstance(self.target, AnthropicTarget) and self.target.system_prompt:
            return [inside_corpus(corpus_root, self.target.system_prompt, what="[target] system_prompt")]
        return []


def inside_corpus(corpus_root: Path, relative: str, *, what: str) -> Path:
    """Resolve a path written in evalbot.toml, refusing one that leaves the corpus folder."""
    root = corpus_root.resolve()
    path = (root / relative).resolve()
    if root not in path.parents:
        raise ConfigError(f"{what} = '{relative}' must be a path inside the corpus folder")
    return path


def load_eval_config(corpus_root: Path) -> EvalConfig:
    """Read and validate `<corpus>/evalbot.toml`, raising ConfigError naming the file and the field."""
    path = corpus_root / "evalbot.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path} is missing: create it with a [target] section (see README)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        config = EvalConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{path}: {loc}: {first['msg'].removeprefix('Value error, ')}") from None
    for prompt in config.prompt_files(corpus_root):
        if not prompt.is_file():
            raise ConfigError(f"{path}: [target] system_prompt file {prompt} does not exist")
    return config


def fingerprint(corpus_root: Path, config: EvalConfig) -> str:
    """A short hash of evalbot.toml and the prompt files, identifying the evaluated system's version."""
    digest = hashlib.sha256()
    for path in [corpus_root / "evalbot.toml", *config.prompt_files(corpus_root)]:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]

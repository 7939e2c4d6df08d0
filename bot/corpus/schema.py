"""The case file schema: pydantic models for `candidates/<id>.yaml` and `cases/<id>.yaml`.

Expectations are a discriminated union keyed by the single key each one has in YAML
(`- rubric: …`, `- not_contains: …`). `case_json_schema()` is what `evalbot corpus schema` prints.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

from bot.core.kinds import CaseStatus, Role

CASE_ID_PATTERN = r"^[a-z0-9]{4,32}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Rubric(_Strict):
    """Graded by the LLM judge against this rubric."""

    rubric: str = Field(min_length=1)


class Contains(_Strict):
    """The reply contains this text (case-sensitive)."""

    contains: str = Field(min_length=1)


class NotContains(_Strict):
    """The reply does not contain this text (case-sensitive)."""

    not_contains: str = Field(min_length=1)


class _RegexCheck(_Strict):
    @staticmethod
    def _compiles(value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return value


class Regex(_RegexCheck):
    """The reply matches this Python regular expression (re.search)."""

    regex: str = Field(min_length=1)

    @field_validator("regex")
    @classmethod
    def _valid(cls, value: str) -> str:
        return cls._compiles(value)


class NotRegex(_RegexCheck):
    """The reply does not match this Python regular expression (re.search)."""

    not_regex: str = Field(min_length=1)

    @field_validator("not_regex")
    @classmethod
    def _valid(cls, value: str) -> str:
        return cls._compiles(value)


class Equals(_Strict):
    """The reply, stripped of surrounding whitespace, equals this text."""

    equals: str


class JsonSchema(_Strict):
    """The reply is JSON that validates against this JSON Schema."""

    json_schema: dict[str, Any]

    @field_validator("json_schema")
    @classmethod
    def _valid(cls, value: dict[str, Any]) -> dict[str, Any]:
        import jsonschema  # 0.05 s to import: only for a case that has a json_schema expectation

        try:
            jsonschema.validators.validator_for(value).check_schema(value)
        except jsonschema.SchemaError as exc:
            raise ValueError(f"not a valid JSON Schema: {exc.message}") from None
        return value


class MaxChars(_Strict):
    """The reply is at most this many characters long."""

    max_chars: int = Field(gt=0)


EXPECTATION_KINDS = ("rubric", "contains", "not_contains", "regex", "not_regex", "equals", "json_schema", "max_chars")


def _expectation_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        keys = [k for k in value if k in EXPECTATION_KINDS]
        return keys[0] if len(keys) == 1 else None
    return expectation_kind(value) if isinstance(value, BaseModel) else None


Expectation = Annotated[
    (
        Annotated[Rubric, Tag("rubric")]
        | Annotated[Contains, Tag("contains")]
        | Annotated[NotContains, Tag("not_contains")]
        | Annotated[Regex, Tag("regex")]
        | Annotated[NotRegex, Tag("not_regex")]
        | Annotated[Equals, Tag("equals")]
        | Annotated[JsonSchema, Tag("json_schema")]
        | Annotated[MaxChars, Tag("max_chars")]
    ),
    Discriminator(
        _expectation_kind,
        custom_error_type="expectation_kind",
        custom_error_message=f"each expectation has exactly one of the keys {', '.join(EXPECTATION_KINDS)}",
    ),
]


def expectation_kind(expectation: BaseModel) -> str:
    """The YAML key of an expectation model, e.g. 'not_contains'."""
    return next(iter(type(expectation).model_fields))


def expectation_value(expectation: BaseModel) -> Any:
    """The value under the expectation's key."""
    return getattr(expectation, expectation_kind(expectation))


class Turn(_Strict):
    """One message of the conversation."""

    role: Role
    content: str


class Source(_Strict):
    """Where the case came from."""

    kind: Literal["slack", "transcript", "file"]
    permalink: str | None = None
    channel: str | None = None
    ts: str | None = None
    flagged_by: list[str] = Field(default_factory=list)
    flagged_at: datetime
    note: str | None = None

    @field_validator("ts", mode="before")
    @classmethod
    def _ts_is_text(cls, value: Any) -> Any:
        # An unquoted ts in hand-written YAML loads as a float and would lose digits; refuse it clearly.
        if isinstance(value, float):
            raise ValueError('ts must be a quoted string such as "1763700000.000100"')
        return value


class Case(_Strict):
    """A candidate or promoted case, exactly as stored in YAML."""

    id: str = Field(pattern=CASE_ID_PATTERN)
    title: str = Field(min_length=1, max_length=300)
    status: CaseStatus
    tags: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.\-/]+$")]] = Field(default_factory=list)
    source: Source
    conversation: list[Turn] = Field(min_length=1)
    expect: list[Expectation] = Field(default_factory=list)
    suggested_expect: list[Expectation] = Field(
        default_factory=list, description="Drafted at capture to prefill promotion; not graded."
    )
    promoted_by: str | None = None
    promoted_at: datetime | None = None
    quarantined: bool | None = Field(None, description="Flaky: still run and reported, but never fails the CI gate "
                                                 "(`evalbot corpus quarantine ID`).")

    @model_validator(mode="after")
    def _status_rules(self) -> Case:
        if self.status == "promoted":
            if not self.expect:
                raise ValueError("a promoted case needs at least one expectation under expect")
            if not any(turn.role == "assistant" for turn in self.conversation):
                raise ValueError("a promoted case needs an assistant turn in its conversation (the flagged reply)")
        elif self.expect:
            raise ValueError("a candidate has no expect entries; promote it to add expectations")
        return self

    @property
    def replay_turns(self) -> list[Turn]:
        """Every turn before the last assistant turn: the input replayed to the system under test."""
        last = self.flagged_index
        return self.conversation[:last] if last is not None else list(self.conversation)

    @property
    def flagged_index(self) -> int | None:
        for index in range(len(self.conversation) - 1, -1, -1):
            if self.conversation[index].role == "assistant":
                return index
        return None

    @property
    def flagged_reply(self) -> str | None:
        """The recorded assistant reply that was flagged (the last assistant turn)."""
        index = self.flagged_index
        return self.conversation[index].content if index is not None else None


def case_json_schema() -> dict[str, Any]:
    """The published JSON Schema of a case file."""
    schema = Case.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "evalbot case"
    return schema

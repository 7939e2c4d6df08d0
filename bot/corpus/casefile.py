"""A case as YAML text: stable key order, block style for multi-line strings, errors naming file and field."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import yaml
from pydantic import ValidationError

from bot.core.errors import InvalidCaseError
from bot.corpus.schema import Case

# libyaml's C emitter and parser when PyYAML was built with them (its wheels are), else the pure-Python ones.
_BaseDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _CaseDumper(_BaseDumper):  # type: ignore[misc, valid-type]
    """A safe dumper that writes multi-line text as `|` blocks so git diffs read line by line."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        # Block style cannot carry trailing spaces on a line or some control characters; PyYAML falls back.
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


def _datetime(dumper: yaml.SafeDumper, value: datetime) -> yaml.ScalarNode:
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    text = value.isoformat() + "Z"
    return dumper.represent_scalar("tag:yaml.org,2002:timestamp", text)


_CaseDumper.add_representer(str, _str)
_CaseDumper.add_representer(datetime, _datetime)


def case_to_data(case: Case) -> dict[str, Any]:
    """The case as plain data in the file's key order, omitting empty optional fields."""
    data = case.model_dump(mode="python", exclude_none=True)
    if not data.get("suggested_expect"):
        data.pop("suggested_expect", None)
    if case.status == "candidate" and not data.get("expect"):
        data["expect"] = []
    return data


def dump_case(case: Case) -> str:
    """Serialise a case to YAML text."""
    return yaml.dump(
        case_to_data(case), Dumper=_CaseDumper, sort_keys=False, allow_unicode=True, width=4096, default_flow_style=False
    )


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        loc_parts: list[str] = []
        for part in item["loc"]:
            # A tagged union repeats its tag (expect.0.regex.regex); show the field once.
            if not loc_parts or loc_parts[-1] != str(part):
                loc_parts.append(str(part))
        loc = ".".join(loc_parts) or "(top level)"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown field (check the spelling; see `evalbot corpus schema`)"
        elif item["type"] == "missing":
            message = "required field is missing"
        parts.append(f"{loc}: {message}")
    return "; ".join(parts)


def parse_case(text: str, *, where: str) -> Case:
    """Parse YAML text into a Case, raising InvalidCaseError that names `where` and the field."""
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "cannot be parsed"
        raise InvalidCaseError(f"{where}: not valid YAML{at}: {problem}") from None
    if not isinstance(data, dict):
        raise InvalidCaseError(f"{where}: a case file must be a YAML mapping with id, title, status, …")
    try:
        return Case.model_validate(data)
    except ValidationError as exc:
        raise InvalidCaseError(f"{where}: {_describe(exc)}") from None

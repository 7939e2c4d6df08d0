"""Deterministic graders: one function per expectation kind, each returning a Verdict that says exactly
what was expected and what came. The LLM judge for `rubric` lives in `bot.evals.judge`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from bot.corpus.schema import (
    Contains,
    Equals,
    JsonSchema,
    MaxChars,
    NotContains,
    NotRegex,
    Regex,
    expectation_kind,
)

_SHOWN = 160


@dataclass(frozen=True)
class Verdict:
    """One expectation's outcome on one reply."""

    kind: str
    passed: bool
    message: str
    error: bool = False  # the grader itself could not decide (judge unreachable, malformed verdict)

    def as_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "passed": self.passed, "message": self.message, "error": self.error}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Verdict:
        """A verdict as `as_dict` saved it (in a TrialResult row)."""
        return cls(str(data["kind"]), bool(data["passed"]), str(data["message"]), bool(data.get("error")))


def _show(text: str) -> str:
    flat = text.replace("\n", "\\n")
    return repr(flat if len(flat) <= _SHOWN else flat[:_SHOWN] + "…")


def _contains(exp: Contains, output: str) -> Verdict:
    ok = exp.contains in output
    msg = f"contains {_show(exp.contains)}" if ok else f"expected the reply to contain {_show(exp.contains)}; got {_show(output)}"
    return Verdict("contains", ok, msg)


def _not_contains(exp: NotContains, output: str) -> Verdict:
    at = output.find(exp.not_contains)
    if at < 0:
        return Verdict("not_contains", True, f"does not contain {_show(exp.not_contains)}")
    around = output[max(0, at - 40) : at + len(exp.not_contains) + 40]
    return Verdict("not_contains", False, f"expected no {_show(exp.not_contains)}; found it at char {at}: {_show(around)}")


def _regex(exp: Regex, output: str) -> Verdict:
    match = re.search(exp.regex, output)
    if match:
        return Verdict("regex", True, f"matches /{exp.regex}/ at {_show(match.group(0))}")
    return Verdict("regex", False, f"expected a match for /{exp.regex}/; got {_show(output)}")


def _not_regex(exp: NotRegex, output: str) -> Verdict:
    match = re.search(exp.not_regex, output)
    if not match:
        return Verdict("not_regex", True, f"no match for /{exp.not_regex}/")
    return Verdict("not_regex", False, f"expected no match for /{exp.not_regex}/; matched {_show(match.group(0))} at char {match.start()}")


def _equals(exp: Equals, output: str) -> Verdict:
    ok = output.strip() == exp.equals.strip()
    msg = "equals the expected text" if ok else f"expected exactly {_show(exp.equals.strip())}; got {_show(output.strip())}"
    return Verdict("equals", ok, msg)


def _json_schema(exp: JsonSchema, output: str) -> Verdict:
    text = output.strip()
    fenced = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", text, flags=re.S)
    if fenced:
        text = fenced.group(1)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return Verdict("json_schema", False, f"expected JSON; the reply is not JSON ({exc.msg} at char {exc.pos}): {_show(output)}")
    import jsonschema  # 40 ms to import: only for cases that have a json_schema expectation

    validator = jsonschema.validators.validator_for(exp.json_schema)(exp.json_schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if error is None:
        return Verdict("json_schema", True, "valid against the JSON Schema")
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return Verdict("json_schema", False, f"JSON does not match the schema at {where}: {error.message}")


def _max_chars(exp: MaxChars, output: str) -> Verdict:
    ok = len(output) <= exp.max_chars
    msg = f"{len(output)} chars <= {exp.max_chars}" if ok else f"expected at most {exp.max_chars} chars; got {len(output)}"
    return Verdict("max_chars", ok, msg)


_GRADERS: dict[str, Callable[..., Verdict]] = {
    "contains": _contains,
    "not_contains": _not_contains,
    "regex": _regex,
    "not_regex": _not_regex,
    "equals": _equals,
    "json_schema": _json_schema,
    "max_chars": _max_chars,
}


def is_deterministic(expectation: BaseModel) -> bool:
    """True for every kind graded without a model."""
    return expectation_kind(expectation) in _GRADERS


def grade_deterministic(expectation: BaseModel, output: str) -> Verdict:
    """Grade one non-rubric expectation against a reply."""
    return _GRADERS[expectation_kind(expectation)](expectation, output)

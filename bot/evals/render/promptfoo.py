"""The corpus as a promptfoo config that runs as exported (`promptfoo eval -c promptfooconfig.yaml`) and gives
evalbot's verdicts.

- The provider is evalbot.toml's [target]: `anthropic:messages:<model>` with its `max_tokens`; the system prompt
  opens every test's `messages` (a JSON chat prompt, `{{ messages }}`); rubrics are graded by [judge]'s model.
- Every deterministic expectation is a `javascript` assertion with Python's meaning, since promptfoo's built-ins
  differ: regexes are translated (`bot.evals.render.jsregex`), `max_chars` counts code points (not UTF-16
  units), `equals` trims Python's whitespace; `json_schema` is `is-json` after stripping a ```json fence
  (a `transform`, as evalbot's grader does) with schema patterns translated too.
- A case whose expectation has no faithful spelling is left out and reported (case id and reason).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from bot.core.errors import ExportRefusedError
from bot.corpus.schema import Case, expectation_kind, expectation_value
from bot.evals.config import AnthropicTarget, EvalConfig
from bot.evals.render.jsregex import SPACE, js_regex
from bot.evals.targets import replay_messages

DRAFT_07 = ("http://json-schema.org/draft-07/schema#", "http://json-schema.org/draft-07/schema")
# Draft-07's keywords (promptfoo's Ajv rejects others in strict mode; jsonschema would ignore them).
_KEYWORDS = {
    "$id", "$schema", "$ref", "$comment", "$defs", "title", "description", "default", "readOnly", "writeOnly", "examples",
    "multipleOf", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum", "maxLength", "minLength", "pattern",
    "items", "maxItems", "minItems", "uniqueItems", "contains", "maxProperties", "minProperties", "required",
    "additionalProperties", "definitions", "properties", "patternProperties", "propertyNames", "const", "enum", "type",
    "contentMediaType", "contentEncoding", "if", "then", "else", "allOf", "anyOf", "oneOf", "not",
}
# Keywords whose meaning differs between draft-07 (Ajv) and 2020-12 (jsonschema's default) or between the tools.
_DIFFERENT = {
    "format": "`format` is checked by promptfoo (ajv-formats) but only annotated by evalbot",
    "dependencies": "`dependencies` is enforced by draft-07 (promptfoo) but ignored by 2020-12 (evalbot)",
    "additionalItems": "`additionalItems` is draft-07 only (evalbot validates with 2020-12)",
}
_SCHEMA_MAPS = ("properties", "patternProperties", "definitions", "$defs")
_SCHEMA_ONE = ("additionalProperties", "items", "contains", "propertyNames", "not", "if", "then", "else")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf")

_WS = f"[{SPACE}]"
FENCE_TRANSFORM = (  # evalbot's json_schema grader: strip, then take the inside of a ```json fence
    f'((t) => {{ const m = /^```(?:json)?{_WS}*([\\s\\S]*?){_WS}*```$/u.exec(t); return m ? m[1] : t; }})'
    f'(output.replace(/^{_WS}+|{_WS}+$/gu, ""))'
)


def js_string(value: str) -> str:
    """A JavaScript string literal; braces escaped so promptfoo's Nunjucks never sees `{{` or `{%`."""
    return json.dumps(value, ensure_ascii=False).replace("{", "\\u007b").replace("}", "\\u007d")


def _regex_test(pattern: str) -> str:
    source, flags = js_regex(pattern)
    return f"new RegExp({js_string(source)}, {js_string(flags)}).test(output)"


def _pattern_for_ajv(pattern: str) -> str:
    source, flags = js_regex(pattern)
    if flags != "u":  # Ajv compiles patterns with the `u` flag only
        raise ExportRefusedError(f"the JSON Schema pattern {pattern!r} is case-insensitive as a whole: Ajv has no such flag")
    return source


def schema_for_promptfoo(schema: Any, where: str = "#") -> Any:
    """A copy of a JSON Schema that Ajv (draft-07, strict) validates as evalbot's jsonschema does, or refused."""
    if isinstance(schema, bool):
        return schema
    if not isinstance(schema, dict):
        raise ExportRefusedError(f"the JSON Schema at {where} is not an object")
    out = copy.deepcopy(schema)
    if "$schema" in out and out["$schema"] not in DRAFT_07:
        raise ExportRefusedError(f"the JSON Schema says $schema {out['$schema']}: promptfoo validates draft-07 only")
    for key in out:
        if key in _DIFFERENT:
            raise ExportRefusedError(f"{_DIFFERENT[key]} (at {where})")
        if key not in _KEYWORDS:
            raise ExportRefusedError(f"the JSON Schema keyword {key!r} at {where} is unknown to draft-07 (promptfoo's Ajv refuses it)")
    if "$ref" in out and len(set(out) - {"$ref", "$comment", "title", "description"}) > 0:
        raise ExportRefusedError(f"$ref with sibling keywords at {where} means different things in draft-07 and 2020-12")
    if isinstance(out.get("items"), list):
        raise ExportRefusedError(f"`items` as an array at {where} is draft-07 only (evalbot validates with 2020-12)")
    if "pattern" in out:
        out["pattern"] = _pattern_for_ajv(out["pattern"])
    for key in _SCHEMA_MAPS:
        if key in out:
            translate = key == "patternProperties"
            out[key] = {(_pattern_for_ajv(name) if translate else name): schema_for_promptfoo(sub, f"{where}/{key}/{name}")
                        for name, sub in out[key].items()}
    for key in _SCHEMA_ONE:
        if key in out:
            out[key] = schema_for_promptfoo(out[key], f"{where}/{key}")
    for key in _SCHEMA_LISTS:
        if key in out:
            out[key] = [schema_for_promptfoo(sub, f"{where}/{key}/{n}") for n, sub in enumerate(out[key])]
    return out


def promptfoo_assert(expectation: BaseModel) -> dict[str, Any]:
    """One promptfoo assertion giving evalbot's verdict for an expectation; ExportRefusedError when none can."""
    kind, value = expectation_kind(expectation), expectation_value(expectation)
    if kind == "rubric":
        return {"type": "llm-rubric", "value": value}
    if kind == "contains":
        return {"type": "javascript", "value": f"output.includes({js_string(value)})"}
    if kind == "not_contains":
        return {"type": "javascript", "value": f"!output.includes({js_string(value)})"}
    if kind == "regex":
        return {"type": "javascript", "value": _regex_test(value)}
    if kind == "not_regex":
        return {"type": "javascript", "value": "!" + _regex_test(value)}
    if kind == "equals":
        trimmed = f'output.replace(/^{_WS}+|{_WS}+$/gu, "")'
        return {"type": "javascript", "value": f"{trimmed} === {js_string(value.strip())}"}
    if kind == "json_schema":
        return {"type": "is-json", "value": schema_for_promptfoo(value), "transform": FENCE_TRANSFORM}
    if kind == "max_chars":
        return {"type": "javascript", "value": f"[...output].length <= {int(value)}"}
    raise ExportRefusedError(f"no promptfoo assertion for {kind}")


def promptfoo_test(case: Case, *, system_prompt: str | None) -> dict[str, Any]:
    """One promptfoo test: the replayed chat (system prompt first) as JSON, and one assertion per expectation."""
    messages = replay_messages(case)
    if system_prompt:
        messages = [{"role": "system", "content": system_prompt}, *messages]
    return {
        "description": f"{case.id}: {case.title}",
        # A JSON string, not a list: promptfoo expands a list var into one test per item.
        "vars": {"case_id": case.id, "messages": json.dumps(messages, ensure_ascii=False)},
        "assert": [promptfoo_assert(e) for e in case.expect],
        "metadata": {"case_id": case.id, "tags": list(case.tags), "permalink": case.source.permalink},
    }


def _provider(config: EvalConfig | None) -> list[dict[str, Any]]:
    if config is None or not isinstance(config.target, AnthropicTarget):
        return []
    return [{"id": f"anthropic:messages:{config.target.model}", "config": {"max_tokens": config.target.max_tokens}}]


def promptfoo_config(cases: Sequence[Case], *, config: EvalConfig | None, system_prompt: str | None
                     ) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The promptfoo config for the cases, and (case id, reason) for each case left out."""
    tests, refused = [], []
    for case in cases:
        try:
            tests.append(promptfoo_test(case, system_prompt=system_prompt))
        except ExportRefusedError as exc:
            refused.append((case.id, str(exc)))
    document: dict[str, Any] = {
        "description": f"evalbot corpus: {len(tests)} case(s)",
        "prompts": [{"id": "evalbot-replay", "label": "evalbot replay", "raw": "{{ messages }}"}],
        "providers": _provider(config),
        "tests": tests,
    }
    if config is not None:
        judge = {"id": f"anthropic:messages:{config.judge.model}", "config": {"max_tokens": config.judge.max_tokens}}
        document["defaultTest"] = {"options": {"provider": judge}}
    if not document["providers"]:
        kind = config.target.kind if config is not None else "none"
        document["providers"] = [{"id": "echo", "label": f"replace me: evalbot's [target] kind is {kind}, which promptfoo cannot call"}]
    return document, refused

"""Export the promoted cases for other eval tools: promptfoo test YAML, an Inspect AI dataset, plain JSONL.

- promptfoo: a YAML list of tests (`tests: file://cases.yaml`); each has `vars.messages` (the replayed turns,
  for a chat prompt such as `{{ messages | dump }}`), `vars.case_id` and one assertion per expectation
  (rubric -> llm-rubric, contains/not-contains, regex/not-regex (JavaScript regexes: Python's inline flags
  become RegExp flags), equals -> exact match after trimming, json_schema -> is-json with the schema,
  max_chars -> a length check).
- inspect: JSONL samples for `inspect_ai.dataset.json_dataset`: `id`, `input` (chat messages), `target` (the
  rubrics, else the expected texts) and `metadata` (title, tags, permalink and every expectation, so a scorer
  can apply evalbot's own graders).
- jsonl: one case per line, exactly the case file's data as JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import yaml
from pydantic import BaseModel

from bot.core.redaction_exits import redact_case
from bot.corpus.schema import Case, expectation_kind, expectation_value
from bot.evals.targets import replay_messages

FORMATS = ("promptfoo", "inspect", "jsonl")


class _BlockDumper(yaml.SafeDumper):
    """SafeDumper writing multi-line strings as `|` blocks, so conversations stay readable."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_BlockDumper.add_representer(str, _str)
_INLINE_FLAGS = re.compile(r"^\(\?([aiLmsux]+)\)")


def js_regex(pattern: str) -> tuple[str, str]:
    """A Python regex as (JavaScript source, flags): leading inline flags become flags, (?P<n> becomes (?<n>."""
    flags = ""
    match = _INLINE_FLAGS.match(pattern)
    if match:
        flags = "".join(sorted({f for f in match.group(1) if f in "ims"}))
        pattern = pattern[match.end():]
    pattern = re.sub(r"\(\?P=(\w+)\)", r"\\k<\1>", pattern.replace("(?P<", "(?<"))
    return pattern, flags


def _regex_assert(pattern: str, *, negate: bool) -> dict[str, Any]:
    source, flags = js_regex(pattern)
    if not flags:
        return {"type": "not-regex" if negate else "regex", "value": source}
    test = f"new RegExp({json.dumps(source)}, {json.dumps(flags)}).test(output)"
    return {"type": "javascript", "value": f"!{test}" if negate else test}


def promptfoo_assert(expectation: BaseModel) -> dict[str, Any]:
    """One promptfoo assertion equivalent to an evalbot expectation."""
    kind, value = expectation_kind(expectation), expectation_value(expectation)
    if kind == "rubric":
        return {"type": "llm-rubric", "value": value}
    if kind == "contains":
        return {"type": "contains", "value": value}
    if kind == "not_contains":
        return {"type": "not-contains", "value": value}
    if kind in ("regex", "not_regex"):
        return _regex_assert(value, negate=kind == "not_regex")
    if kind == "equals":
        return {"type": "javascript", "value": f"output.trim() === {json.dumps(value.strip())}"}
    if kind == "json_schema":
        return {"type": "is-json", "value": value}
    if kind == "max_chars":
        return {"type": "javascript", "value": f"output.length <= {value}"}
    raise ValueError(f"no promptfoo assertion for {kind}")


def _expectations(case: Case) -> list[dict[str, Any]]:
    return [e.model_dump(mode="json") for e in case.expect]


def to_promptfoo(cases: Sequence[Case]) -> str:
    """The cases as a promptfoo tests file (YAML)."""
    tests = [
        {
            "description": f"{case.id}: {case.title}",
            "vars": {"case_id": case.id, "messages": replay_messages(case)},
            "assert": [promptfoo_assert(e) for e in case.expect],
            "metadata": {"case_id": case.id, "tags": list(case.tags), "permalink": case.source.permalink},
        }
        for case in cases
    ]
    return yaml.dump(tests, Dumper=_BlockDumper, sort_keys=False, allow_unicode=True, width=4096)


def inspect_sample(case: Case) -> dict[str, Any]:
    """One Inspect AI sample (the fields of `inspect_ai.dataset.Sample`)."""
    rubrics = [expectation_value(e) for e in case.expect if expectation_kind(e) == "rubric"]
    texts = [expectation_value(e) for e in case.expect if expectation_kind(e) in ("equals", "contains")]
    return {
        "id": case.id,
        "input": replay_messages(case),
        "target": rubrics or texts,
        "metadata": {"title": case.title, "tags": list(case.tags), "permalink": case.source.permalink,
                     "expect": _expectations(case)},
    }


def to_inspect(cases: Sequence[Case]) -> str:
    """The cases as an Inspect AI JSONL dataset."""
    return "".join(json.dumps(inspect_sample(case), ensure_ascii=False) + "\n" for case in cases)


def to_jsonl(cases: Sequence[Case]) -> str:
    """The cases as JSONL, one case file's data per line."""
    return "".join(case.model_dump_json(exclude_none=True) + "\n" for case in cases)


def export_cases(cases: Sequence[Case], fmt: str) -> str:
    """The cases in format `fmt` (promptfoo | inspect | jsonl)."""
    writers = {"promptfoo": to_promptfoo, "inspect": to_inspect, "jsonl": to_jsonl}
    if fmt not in writers:
        raise ValueError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    return writers[fmt]([redact_case(case) for case in cases])  # an export is an exit: redact on the way out

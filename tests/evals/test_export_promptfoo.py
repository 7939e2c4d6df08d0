"""The promptfoo export: a config that runs as exported (provider, system prompt, judge from evalbot.toml) and
whose assertions, evaluated by node as promptfoo does, give evalbot's verdicts; refusals name the case and why."""

from __future__ import annotations

import json
import shutil
import subprocess

import jsonschema
import pytest
import yaml

from bot.core.errors import ExportRefusedError
from bot.corpus.files import Corpus
from bot.corpus.schema import Case
from bot.evals.config import load_eval_config
from bot.evals.graders import grade_deterministic
from bot.evals.render.export import export_corpus, system_prompt_of
from bot.evals.render.promptfoo import FENCE_TRANSFORM, promptfoo_assert, promptfoo_config, schema_for_promptfoo
from tests.helpers.paths import EXAMPLE_CORPUS


def case(case_id: str, *expect: dict) -> Case:
    return Case.model_validate({
        "id": case_id, "title": f"case {case_id}", "status": "promoted",
        "source": {"kind": "file", "flagged_at": "2026-11-20T00:00:00Z"},
        "conversation": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}],
        "expect": list(expect),
    })


def expectation(data: dict):
    return case("zzzz0001", data).expect[0]


def test_the_config_carries_the_provider_system_prompt_and_judge_of_evalbot_toml():
    config = load_eval_config(EXAMPLE_CORPUS)
    system = system_prompt_of(config, EXAMPLE_CORPUS)
    cases = Corpus(EXAMPLE_CORPUS).cases("promoted")
    document = yaml.safe_load(export_corpus(cases, "promptfoo", name="promptfooconfig.yaml", config=config,
                                            system_prompt=system).main)
    assert document["providers"] == [{"id": "anthropic:messages:claude-haiku-4-5", "config": {"max_tokens": 1024}}]
    assert document["prompts"][0]["raw"] == "{{ messages }}"
    assert document["defaultTest"]["options"]["provider"]["id"] == "anthropic:messages:claude-sonnet-4-6"
    first = json.loads(document["tests"][0]["vars"]["messages"])
    assert first[0] == {"role": "system", "content": (EXAMPLE_CORPUS / "prompts" / "system.md").read_text()}
    assert [m["role"] for m in first[1:]] == [t.role for t in cases[0].replay_turns]
    assert len(document["tests"]) == len(cases)


def test_a_json_export_is_json():
    text = export_corpus([case("zzzz0002", {"contains": "x"})], "promptfoo", name="config.json").main
    assert json.loads(text)["tests"][0]["assert"] == [{"type": "javascript", "value": 'output.includes("x")'}]


def test_a_case_that_cannot_be_exported_is_left_out_with_its_id_and_the_reason():
    good, bad = case("zzzz0003", {"regex": "ok"}), case("zzzz0004", {"contains": "x"}, {"regex": "a++"})
    document, refused = promptfoo_config([good, bad], config=None, system_prompt=None)
    assert [t["vars"]["case_id"] for t in document["tests"]] == ["zzzz0003"]
    assert refused == [("zzzz0004", "possessive quantifiers (*+, ++, ?+, {n}+) have no JavaScript equivalent")]


# (expectation, reply): each pair is graded by evalbot and by the exported assertion under node.
PARITY = [
    ({"regex": r"\Arefund\Z"}, "refund\n"), ({"regex": r"\Arefund\Z"}, "refund"), ({"regex": r"^Yes$"}, "Yes\n"),
    ({"regex": r"(?m)^Total: \d+$"}, "a\r\nTotal: ١٢\nb"), ({"regex": r"(?x) refund \s+ policy # c"}, "refund  policy"),
    ({"regex": r"(?i:refund) policy"}, "REFUND POLICY"), ({"regex": r"(?i:refund) policy"}, "Refund policy"),
    ({"not_regex": r"(?i)card number"}, "Card Number?"), ({"regex": "total.due"}, "total\rdue"),
    ({"contains": "{{ x }}"}, "a {{ x }} b"), ({"not_contains": "{% if %}"}, "none"),
    ({"equals": "YES"}, "YES\x1c"), ({"equals": "YES"}, " YES\u3000"), ({"equals": "YES"}, "YES."),
    ({"max_chars": 5}, "😀😀😀😀😀"), ({"max_chars": 4}, "😀😀😀😀😀"), ({"max_chars": 3}, "e\u0301e\u0301"),
    ({"json_schema": {"type": "object", "required": ["ok"]}}, '```json\n{"ok": true}\n```'),
    ({"json_schema": {"type": "object", "required": ["ok"]}}, '  ```\n{"ok": 1}```  '),
    ({"json_schema": {"type": "object", "required": ["ok"]}}, 'Here: {"ok": true}'),
    ({"json_schema": {"type": "object", "required": ["ok"]}}, '```json\n{"no": true}\n```'),
]


def test_exported_assertions_give_evalbots_verdicts_when_node_runs_them():
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    jobs = []
    for data, reply in PARITY:
        exported = promptfoo_assert(expectation(data))
        code = exported["transform"] if exported["type"] == "is-json" else exported["value"]
        jobs.append({"code": code, "output": reply})
    script = ("const jobs = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
              "console.log(JSON.stringify(jobs.map(j => new Function('output', 'return (' + j.code + ');')(j.output))));")
    done = subprocess.run([node, "-e", script], input=json.dumps(jobs), capture_output=True, text=True, check=True)
    disagree = []
    for (data, reply), value in zip(PARITY, json.loads(done.stdout)):
        if "json_schema" in data:  # is-json: JSON.parse of the transformed reply, then the schema (Ajv's draft 7)
            try:
                theirs = jsonschema.Draft7Validator(data["json_schema"]).is_valid(json.loads(value))
            except json.JSONDecodeError:
                theirs = False
        else:
            theirs = bool(value)
        if theirs != grade_deterministic(expectation(data), reply).passed:
            disagree.append((data, reply, theirs))
    assert disagree == []


def test_json_schema_strips_a_fence_as_evalbot_does_and_keeps_the_schema():
    exported = promptfoo_assert(expectation({"json_schema": {"type": "object"}}))
    assert exported == {"type": "is-json", "value": {"type": "object"}, "transform": FENCE_TRANSFORM}


def test_schema_patterns_are_translated_for_ajv():
    schema = {"type": "object", "properties": {"id": {"type": "string", "pattern": r"^AO-\d{6}$"}},
              "patternProperties": {r"^x\d$": {"type": "integer"}}}
    out = schema_for_promptfoo(schema)
    assert out["properties"]["id"]["pattern"] == r"^AO-[\p{Nd}]{6}(?=\n?$)"
    assert list(out["patternProperties"]) == [r"^x[\p{Nd}](?=\n?$)"]
    assert schema["properties"]["id"]["pattern"] == r"^AO-\d{6}$"  # the case's own schema is left alone


@pytest.mark.parametrize(("schema", "reason"), [
    ({"type": "string", "format": "email"}, "`format` is checked by promptfoo"),
    ({"$schema": "https://json-schema.org/draft/2020-12/schema"}, "promptfoo validates draft-07 only"),
    ({"dependencies": {"a": ["b"]}}, "`dependencies`"),
    ({"prefixItems": [{"type": "string"}]}, "keyword 'prefixItems' .* unknown to draft-07"),
    ({"properties": {"a": {"$ref": "#/$defs/x", "type": "string"}}, "$defs": {"x": {}}}, "sibling keywords at #/properties/a"),
    ({"items": [{"type": "string"}]}, "`items` as an array"),
    ({"properties": {"a": {"pattern": "(?i)abc"}}}, "case-insensitive as a whole"),
])
def test_schemas_that_ajv_and_jsonschema_read_differently_are_refused(schema, reason):
    with pytest.raises(ExportRefusedError, match=reason):
        schema_for_promptfoo(schema)

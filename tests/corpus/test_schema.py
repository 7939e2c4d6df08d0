"""The case schema: the designed file validates, and each rule gives a clear message."""

import copy

import pytest
import yaml

from bot.core.errors import InvalidCaseError
from bot.corpus.casefile import dump_case, parse_case
from bot.corpus.schema import EXPECTATION_KINDS, Case, case_json_schema
from tests.helpers.paths import EXAMPLE_CORPUS

DESIGN_EXAMPLE = """
id: k3m9x2qa
title: Refund answer invents a 90-day window
status: promoted            # candidate | promoted
tags: [refunds]
source:
  kind: slack               # slack | transcript | file
  permalink: https://example.slack.com/archives/C0123/p1763700000000100
  channel: C0123
  ts: "1763700000.000100"
  flagged_by: [U0A, U0B]
  flagged_at: 2026-11-20T10:00:00Z
  note: "policy is 30 days"
conversation:
  - {role: user, content: "How long do I have to return this?"}
  - {role: assistant, content: "You have 90 days."}
expect:
  - rubric: States the 30-day window and invents no other.
  - not_contains: 90 days
promoted_by: U0C
promoted_at: 2026-11-20T11:00:00Z
"""


def base() -> dict:
    return yaml.safe_load(DESIGN_EXAMPLE)


def test_design_example_parses():
    case = parse_case(DESIGN_EXAMPLE, where="k3m9x2qa.yaml")
    assert case.source.ts == "1763700000.000100"
    assert [type(e).__name__ for e in case.expect] == ["Rubric", "NotContains"]
    assert case.flagged_reply == "You have 90 days."
    assert [t.content for t in case.replay_turns] == ["How long do I have to return this?"]


def test_round_trip_is_stable():
    case = parse_case(DESIGN_EXAMPLE, where="x")
    text = dump_case(case)
    assert parse_case(text, where="x") == case
    assert dump_case(parse_case(text, where="x")) == text
    assert text.splitlines()[:3] == ["id: k3m9x2qa", "title: Refund answer invents a 90-day window", "status: promoted"]
    assert "ts: '1763700000.000100'" in text


def test_multiline_text_is_written_as_a_block():
    data = base()
    data["conversation"][1]["content"] = "Line one.\nLine two."
    text = dump_case(Case.model_validate(data))
    assert "content: |-\n    Line one.\n    Line two." in text


def test_example_corpus_uses_every_expectation_kind():
    kinds = set()
    for path in (EXAMPLE_CORPUS / "cases").glob("*.yaml"):
        case = parse_case(path.read_text(), where=path.name)
        kinds |= {next(iter(e.model_dump())) for e in case.expect}
    assert kinds == set(EXPECTATION_KINDS)


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda d: d.update(colour="red"), "colour: unknown field"),
        (lambda d: d["source"].update(kind="email"), "source.kind"),
        (lambda d: d.update(expect=[]), "a promoted case needs at least one expectation"),
        (lambda d: d.update(expect=[{"regex": "("}]), "expect.0.regex: not a valid regular expression"),
        (lambda d: d.update(expect=[{"must_contain": "x"}]), "expect.0: each expectation has exactly one of the keys"),
        (lambda d: d.update(expect=[{"contains": "a", "equals": "b"}]), "expect.0: each expectation has exactly one"),
        (lambda d: d.update(expect=[{"max_chars": 0}]), "expect.0.max_chars"),
        (lambda d: d.update(expect=[{"json_schema": {"type": "nope"}}]), "not a valid JSON Schema"),
        (lambda d: d.update(id="../../etc/passwd"), "id: String should match pattern"),
        (lambda d: d.update(status="candidate"), "a candidate has no expect entries"),
        (lambda d: d["source"].update(ts=1763700000.0001), 'ts must be a quoted string'),
        (lambda d: d.pop("title"), "title: required field is missing"),
    ],
)
def test_invalid_case_names_file_and_field(mutate, fragment):
    data = copy.deepcopy(base())
    mutate(data)
    with pytest.raises(InvalidCaseError) as raised:
        parse_case(yaml.safe_dump(data), where="cases/k3m9x2qa.yaml")
    assert str(raised.value).startswith("cases/k3m9x2qa.yaml: ")
    assert fragment in str(raised.value)


def test_malformed_yaml_names_the_line():
    with pytest.raises(InvalidCaseError) as raised:
        parse_case("id: abcd\ntitle: [unclosed\n", where="cases/abcd.yaml")
    assert "cases/abcd.yaml: not valid YAML at line" in str(raised.value)


def test_non_mapping_is_refused():
    with pytest.raises(InvalidCaseError, match="must be a YAML mapping"):
        parse_case("- just\n- a list\n", where="x.yaml")


def test_json_schema_validates_the_example_and_rejects_unknown_fields():
    import jsonschema

    schema = case_json_schema()
    data = yaml.safe_load(dump_case(parse_case(DESIGN_EXAMPLE, where="x")))
    data["source"]["flagged_at"] = "2026-11-20T10:00:00Z"
    data["promoted_at"] = "2026-11-20T11:00:00Z"
    jsonschema.validate(data, schema)
    data["colour"] = "red"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, schema)

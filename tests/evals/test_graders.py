"""Deterministic graders, table-driven: each verdict and the exact words of its message."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter

from bot.corpus.schema import Expectation
from bot.evals.graders import Verdict, grade_deterministic, is_deterministic

_PARSE = TypeAdapter(Expectation)
ORDER_SCHEMA = {
    "type": "object",
    "required": ["order_id", "eta_days"],
    "properties": {"order_id": {"type": "string", "pattern": r"^AO-\d{6}$"}, "eta_days": {"type": "integer", "minimum": 0}},
    "additionalProperties": False,
}


def grade(expectation: dict, output: str) -> Verdict:
    return grade_deterministic(_PARSE.validate_python(expectation), output)


@pytest.mark.parametrize(
    ("expectation", "output", "passed", "message"),
    [
        # contains: case-sensitive substring
        ({"contains": "30 days"}, "You have 30 days.", True, "contains '30 days'"),
        ({"contains": "30 days"}, "You have 30 Days.", False, "expected the reply to contain '30 days'; got 'You have 30 Days.'"),
        ({"contains": "$75"}, "", False, "expected the reply to contain '$75'; got ''"),
        # not_contains: where it was found, with context
        ({"not_contains": "90 days"}, "30 days", True, "does not contain '90 days'"),
        ({"not_contains": "90 days"}, "You have 90 days.", False, "expected no '90 days'; found it at char 9: 'You have 90 days.'"),
        # regex / not_regex: re.search, inline flags
        ({"regex": r"\b30[- ]day"}, "a 30-day window", True, "matches /\\b30[- ]day/ at '30-day'"),
        ({"regex": r"\b30[- ]day"}, "a 90-day window", False, "expected a match for /\\b30[- ]day/; got 'a 90-day window'"),
        ({"regex": r"(?i)^yes$"}, "YES", True, "matches /(?i)^yes$/ at 'YES'"),
        ({"not_regex": r"(?i)cvv"}, "no card details", True, "no match for /(?i)cvv/"),
        ({"not_regex": r"(?i)cvv"}, "send the CVV", False, "expected no match for /(?i)cvv/; matched 'CVV' at char 9"),
        # equals: surrounding whitespace ignored, nothing else
        ({"equals": "YES"}, "  YES\n", True, "equals the expected text"),
        ({"equals": "YES"}, "Yes", False, "expected exactly 'YES'; got 'Yes'"),
        ({"equals": "YES"}, "YES.", False, "expected exactly 'YES'; got 'YES.'"),
        # json_schema: parsed (a ```json fence allowed), then validated
        ({"json_schema": ORDER_SCHEMA}, '{"order_id": "AO-771204", "eta_days": 3}', True, "valid against the JSON Schema"),
        ({"json_schema": ORDER_SCHEMA}, '```json\n{"order_id": "AO-771204", "eta_days": 3}\n```', True, "valid against the JSON Schema"),
        ({"json_schema": ORDER_SCHEMA}, "Your order has shipped!", False,
         "expected JSON; the reply is not JSON (Expecting value at char 0): 'Your order has shipped!'"),
        ({"json_schema": ORDER_SCHEMA}, '{"order_id": "771204", "eta_days": 3}', False,
         "JSON does not match the schema at order_id: '771204' does not match '^AO-\\\\d{6}$'"),
        ({"json_schema": ORDER_SCHEMA}, '{"order_id": "AO-771204"}', False,
         "JSON does not match the schema at (root): 'eta_days' is a required property"),
        ({"json_schema": ORDER_SCHEMA}, '{"order_id": "AO-771204", "eta_days": -1}', False,
         "JSON does not match the schema at eta_days: -1 is less than the minimum of 0"),
        # max_chars: the length of the reply as it came
        ({"max_chars": 5}, "12345", True, "5 chars <= 5"),
        ({"max_chars": 5}, "123456", False, "expected at most 5 chars; got 6"),
    ],
)
def test_grader(expectation, output, passed, message):
    verdict = grade(expectation, output)
    assert verdict.kind == next(iter(expectation))
    assert (verdict.passed, verdict.message, verdict.error) == (passed, message, False)


def test_long_replies_are_shown_clipped_on_one_line():
    verdict = grade({"contains": "refund"}, "line one\n" + "x" * 400)
    assert verdict.message.startswith("expected the reply to contain 'refund'; got 'line one\\\\nxxx")
    assert verdict.message.endswith("…'") and len(verdict.message) < 250


def test_not_contains_shows_the_surroundings_of_a_match_deep_in_the_reply():
    verdict = grade({"not_contains": "90 days"}, "a" * 100 + " 90 days " + "b" * 100)
    assert verdict.message == f"expected no '90 days'; found it at char 101: '{'a' * 39} 90 days {'b' * 39}'"


@pytest.mark.parametrize(("expectation", "deterministic"), [({"rubric": "x"}, False), ({"contains": "x"}, True), ({"max_chars": 3}, True)])
def test_is_deterministic(expectation, deterministic):
    assert is_deterministic(_PARSE.validate_python(expectation)) is deterministic


def test_verdict_as_dict_is_what_the_database_stores():
    assert grade({"max_chars": 1}, "ab").as_dict() == {"kind": "max_chars", "passed": False, "message": "expected at most 1 chars; got 2", "error": False}

"""evalbot's deterministic graders with nothing but the standard library and jsonschema, so an exported Inspect AI
task can embed this module's source and give evalbot's verdicts without evalbot installed.

`grade(expectation, output)` takes an expectation as the case file writes it (`{"regex": "..."}`) and returns
(passed, explanation). tests/evals/test_export_inspect.py holds it to the verdicts of `bot.evals.graders`.
"""

from __future__ import annotations

import json
import re
from typing import Any

DETERMINISTIC = ("contains", "not_contains", "regex", "not_regex", "equals", "json_schema", "max_chars")


def _json_schema(schema: Any, output: str) -> tuple[bool, str]:
    import jsonschema

    text = output.strip()
    fenced = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", text, flags=re.S)
    if fenced:
        text = fenced.group(1)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return False, f"the reply is not JSON ({exc.msg} at char {exc.pos})"
    validator = jsonschema.validators.validator_for(schema)(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if error is None:
        return True, "valid against the JSON Schema"
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return False, f"JSON does not match the schema at {where}: {error.message}"


def grade(expectation: dict[str, Any], output: str) -> tuple[bool, str]:
    """evalbot's verdict for one deterministic expectation on one reply: (passed, explanation)."""
    [(kind, value)] = expectation.items()
    if kind == "contains":
        return value in output, f"contains {value!r}" if value in output else f"expected {value!r}"
    if kind == "not_contains":
        return value not in output, f"does not contain {value!r}" if value not in output else f"found {value!r}"
    if kind in ("regex", "not_regex"):
        match = re.search(value, output)
        if kind == "regex":
            return match is not None, f"matches /{value}/" if match else f"expected a match for /{value}/"
        return match is None, f"no match for /{value}/" if match is None else f"matched /{value}/ at {match.start()}"
    if kind == "equals":
        ok = output.strip() == value.strip()
        return ok, "equals the expected text" if ok else f"expected exactly {value.strip()!r}"
    if kind == "json_schema":
        return _json_schema(value, output)
    if kind == "max_chars":
        return len(output) <= value, f"{len(output)} chars (at most {value})"
    raise ValueError(f"{kind} is not a deterministic expectation")

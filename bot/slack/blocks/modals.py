"""The triage modals (promote, edit, reject) and the pure reading of what was typed into them.

Builders return view dicts (tested as dicts) within Slack's limits: at most 100 blocks, titles of 24 characters,
labels and placeholders of 150, text inputs of 3000 (limits, escaping and clipping from `bot.slack.blocks.kit`,
lengths in UTF-16 units as Slack counts them). Readers turn `view.state.values` into typed input plus a
`{block_id: message}` dict for `response_action: errors`, so a bad regex or a bad tag is shown in the modal.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import BaseModel

from bot.core.errors import InvalidIdError
from bot.corpus.schema import Case, Contains, NotContains, Regex, Rubric, expectation_kind, expectation_value
from bot.slack.blocks import kit
from bot.slack.blocks.kit import clip, escape, slack_len

PROMOTE_VIEW = "evalbot_promote_modal"
EDIT_VIEW = "evalbot_edit_modal"
REJECT_VIEW = "evalbot_reject_modal"
MAX_VIEW_BLOCKS = kit.VIEW_BLOCKS
INPUT_CHARS = kit.INPUT_CHARS
REPLY_CHARS = 1500  # the flagged reply quoted at the top of a modal, after escaping
TITLE_CHARS = 300
TAG = re.compile(r"^[A-Za-z0-9_.\-/]+$")
# Block ids (each input's action id is the same).
TITLE, TAGS, RUBRIC, CONTAINS, NOT_CONTAINS, REGEX, REASON = "title", "tags", "rubric", "contains", "not_contains", "regex", "reason"
NO_EXPECTATION = "Give at least one expectation: a rubric, a must-contain or must-not-contain line, or a regex."


@dataclass(frozen=True)
class Origin:
    """Which case a modal is about and where it was opened, so its outcome is told there (private_metadata)."""

    case_id: str
    channel: str | None = None
    thread_ts: str | None = None
    response_url: str | None = None
    digest: str | None = None  # the case's content hash when the form opened: an edit applies only to that version

    def dump(self) -> str:
        return json.dumps({k: v for k, v in asdict(self).items() if v is not None}, separators=(",", ":"))

    @classmethod
    def load(cls, text: str | None) -> Origin:
        try:
            data = json.loads(text or "")
            return cls(**{k: data.get(k) for k in ("case_id", "channel", "thread_ts", "response_url", "digest")})
        except (ValueError, TypeError, AttributeError):
            raise InvalidIdError("this form is from an older version of evalbot: open it again") from None


@dataclass(frozen=True)
class FormFields:
    """Expectations as the form shows them; `kept` are the kinds it cannot show, kept unchanged on submit."""

    rubric: str | None = None
    contains: list[str] = field(default_factory=list)
    not_contains: list[str] = field(default_factory=list)
    regex: str | None = None
    kept: list[BaseModel] = field(default_factory=list)


def split_expectations(expect: Sequence[BaseModel]) -> FormFields:
    """The form's view of a list of expectations: the first rubric and regex, every (not-)contains, the rest kept."""
    rubric, regex, contains, not_contains, kept = None, None, [], [], []
    for item in expect:
        if isinstance(item, Rubric) and rubric is None and slack_len(item.rubric) <= INPUT_CHARS:
            rubric = item.rubric
        elif isinstance(item, Regex) and regex is None and len(item.regex) <= 500:
            regex = item.regex
        elif isinstance(item, Contains) and "\n" not in item.contains and item.contains == item.contains.strip():
            contains.append(item.contains)
        elif isinstance(item, NotContains) and "\n" not in item.not_contains and item.not_contains == item.not_contains.strip():
            not_contains.append(item.not_contains)
        else:
            kept.append(item)
    # Lines that would not fit the text area stay as they are rather than being cut.
    if slack_len("\n".join(contains)) > INPUT_CHARS:
        kept, contains = kept + [Contains(contains=text) for text in contains], []
    if slack_len("\n".join(not_contains)) > INPUT_CHARS:
        kept, not_contains = kept + [NotContains(not_contains=text) for text in not_contains], []
    return FormFields(rubric=rubric, contains=contains, not_contains=not_contains, regex=regex, kept=kept)


# ---------------------------------------------------------------- builders


def _plain(text: str) -> dict[str, Any]:
    return kit.plain(text)


def _input(block_id: str, label: str, *, initial: str | None = None, optional: bool = True, multiline: bool = False,
           max_length: int = INPUT_CHARS, hint: str | None = None, placeholder: str | None = None) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "plain_text_input", "action_id": block_id, "multiline": multiline, "max_length": max_length}
    if initial:
        element["initial_value"] = kit.cut(initial, max_length)
    if placeholder:
        element["placeholder"] = _plain(clip(placeholder, 150))
    block: dict[str, Any] = {"type": "input", "block_id": block_id, "optional": optional, "label": _plain(clip(label, 150)),
                             "element": element}
    if hint:
        block["hint"] = _plain(clip(hint, 150))
    return block


def _case_header(case: Case) -> list[dict[str, Any]]:
    link = f" · <{case.source.permalink}|source thread>" if case.source.permalink else ""
    blocks: list[dict[str, Any]] = [
        kit.section(f"`{case.id}` *{escape(case.title)}*"),
        kit.context(f"{len(case.conversation)} turns{link}"),
    ]
    reply = case.flagged_reply
    if reply is not None:
        # Escaped and prefixed first, cut last: markup-dense replies grow several times when escaped.
        blocks.append(kit.section(kit.quote(reply, REPLY_CHARS, prefix="*The flagged reply*\n")))
    return blocks


def _expectation_inputs(fields: FormFields, *, suggested: bool) -> list[dict[str, Any]]:
    blocks = [
        _input(RUBRIC, "Rubric", initial=fields.rubric, multiline=True,
               hint="What a correct reply must do; the LLM judge grades new replies against it.",
               placeholder="e.g. States the 30-day return window and invents no other."),
        _input(CONTAINS, "Must contain", initial="\n".join(fields.contains), multiline=True,
               hint="One text per line; the reply must contain each (case-sensitive)."),
        _input(NOT_CONTAINS, "Must not contain", initial="\n".join(fields.not_contains), multiline=True,
               hint="One text per line; the reply must contain none of them (case-sensitive).",
               placeholder="e.g. 90 days"),
        _input(REGEX, "Regex", initial=fields.regex, max_length=500,
               hint="A Python regular expression the reply must match (re.search)."),
    ]
    if fields.kept:
        shown = ", ".join(f"`{expectation_kind(e)}: {clip(str(expectation_value(e)), 60)}`" for e in fields.kept[:10])
        shown += f" and {len(fields.kept) - 10} more" if len(fields.kept) > 10 else ""
        blocks.append(kit.context(f"Also kept as they are (edit the case file to change them): {escape(shown)}"))
    if suggested:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text":
            "A candidate's expectations are suggestions that prefill its promotion; they are not graded."}]})
    return blocks


def _modal(callback_id: str, title: str, submit: str, origin: Origin, blocks: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "modal", "callback_id": callback_id, "private_metadata": origin.dump(), "title": _plain(title),
            "submit": _plain(submit), "close": _plain("Cancel"), "blocks": blocks[:MAX_VIEW_BLOCKS]}


def _title_and_tags(case: Case) -> list[dict[str, Any]]:
    return [
        _input(TITLE, "Title", initial=case.title, optional=False, max_length=TITLE_CHARS),
        _input(TAGS, "Tags", initial=", ".join(case.tags), max_length=500,
               hint="Comma-separated; letters, digits and _ . - / only.", placeholder="e.g. refunds, policy"),
    ]


def promote_modal(case: Case, origin: Origin) -> dict[str, Any]:
    """Promote a candidate: title, tags and expectations, prefilled with what capture suggested."""
    fields = split_expectations(case.suggested_expect)
    blocks = _case_header(case) + _title_and_tags(case) + _expectation_inputs(fields, suggested=False)
    return _modal(PROMOTE_VIEW, "Promote case", "Promote", origin, blocks)


def edit_modal(case: Case, origin: Origin) -> dict[str, Any]:
    """Edit a case's (or a candidate's) title, tags and expectations."""
    fields = split_expectations(case.expect if case.status == "promoted" else case.suggested_expect)
    blocks = _case_header(case) + _title_and_tags(case) + _expectation_inputs(fields, suggested=case.status != "promoted")
    return _modal(EDIT_VIEW, "Edit case", "Save", origin, blocks)


def reject_modal(case: Case, origin: Origin, *, reason: str | None = None) -> dict[str, Any]:
    """Reject a candidate: a reason, prefilled (e.g. 'duplicate of abcd1234') when one is known."""
    blocks = _case_header(case) + [
        {"type": "context", "elements": [{"type": "mrkdwn", "text":
            "Its file is removed; the reason stays in the git history and the database, and a new flag of the same "
            "message is answered with it."}]},
        _input(REASON, "Why is it not a case?", initial=reason, optional=False, multiline=True, max_length=1000,
               placeholder="e.g. the reply was right: the policy changed last week"),
    ]
    return _modal(REJECT_VIEW, "Reject candidate", "Reject", origin, blocks)


# ---------------------------------------------------------------- readers


@dataclass(frozen=True)
class FormInput:
    """What the promote/edit form says: title, tags and the expectations typed (as raw dicts)."""

    title: str
    tags: list[str]
    expect: list[dict[str, str]]


def _value(values: dict[str, Any], block_id: str) -> str:
    return str(((values.get(block_id) or {}).get(block_id) or {}).get("value") or "")


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def read_expectation_form(values: dict[str, Any]) -> tuple[FormInput, dict[str, str]]:
    """The typed input of a promote/edit form, and an error per block that is not acceptable."""
    errors: dict[str, str] = {}
    title = " ".join(_value(values, TITLE).split())
    if not title:
        errors[TITLE] = "Give the case a title."
    elif len(title) > TITLE_CHARS:
        errors[TITLE] = f"Keep the title under {TITLE_CHARS} characters."
    tags = [t for t in re.split(r"[,\s]+", _value(values, TAGS)) if t]
    bad = [t for t in tags if not TAG.match(t)]
    if bad:
        errors[TAGS] = f"Tags take letters, digits and _ . - / only: {', '.join(bad[:3])}"
    tags = list(dict.fromkeys(tags))
    expect: list[dict[str, str]] = []
    rubric = _value(values, RUBRIC).strip()
    if rubric:
        expect.append({"rubric": rubric})
    expect += [{"contains": line} for line in _lines(_value(values, CONTAINS))]
    expect += [{"not_contains": line} for line in _lines(_value(values, NOT_CONTAINS))]
    regex = _value(values, REGEX).strip()
    if regex:
        try:
            re.compile(regex)
            expect.append({"regex": regex})
        except re.error as exc:
            errors[REGEX] = f"Not a valid regular expression: {exc}"
    return FormInput(title=title, tags=tags, expect=expect), errors


def merged_expectations(typed: Sequence[dict[str, Any]], kept: Sequence[BaseModel], current: Sequence[BaseModel]) -> list[dict[str, Any]]:
    """The typed expectations plus the kept ones; the current order when nothing changed (so no empty commit)."""
    merged = [*typed, *(e.model_dump() for e in kept)]
    before = [e.model_dump() for e in current]
    key = lambda item: json.dumps(item, sort_keys=True)  # noqa: E731
    if Counter(map(key, merged)) == Counter(map(key, before)):
        return before
    return merged


def read_reason(values: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """The reject form's reason, and an error when it is blank."""
    reason = _value(values, REASON).strip()
    return reason, ({} if reason else {REASON: "Say why it is not a case: the reason is kept with the rejection."})

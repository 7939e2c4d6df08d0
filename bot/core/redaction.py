"""Redaction of secrets (and, by default, contact details) before text is written, logged or posted.

Each secret becomes a typed placeholder such as `[REDACTED:slack_token]`; everything around it stays byte for
byte the same, so a redacted conversation still reads naturally and diffs cleanly in the corpus.

Rules run in a fixed order: whole private-key blocks first, then specific token formats, then contextual
ones (`user:password@` in URLs, `Bearer …`, `password=…`), then contacts. Each rule only sees the text
between placeholders already written, so a placeholder is never redacted again and `redact` is idempotent.

Deliberate non-matches: hex digests such as 40-character git commit ids are left alone (they identify, they
do not authenticate); bare digit runs (order ids, Slack timestamps) are not phone numbers; a phone number
needs a `+CC` prefix or a recognisable national layout.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

_PLACEHOLDER = re.compile(r"(\[REDACTED:[a-z_]+\])")


@dataclass(frozen=True)
class _Rule:
    """One kind of secret: where it is, and (optionally) a check the regex cannot express."""

    kind: str
    pattern: re.Pattern[str]
    contact: bool = False
    accept: Callable[[re.Match[str]], bool] | None = None


PLACEHOLDER_PREFIX = "[REDACTED:"


def placeholder(kind: str) -> str:
    """The text that stands in for a redacted secret of `kind`."""
    return f"{PLACEHOLDER_PREFIX}{kind}]"


# --- specific formats -------------------------------------------------------------------------------------

_PRIVATE_KEY = re.compile(
    # Both groups always participate (maybe empty): a backreference to a group that did not never matches.
    r"-----BEGIN (?P<label>[A-Z0-9 ]*?)PRIVATE KEY(?P<block>(?: BLOCK)?)-----"
    # The body never holds another BEGIN; stopping there keeps many unterminated headers from going quadratic.
    r"(?:(?:(?!-----BEGIN ).)*?-----END (?P=label)PRIVATE KEY(?P=block)-----"
    # A block pasted without its END line still leaks the key: take the header and base64 lines that follow.
    # Short lines count only with "=" padding, so a "thanks" on the next line is not taken for base64.
    r"|(?:\r?\n(?:(?:Proc-Type|DEK-Info):[^\n]*|[A-Za-z0-9+/]{16,}=*|[A-Za-z0-9+/]*={1,2}))*)",
    re.DOTALL,
)

_SLACK_WEBHOOK = re.compile(
    r"(?:https?://)?hooks\.slack\.com/(?:services|workflows|triggers)(?:/[A-Za-z0-9_-]+){2,}"
)

# Real tokens always carry digits (team / user ids), which keeps "xoxb-your-token" in docs untouched.
_SLACK_TOKEN = re.compile(
    r"(?<![A-Za-z0-9])(?:xox[abcdeoprs](?:\.xox[abcdeoprs])?|xapp)-(?=[A-Za-z0-9%-]*\d)[A-Za-z0-9%-]{10,}"
)

_ANTHROPIC_KEY = re.compile(r"(?<![A-Za-z0-9_-])sk-ant-[A-Za-z0-9_-]{20,}")

_OPENAI_KEY = re.compile(r"(?<![A-Za-z0-9_-])sk-(?!ant-)(?=[A-Za-z0-9_-]*\d)[A-Za-z0-9_-]{20,}")

_GITHUB_TOKEN = re.compile(r"(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})")

_AWS_ACCESS_KEY = re.compile(r"(?<![A-Za-z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])")

# A 40-character secret key looks like any base64 run; only its label makes it one.
_AWS_SECRET_KEY = re.compile(
    r"(?<![A-Za-z0-9])(?i:(?:aws[_-]?)?secret(?:[_-]?access)?(?:[_-]?key)?)[\"'`]?"
    r"(?:[ \t]*(?:=>?|:)[ \t]*|[ \t]+(?:is[ \t]+)?)[\"'`]?"
    r"(?P<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"
)

_JWT = re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")

# --- secrets recognised by their context --------------------------------------------------------------------

# The password may itself contain "@": backtracking leaves the last "@" before the host as the separator.
_URL_PASSWORD = re.compile(
    r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@<>|]*:(?P<secret>[^\s/<>|]+)(?=@[^\s@/<>|]+)"
)

_BEARER = re.compile(
    r"(?i:\bbearer)[ \t]+"
    r"(?P<secret>(?=[A-Za-z0-9._~+/-]*\d)(?=[A-Za-z0-9._~+/-]{8})"
    r"[A-Za-z0-9_~+/-]+(?:\.[A-Za-z0-9_~+/-]+)*=*)"
)

# The name must end in the keyword: "DB_PASSWORD" and "X-Api-Key" count, "max_tokens" and "token_count" do not.
_KEY_NAME = (
    r"(?<![A-Za-z0-9_.-])"
    r"(?i:[A-Za-z0-9_.-]*?(?:pass(?:word|wd|phrase)|pwd|secret|token|api[_-]?key|apikey|access[_-]?key))"
    r"[\"'`*]?"
)

_QUOTED_PASSWORD = re.compile(
    _KEY_NAME + r"[ \t]*(?:=>?|:)[ \t]*(?P<quote>[\"'`])(?P<secret>(?:(?!(?P=quote))[^\n])+)(?P=quote)"
)

# After "=" any value counts; after ":" only one that does not read like prose ("password: click here").
# "&" ends the value only where a query string goes on ("&user=", or "&amp;" as Slack escapes it).
_BARE_PASSWORD = re.compile(
    _KEY_NAME + r"[ \t]*(?:=>?[ \t]*|:[ \t]*(?=\S*?[0-9@#$%^&*_+=~/\\-]))"
    r"(?P<secret>(?:[^\s\"'`<>|,;&]|&(?!amp;|[A-Za-z0-9_.-]+=))+?)"
    r"(?=[.)\]}]*(?:[\s\"'`<>|,;]|&(?:amp;|[A-Za-z0-9_.-]+=)|$))"
)

# --- contacts -----------------------------------------------------------------------------------------------

# Not the user part of a URL (after "/") nor a git remote ("git@github.com:org/repo"): those are not people.
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+/-])(?!git@)[A-Za-z0-9._%+-]+"
    r"@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![A-Za-z0-9-])"
)

_PHONE = re.compile(
    r"""
    (?<![\w#$€£¥+.,/-])(?<![$€£¥][ ])                    # not the tail of an id, amount, version or path
    (?:
        \+\d{1,3}(?:[ .-]?(?:\(\d{1,4}\)|\d{1,4})){2,7}   # +44 20 7946 0958, +14155550132
      | \(\d{3}\)[ ]?\d{3}[-. ]\d{4}                      # (415) 555-0132
      | \d{3}(?P<nanp>[-. ])\d{3}(?P=nanp)\d{4}           # 415-555-0132
      | \(0\d{1,4}\)[ ]?\d{3,4}[-. ]?\d{3,4}              # (020) 7946 0958
      | 0\d{1,4}(?P<trunk>[-. ])\d{2,8}(?:(?P=trunk)\d{2,4}){0,3}   # 020 7946 0958, 06 12 34 56 78
    )
    (?!\w|[.,]\d)                                         # not the head of a longer number or a decimal
    (?![ ]?(?:[$€£¥%]|(?:EUR|USD|GBP|JPY|CHF)\b))         # not an amount
    """,
    re.VERBOSE,
)


def _phone_length(match: re.Match[str]) -> bool:
    return 9 <= sum(ch.isdigit() for ch in match.group()) <= 15


_RULES: tuple[_Rule, ...] = (
    _Rule("private_key", _PRIVATE_KEY),
    _Rule("slack_webhook", _SLACK_WEBHOOK),
    _Rule("slack_token", _SLACK_TOKEN),
    _Rule("anthropic_key", _ANTHROPIC_KEY),
    _Rule("openai_key", _OPENAI_KEY),
    _Rule("github_token", _GITHUB_TOKEN),
    _Rule("aws_access_key", _AWS_ACCESS_KEY),
    _Rule("aws_secret_key", _AWS_SECRET_KEY),
    _Rule("jwt", _JWT),
    _Rule("url_password", _URL_PASSWORD),
    _Rule("bearer", _BEARER),
    _Rule("password", _QUOTED_PASSWORD),
    _Rule("password", _BARE_PASSWORD),
    _Rule("email", _EMAIL, contact=True),
    _Rule("phone", _PHONE, contact=True, accept=_phone_length),
)

KINDS: tuple[str, ...] = tuple(dict.fromkeys(rule.kind for rule in _RULES))


def redact(text: str, *, contacts: bool = True) -> str:
    """`text` with every secret (and, if `contacts`, every email and phone number) replaced by a placeholder."""
    return redact_with_report(text, contacts=contacts)[0]


def redact_with_report(text: str, *, contacts: bool = True) -> tuple[str, Counter[str]]:
    """Like `redact`, and how many secrets of each kind were replaced."""
    counts: Counter[str] = Counter()
    for rule in _RULES:
        if rule.contact and not contacts:
            continue
        text = _apply(rule, text, counts)
    return text, counts


def _apply(rule: _Rule, text: str, counts: Counter[str]) -> str:
    # split() with a capturing group puts the existing placeholders at the odd indices; leave those alone.
    parts = _PLACEHOLDER.split(text)
    for index in range(0, len(parts), 2):
        parts[index] = rule.pattern.sub(lambda match: _replace(rule, match, counts), parts[index])
    return "".join(parts)


def _replace(rule: _Rule, match: re.Match[str], counts: Counter[str]) -> str:
    if rule.accept is not None and not rule.accept(match):
        return match.group()
    counts[rule.kind] += 1
    start, end = match.span("secret") if "secret" in rule.pattern.groupindex else match.span()
    source = match.string
    return source[match.start() : start] + placeholder(rule.kind) + source[end : match.end()]


class RedactingFilter(logging.Filter):
    """A logging filter that redacts the formatted message (and any traceback) of every record it sees.

    Attach it to handlers, not loggers, so records propagated from every library logger pass through it.
    """

    def __init__(self, name: str = "", *, contacts: bool = True) -> None:
        super().__init__(name)
        self.contacts = contacts

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            # A bad format string: logging would print the raw args in its error report, so keep them redacted.
            message = f"{record.msg} {record.args!r}"
        record.msg = redact(message, contacts=self.contacts)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, contacts=self.contacts)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, contacts=self.contacts)
        return True

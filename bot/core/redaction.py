"""Redaction of secrets (and, by default, contact details) before text is written, logged or posted.

Each secret becomes a typed placeholder such as `[REDACTED:stripe_key]`; everything around it stays byte for
byte the same, so a redacted conversation still reads naturally and diffs cleanly in the corpus.

This module owns the engine and the public API (`redact`, `redact_with_report`, `find_secrets`, `RedactingFilter`). The rules live beside it: `bot.core.redaction_rules` holds the token
formats ported from gitleaks (recognised by their own shape), `bot.core.redaction_context` the secrets recognised by
what surrounds them (secret-named keys with any assignment operator, headers, URLs, private-key blocks,
Kubernetes Secrets). The engine

* runs a rule only when one of its lowercase keywords is in the lowercased text (gitleaks' prefilter), looked
  for only in words of 16+ characters; each context finder, the assignment scan and the phone scan sit behind
  substring gates too (a secret word, an operator, a digit), so ordinary chat pays for a few substring
  searches and little else; `benchmarks/redaction.py` measures it;
* reads Slack-escaped text (`&amp;`, `&lt;`, `&gt;`) through an unescaped view and maps each secret back onto
  the original characters, so a secret holding "&" or "<" is removed whole;
* collects every rule's spans first and merges overlapping ones into one placeholder, named after the most
  specific rule (a token format beats "the value of a key called token");
* never touches an existing placeholder, so `redact` is idempotent.

Deliberate non-matches: hex digests such as git commit ids, uuids, ids and hashes in URLs and base64 images
are left alone unless a secret-named key holds them (they identify, they do not authenticate); bare digit runs
(order ids, Slack timestamps) are not phone numbers; a phone number needs a `+CC` prefix or a national layout.
"""

from __future__ import annotations

import bisect
import logging
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator

from bot.core import redaction_context, redaction_rules

PLACEHOLDER_PREFIX = "[REDACTED:"

_PLACEHOLDER = re.compile(r"\[REDACTED:[a-z_]+\]")
_ENTITY = re.compile(r"&(?:amp|lt|gt);")
_ENTITIES = {"&amp;": "&", "&lt;": "<", "&gt;": ">"}
# Values that read as placeholders in docs and tests: 8+ of the same x/X/z/Z/*/#, or EXAMPLE.
_CANDIDATE = re.compile(r"[a-z0-9_.~+/=:%|\\-]{16,}")
# Runs of hex digits, dashes and time punctuation (digests, uuids, timestamps) hold no token's keyword.
_HEXLIKE = re.compile(r"[0-9a-f:.tz-]+")
_URL_AUTHORITY = re.compile(r"[^\s/@<>|]*")
_DUMMY = re.compile(r"([xXzZ*#])\1{7,}|EXAMPLE")

# --- contacts -----------------------------------------------------------------------------------------------

# Not the user part of a URL (after "/") nor a git remote ("git@github.com:org/repo"): those are not people.
# The local part is bounded, so a long run of address characters without "@" costs a constant per start.
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+/-])(?!git@)[A-Za-z0-9._%+-]{1,64}"
    r"@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![A-Za-z0-9-])"
)

# The first character is consumed before the lookbehinds, so `re` skips straight to "+", "(" and digits; each
# branch then checks that first character with a lookbehind.
_PHONE = re.compile(
    r"""
    [+(\d](?<![\w#$€£¥+.,/-].)(?<![$€£¥][ ].)           # not the tail of an id, amount, version or path
    (?:
        (?<=\+)\d{1,3}(?:[ .-]?(?:\(\d{1,4}\)|\d{1,4})){2,7}   # +44 20 7946 0958, +14155550132
      | (?<=\()\d{3}\)[ ]?\d{3}[-. ]\d{4}                    # (415) 555-0132
      | (?<=\d)\d{2}(?P<nanp>[-. ])\d{3}(?P=nanp)\d{4}         # 415-555-0132
      | (?<=\()0\d{1,4}\)[ ]?\d{3,4}[-. ]?\d{3,4}            # (020) 7946 0958
      | (?<=0)\d{1,4}(?P<trunk>[-. ])\d{2,8}(?:(?P=trunk)\d{2,4}){0,3}   # 020 7946 0958, 06 12 34 56 78
    )
    (?!\w|[.,]\d)                                         # not the head of a longer number or a decimal
    (?![ ]?(?:[$€£¥%]|(?:EUR|USD|GBP|JPY|CHF)\b))         # not an amount
    """,
    re.VERBOSE,
)

_PHONE_ASCII = re.compile(_PHONE.pattern, re.VERBOSE | re.ASCII)
_NUMBER_STRETCH = re.compile(r"[+(0-9][0-9 ().+-]{8,}")

KINDS: tuple[str, ...] = tuple(dict.fromkeys((*redaction_rules.KINDS, *redaction_context.KINDS, "email", "phone")))

# A span: start, end, kind, rank (lower is more specific and names the merged placeholder).
_Span = tuple[int, int, str, int]


def placeholder(kind: str) -> str:
    """The text that stands in for a redacted secret of `kind`."""
    return f"{PLACEHOLDER_PREFIX}{kind}]"


def redact(text: str, *, contacts: bool = True) -> str:
    """`text` with every secret (and, if `contacts`, every email and phone number) replaced by a placeholder."""
    return _redact(text, contacts, None)


def redact_with_report(text: str, *, contacts: bool = True) -> tuple[str, Counter[str]]:
    """Like `redact`, and how many secrets of each kind were replaced."""
    counts: Counter[str] = Counter()
    return _redact(text, contacts, counts), counts


def find_secrets(text: str, *, contacts: bool = False) -> list[tuple[int, int, str]]:
    """Where `text` holds secrets (and, if `contacts`, contact details): `(start, end, kind)` in order, overlapping
    finds merged, existing placeholders left out. What `redact` replaces; `corpus scan` reports it."""
    if not text:
        return []
    view, to_original = _unescaped(text)
    spans = sorted(_find(view, contacts), key=lambda span: (span[0], -span[1]))
    if not spans:
        return []
    protected = [match.span() for match in _PLACEHOLDER.finditer(view)] if "[REDACTED:" in view else []
    return [(to_original(start), to_original(end), kind) for start, end, kind in _merge(spans, protected)]


def _redact(text: str, contacts: bool, counts: Counter[str] | None) -> str:
    found = find_secrets(text, contacts=contacts)
    if not found:
        return text
    pieces: list[str] = []
    cursor = 0
    for start, end, kind in found:
        pieces.append(text[cursor:start])
        pieces.append(placeholder(kind))
        if counts is not None:
            counts[kind] += 1
        cursor = end
    pieces.append(text[cursor:])
    return "".join(pieces)


def _find(view: str, contacts: bool) -> Iterator[_Span]:
    lower = view.lower()
    # Every token is a long run of token characters holding its keyword: prose without such runs skips them all.
    # A run holds no whitespace, so only words of 16+ characters are searched (prose pays one `split`).
    words = lower.split()
    runs = (
        " ".join(run for word in words if len(word) >= 16 for run in _CANDIDATE.findall(word) if not _HEXLIKE.fullmatch(run))
        if words and max(map(len, words)) >= 16
        else ""
    )
    for rule in _rules_for(runs) if runs else ():
        for match in rule.pattern.finditer(view):
            start, end = match.span("secret") if "secret" in rule.pattern.groupindex else match.span()
            if rule.boundary and not _bounded(view, match.start(), match.end()):
                continue
            if _DUMMY.search(view, start, end) or view[start:end] in redaction_rules.ALLOWED:
                continue
            if rule.entropy and _entropy(view[start:end]) < rule.entropy:
                continue
            yield start, end, rule.kind, 0
    contains = lower.__contains__
    for keywords, finder in redaction_context.FINDERS:
        if any(map(contains, keywords)):  # map, not a generator: this runs for every message
            for start, end, kind in finder(view):
                if end > start and not _DUMMY.search(view, start, end):
                    yield start, end, kind, 1
    if contacts:
        if "@" in view:
            for match in _EMAIL.finditer(view):
                # "https://user:pass@host" is a URL's credentials (a secret rule's business), not an address.
                scheme = view.rfind("://", max(0, match.start() - 200), match.start())
                if scheme < 0 or _URL_AUTHORITY.fullmatch(view, scheme + 3, match.start()) is None:
                    yield match.start(), match.end(), "email", 2
        yield from _phones(view)


def _trie(words: list[str]) -> str:
    """A regex matching any of `words`, factored by prefix so `re` tries one branch per character, not one per word."""
    root: dict[str, dict] = {}
    for word in words:
        node = root
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def build(node: dict) -> str:
        branches = [re.escape(char) + build(child) for char, child in sorted(node.items()) if char]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body

    return build(root)


_ALWAYS = frozenset(index for index, rule in enumerate(redaction_rules.TOKEN_RULES) if not rule.keywords and not rule.gate)
_GATED = tuple((index, rule.gate) for index, rule in enumerate(redaction_rules.TOKEN_RULES) if rule.gate)
_KEYWORDS = sorted({keyword for rule in redaction_rules.TOKEN_RULES for keyword in rule.keywords})
_KEYWORD_SCAN = re.compile(_trie(_KEYWORDS))
# A match is the longest keyword at its place; every keyword inside it is present too ("sk-ant-" holds "sk-").
_RULES_OF: dict[str, frozenset[int]] = {
    found: frozenset(
        index
        for index, rule in enumerate(redaction_rules.TOKEN_RULES)
        if any(keyword in found for keyword in rule.keywords)
    )
    for found in _KEYWORDS
}


def _rules_for(runs: str) -> list[redaction_rules.TokenRule]:
    """The token rules whose keywords occur in `runs`, in table order (the prefilter, one regex pass)."""
    chosen = set(_ALWAYS) | {index for index, gate in _GATED if gate.search(runs)}
    for found in set(_KEYWORD_SCAN.findall(runs)):
        chosen |= _RULES_OF.get(found, frozenset())
    return [redaction_rules.TOKEN_RULES[index] for index in sorted(chosen)]


def _bounded(text: str, start: int, end: int) -> bool:
    """Whether the match is a token of its own, not the middle of a longer word, file name or base64 run."""
    before = text[start - 1] if start else " "
    after = text[end] if end < len(text) else " "
    return not (before.isalnum() or before in "_." or after.isalnum())


def _entropy(value: str) -> float:
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


def _phones(view: str) -> Iterator[_Span]:
    ascii_only = view.isascii()
    for digit in "0123456789":  # fast substring searches first: most chat has no digit at all
        if digit in view:
            break
    else:
        if ascii_only:  # beyond ASCII `\d` also matches other scripts' digits: let `_PHONE` decide
            return
    if not ascii_only:
        for match in _PHONE.finditer(view):
            if 9 <= sum(map(str.isdigit, match.group())) <= 15:
                yield match.start(), match.end(), "phone", 2
        return
    # A number is written with digits, "+", "(", ")", spaces, dots and dashes only, so it lies inside one maximal
    # stretch of them: `_PHONE` runs only on stretches holding 9 digits or more, sliced with the 3 characters
    # before and 6 after that its lookarounds read. On ASCII text its ASCII twin matches exactly the same.
    for stretch in _NUMBER_STRETCH.finditer(view):
        start, end = stretch.span()
        if sum(map(str.isdigit, stretch.group())) < 9:
            continue
        offset = max(0, start - 3)
        for match in _PHONE_ASCII.finditer(view[offset : end + 6], start - offset):
            if match.start() + offset >= end:
                break
            if 9 <= sum(map(str.isdigit, match.group())) <= 15:
                yield match.start() + offset, match.end() + offset, "phone", 2


def _merge(spans: list[_Span], protected: list[tuple[int, int]]) -> Iterator[tuple[int, int, str]]:
    """Overlapping spans as one, named by the most specific; spans touching an existing placeholder are dropped."""
    starts = [start for start, _ in protected]
    current: list[int] | None = None  # start, end, rank
    kind = ""
    for start, end, span_kind, rank in spans:
        if protected:
            index = bisect.bisect_right(starts, end) - 1
            if index >= 0 and protected[index][1] > start:
                continue
        if current is not None and start < current[1]:
            current[1] = max(current[1], end)
            if rank < current[2]:
                current[2], kind = rank, span_kind
            continue
        if current is not None:
            yield current[0], current[1], kind
        current, kind = [start, end, rank], span_kind
    if current is not None:
        yield current[0], current[1], kind


def _unescaped(text: str) -> tuple[str, Callable[[int], int]]:
    """Slack-escaped `text` as typed, and the map from its positions back to positions in `text`."""
    if "&" not in text or not _ENTITY.search(text):
        return text, _identity
    view_positions: list[int] = []  # where each entity sits in the view
    shifts: list[int] = []  # how many characters the entities up to and including it took out
    pieces: list[str] = []
    cursor = removed = 0
    for match in _ENTITY.finditer(text):
        pieces.append(text[cursor : match.start()])
        view_positions.append(match.start() - removed)
        removed += len(match.group()) - 1
        shifts.append(removed)
        pieces.append(_ENTITIES[match.group()])
        cursor = match.end()
    pieces.append(text[cursor:])
    return "".join(pieces), _Mapper(view_positions, shifts)


class _Mapper:
    """A view position to an original position: add the characters taken out by the entities before it."""

    def __init__(self, view_positions: list[int], shifts: list[int]) -> None:
        self.view_positions = view_positions
        self.shifts = shifts

    def __call__(self, position: int) -> int:
        index = bisect.bisect_left(self.view_positions, position) - 1
        return position + (self.shifts[index] if index >= 0 else 0)


def _identity(position: int) -> int:
    return position


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
        for key, value in vars(record).items():  # `extra` fields, which the JSON format writes out
            if key not in _RECORD_FIELDS and isinstance(value, str) and value:
                setattr(record, key, redact(value, contacts=self.contacts))
        return True


_RECORD_FIELDS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

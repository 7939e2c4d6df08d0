"""Python regexes (what evalbot's `regex`/`not_regex` grade with `re.search`) as JavaScript RegExps that match the
same strings, for exports run by JavaScript tools (promptfoo).

The translation targets `new RegExp(source, flags)` with the `u` flag (code points, not UTF-16 units) and keeps
Python's meaning where JavaScript's differs: `\\A`/`\\Z`, `$` (also before a final newline), `^`/`$` under `(?m)`
(only `\\n` ends a line), `.` (only `\\n` is excluded), Unicode `\\d`/`\\w`/`\\s`/`\\b`, `(?s)`, `(?x)` (whitespace and
comments dropped), `(?a)`, scoped `(?i:…)` (letters expanded to both cases), `(?P<n>…)`/`(?P=n)`, `{,n}`, and lone
`{`, `}`, `]`. What it cannot express raises `Untranslatable` with the reason: atomic groups, possessive
quantifiers, conditionals, `(?L)`, `(?-i:…)` inside a case-insensitive pattern, a negated Unicode class escape
inside a set, a case-insensitive range of non-ASCII letters, `\\B`.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass, replace

from bot.core.errors import ExportRefusedError

# Python's Unicode classes, spelled for JavaScript with the `u` flag (inside a [...] set).
WORD = r"\p{L}\p{N}_"
DIGIT = r"\p{Nd}"
SPACE = r"\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
ASCII_WORD, ASCII_DIGIT, ASCII_SPACE = "A-Za-z0-9_", "0-9", r"\t\n\v\f\r "
_JS_SYNTAX = set("^$\\.*+?()[]{}|/")
_FLAG_LETTERS = set("aiLmsux")


class Untranslatable(ExportRefusedError):
    """A Python regex feature JavaScript has no equivalent for; the message says which."""


@dataclass(frozen=True)
class _Flags:
    ignorecase: bool = False  # scoped (?i:…): letters become [xX] sets; a global (?i) is the `i` flag instead
    multiline: bool = False
    dotall: bool = False
    verbose: bool = False
    ascii: bool = False


def _hex(char: str) -> str:
    return f"\\u{{{ord(char):x}}}"


def _out(char: str) -> str:
    """One literal character outside a set."""
    if char in _JS_SYNTAX:
        return "\\" + char
    return char if char.isprintable() and not char.isspace() else _hex(char)


def _in(char: str) -> str:
    """One literal character inside a set."""
    if char in "\\]^-[":
        return "\\" + char
    return char if char.isprintable() and not char.isspace() else _hex(char)


@functools.lru_cache(maxsize=1)
def _same_lower() -> dict[str, frozenset[str]]:
    """Characters grouped by their lower case, as Python's IGNORECASE compares them (ẞ matches ß)."""
    groups: dict[str, set[str]] = {}
    for code in range(0x110000):
        char = chr(code)
        lower = char.lower()
        if len(lower) == 1 and lower != char:
            groups.setdefault(lower, {lower}).add(char)
    return {key: frozenset(value) for key, value in groups.items()}


def _cases(char: str) -> list[str]:
    variants = {char, char.lower(), char.upper(), char.swapcase(), char.casefold()}
    single = {v for v in variants if len(v) == 1}
    for v in list(single):
        single |= _same_lower().get(v.lower(), frozenset())
    return sorted(single)


class _Translator:
    def __init__(self, pattern: str):
        self.p = pattern
        self.i = 0

    # -- reading

    def peek(self, n: int = 1) -> str:
        return self.p[self.i:self.i + n]

    def take(self, n: int = 1) -> str:
        text = self.p[self.i:self.i + n]
        self.i += n
        return text

    def until(self, end: str) -> str:
        at = self.p.index(end, self.i)
        text = self.p[self.i:at]
        self.i = at + len(end)
        return text

    # -- the whole pattern

    def run(self) -> tuple[str, str]:
        flags, global_i = _Flags(), False
        while (match := re.match(r"\(\?([aiLmsux]+)\)", self.p[self.i:])) is not None:
            letters = match.group(1)
            if "L" in letters:
                raise Untranslatable("(?L) (locale-dependent matching) has no JavaScript equivalent")
            global_i = global_i or "i" in letters
            flags = replace(flags, multiline=flags.multiline or "m" in letters, dotall=flags.dotall or "s" in letters,
                            verbose=flags.verbose or "x" in letters, ascii=flags.ascii or "a" in letters)
            self.i += match.end()
        self.global_i = global_i
        body = self.sequence(flags, top=True)
        return body, "iu" if global_i else "u"

    def sequence(self, flags: _Flags, *, top: bool = False) -> str:
        out: list[str] = []
        while self.i < len(self.p):
            char = self.peek()
            if flags.verbose and char.isspace():
                self.i += 1
            elif flags.verbose and char == "#":
                end = self.p.find("\n", self.i)
                self.i = len(self.p) if end < 0 else end + 1
            elif char == ")":
                if top:
                    raise Untranslatable("unbalanced parenthesis")
                self.i += 1
                return "".join(out)
            elif char == "(":
                self.i += 1
                out.append(self.group(flags))
            elif char == "[":
                self.i += 1
                out.append(self.char_set(flags))
            elif char == "\\":
                self.i += 1
                out.append(self.escape(flags))
            elif char == ".":
                self.i += 1
                out.append(r"[\s\S]" if flags.dotall else r"[^\n]")
            elif char == "^":
                self.i += 1
                out.append(r"(?<![^\n])" if flags.multiline else "^")
            elif char == "$":
                self.i += 1
                out.append(r"(?![^\n])" if flags.multiline else r"(?=\n?$)")
            elif char in "*+?":
                self.i += 1
                out.append(char + self.lazy_or_possessive())
            elif char == "{":
                out.append(self.brace())
            elif char in "}]":
                self.i += 1
                out.append("\\" + char)
            elif char == "|":
                self.i += 1
                out.append("|")
            else:
                self.i += 1
                out.append(self.literal(char, flags))
        if not top:
            raise Untranslatable("unbalanced parenthesis")
        return "".join(out)

    def lazy_or_possessive(self) -> str:
        if self.peek() == "?":
            self.i += 1
            return "?"
        if self.peek() == "+":
            raise Untranslatable("possessive quantifiers (*+, ++, ?+, {n}+) have no JavaScript equivalent")
        return ""

    def brace(self) -> str:
        match = re.match(r"\{(\d*)(?:(,)(\d*))?\}", self.p[self.i:])
        if match is None or not (match.group(1) or match.group(2)):
            self.i += 1
            return r"\{"
        self.i += match.end()
        low, comma, high = match.group(1), match.group(2), match.group(3)
        quantifier = f"{{{low}}}" if not comma else f"{{{low or '0'},{high or ''}}}"
        return quantifier + self.lazy_or_possessive()

    def literal(self, char: str, flags: _Flags) -> str:
        if flags.ignorecase and len(_cases(char)) > 1:
            return "[" + "".join(_in(c) for c in _cases(char)) + "]"
        return _out(char)

    # -- groups

    def group(self, flags: _Flags) -> str:
        if self.peek() != "?":
            return "(" + self.sequence(flags) + ")"
        self.i += 1
        head = self.peek(2)
        if head.startswith("P<"):
            self.i += 2
            name = self.until(">")
            return f"(?<{name}>" + self.sequence(flags) + ")"
        if head.startswith("P="):
            self.i += 2
            return r"\k<" + self.until(")") + ">"
        if head.startswith("#"):
            self.until(")")
            return ""
        if head.startswith(":"):
            self.i += 1
            return "(?:" + self.sequence(flags) + ")"
        for look in ("<=", "<!", "=", "!"):
            if self.p.startswith(look, self.i):
                self.i += len(look)
                return f"(?{look}" + self.sequence(flags) + ")"
        if head.startswith(">"):
            raise Untranslatable("atomic groups (?>…) have no JavaScript equivalent")
        if head.startswith("("):
            raise Untranslatable("conditional groups (?(…)…) have no JavaScript equivalent")
        match = re.match(r"([aiLmsux]*)(?:-([imsx]+))?:", self.p[self.i:])
        if match is None:
            raise Untranslatable("global flags are only allowed at the start of the pattern")
        self.i += match.end()
        return "(?:" + self.sequence(self.scoped(flags, match.group(1), match.group(2) or "")) + ")"

    def scoped(self, flags: _Flags, on: str, off: str) -> _Flags:
        if "L" in on:
            raise Untranslatable("(?L) (locale-dependent matching) has no JavaScript equivalent")
        if "i" in off and self.global_i:
            raise Untranslatable("(?-i:…) inside a case-insensitive pattern has no JavaScript equivalent")
        updated = flags
        for letter, name in (("i", "ignorecase"), ("m", "multiline"), ("s", "dotall"), ("x", "verbose"), ("a", "ascii")):
            if letter in on:
                updated = replace(updated, **{name: True})
            if letter in off:
                updated = replace(updated, **{name: False})
        if self.global_i:
            updated = replace(updated, ignorecase=False)  # the `i` flag already covers it
        return updated

    # -- escapes

    def class_escape(self, letter: str, flags: _Flags, *, in_set: bool) -> str | None:
        """\\d \\w \\s and their negations, or None for another letter."""
        if letter.lower() not in "dws":
            return None
        table = {"d": ASCII_DIGIT if flags.ascii else DIGIT, "w": ASCII_WORD if flags.ascii else WORD,
                 "s": ASCII_SPACE if flags.ascii else SPACE}
        content = table[letter.lower()]
        if letter.islower():
            return content if in_set else f"[{content}]"
        if not in_set:
            return f"[^{content}]"
        if letter == "D":
            return r"\D" if flags.ascii else r"\P{Nd}"
        if letter == "W" and flags.ascii:
            return r"\W"
        raise Untranslatable(f"\\{letter} inside a [...] set has no JavaScript equivalent with Python's meaning")

    def char_escape(self) -> str | None:
        """The character a character escape stands for (after the backslash), or None when it is not one."""
        letter = self.peek()
        simple = {"n": "\n", "t": "\t", "r": "\r", "f": "\f", "v": "\v", "a": "\a"}
        if letter in simple:
            self.i += 1
            return simple[letter]
        for prefix, width in (("x", 2), ("u", 4), ("U", 8)):
            if letter == prefix:
                self.i += 1
                return chr(int(self.take(width), 16))
        if letter == "N" and self.peek(2) == "N{":
            self.i += 2
            return unicodedata.lookup(self.until("}"))
        if letter == "0" or (letter in "1234567" and re.match(r"[0-7]{3}", self.p[self.i:])):
            digits = re.match(r"[0-7]{1,3}", self.p[self.i:]).group(0)  # type: ignore[union-attr]
            self.i += len(digits)
            return chr(int(digits, 8))
        if not letter.isalnum():
            self.i += 1
            return letter
        return None

    def escape(self, flags: _Flags) -> str:
        letter = self.peek()
        if letter == "A":
            self.i += 1
            return "^"
        if letter == "Z":
            self.i += 1
            return "$"
        if letter == "B":
            # Python's \\B never matches in an empty string; JavaScript's does.
            raise Untranslatable("\\B (not a word boundary) has no exact JavaScript equivalent")
        if letter == "b":
            self.i += 1
            if flags.ascii:
                return "\\b"
            w = f"[{WORD}]"
            return f"(?:(?<={w})(?!{w})|(?<!{w})(?={w}))"
        if (translated := self.class_escape(letter, flags, in_set=False)) is not None:
            self.i += 1
            return translated
        if letter.isdigit() and letter != "0" and not re.match(r"[0-7]{3}", self.p[self.i:]):
            number = re.match(r"\d{1,2}", self.p[self.i:]).group(0)  # type: ignore[union-attr]
            self.i += len(number)
            return f"\\{number}(?:)"
        char = self.char_escape()
        if char is None:
            raise Untranslatable(f"the escape \\{letter} has no JavaScript equivalent")
        return self.literal(char, flags)

    # -- [...] sets

    def set_member(self, flags: _Flags) -> tuple[str | None, str]:
        """One member of a set: (its character, or None for a class escape; its JavaScript spelling)."""
        char = self.take()
        if char != "\\":
            return char, _in(char)
        letter = self.peek()
        if (translated := self.class_escape(letter, flags, in_set=True)) is not None:
            self.i += 1
            return None, translated
        if letter == "b":
            self.i += 1
            return "\b", _in("\b")
        value = self.char_escape()
        if value is None:
            raise Untranslatable(f"the escape \\{letter} inside a [...] set has no JavaScript equivalent")
        return value, _in(value)

    def char_set(self, flags: _Flags) -> str:
        negate = self.peek() == "^"
        if negate:
            self.i += 1
        parts: list[str] = []
        first = True
        while True:
            if self.i >= len(self.p):
                raise Untranslatable("unterminated [...] set")
            if self.peek() == "]" and not first:
                self.i += 1
                break
            first = False
            low, spelled = self.set_member(flags)
            if low is not None and self.peek() == "-" and self.p[self.i + 1:self.i + 2] not in ("", "]"):
                self.i += 1
                high, high_spelled = self.set_member(flags)
                if high is None:
                    raise Untranslatable("a range ending in a class escape")
                parts.append(f"{spelled}-{high_spelled}")
                if flags.ignorecase:
                    parts.extend(self.other_case_range(low, high))
                continue
            parts.append(spelled)
            if flags.ignorecase and low is not None:
                parts.extend(_in(c) for c in _cases(low) if c != low)
        return "[" + ("^" if negate else "") + "".join(parts) + "]"

    def other_case_range(self, low: str, high: str) -> list[str]:
        span = [chr(c) for c in range(ord(low), ord(high) + 1)]
        if not any(len(_cases(c)) > 1 for c in span):
            return []
        if low.isascii() and high.isascii() and (low + high).isalpha() and (low.islower() == high.islower()):
            other = (low.swapcase(), high.swapcase())
            return [f"{_in(other[0])}-{_in(other[1])}"]
        raise Untranslatable(f"a case-insensitive range {low}-{high} has no exact JavaScript spelling")


def js_regex(pattern: str) -> tuple[str, str]:
    """A Python regex as (JavaScript source, flags) for `new RegExp(source, flags)`, matching the same strings."""
    try:
        re.compile(pattern)
    except re.error as exc:
        raise Untranslatable(f"not a valid Python regex ({exc})") from None
    return _Translator(pattern).run()

"""Python regexes as JavaScript RegExps: the same matches (checked by node on a table of inputs), refusals with
the reason for what JavaScript cannot express."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from bot.core.errors import ExportRefusedError
from bot.evals.render.jsregex import Untranslatable, js_regex

PATTERNS = [
    r"\Arefund\Z", r"^Yes$", r"end$", r"\n$", r"(?m)^Total: \d+$", r"(?x) refund \s+ (?# c) policy  # trailing",
    r"(?x)a\ b[ ]c", r"(?i:refund) policy", r"(?i)REFUND", r"(?s)a.b", r"a.b", r"^.{3}$", r"\bcafé\b", r"\w+",
    r"\d{,2}x", r"a{2}", r"{", r"x}", r"a]", r"(?P<n>ab)(?P=n)", r"(ab)\1", r"[\w-]+@", r"[^\d]", r"[\d\s]+",
    r"\$\d+\.\d\d", r"(?a)\w+", r"(?a)\bé", r"[]a]", r"\x41\u00e9", r"(?i:[a-c]x)", r"\s", r"\S+", r"(?:ab|cd)+?",
    r"😀{2}", r"(?i:straße)", r"(?<=\$)\d+", r"(?<!x)y", r"[\-\]]", r"\N{EM DASH}", r"[^\n]+$", r"(?s:.)\Z",
    r"(?i)(?s:A.B)", r"\0", r"\101", r"[\101-\103]",
]
INPUTS = [
    "refund", "Refund\n", "REFUND policy", "refund   policy", "refund policy", "Yes", "Yes\n", "Yes\n\n", "x\nTotal: 12\ny",
    "Total: ١٢\r\n", "a\nb", "axb", "a\rb", "a b c", "un café noir", "cafés", "x", "9x", "123x", "aa", "{", "x}", "a]",
    "abab", "me-x@", "é", "٣", "$12.50", "ünï", "]", "Aé", "BX", "bx", " \u00a0", "\u2028", "\x1c", "abcd", "a b",
    "😀😀", "😀ab", "a😀b", "STRASSE", "straße", "STRAẞE", "$42", "", "end\n", "\n", "-", "a", "Ab", "yx y", "—", "\x00",
    "ABC", "A\nB",
]


def test_every_translated_pattern_matches_what_python_matches():
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    rows = []
    for pattern in PATTERNS:
        source, flags = js_regex(pattern)
        rows.append([pattern, source, flags, [re.search(pattern, text) is not None for text in INPUTS]])
    script = (
        "const [rows, inputs] = JSON.parse(require('fs').readFileSync(0, 'utf8')); const out = [];"
        "for (const [p, src, flags, expected] of rows) { let rx; try { rx = new RegExp(src, flags); }"
        " catch (e) { out.push([p, 'invalid: ' + e.message]); continue; }"
        " inputs.forEach((s, i) => { if (rx.test(s) !== expected[i]) out.push([p, s, expected[i]]); }); }"
        "console.log(JSON.stringify(out));"
    )
    done = subprocess.run([node, "-e", script], input=json.dumps([rows, INPUTS]), capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == []


@pytest.mark.parametrize(("pattern", "source", "flags"), [
    (r"\Arefund\Z", "^refund$", "u"),
    (r"^Yes$", r"^Yes(?=\n?$)", "u"),
    (r"(?m)^a$", r"(?<![^\n])a(?![^\n])", "u"),
    (r"(?x) a b  # c", "ab", "u"),
    (r"(?i)abc", "abc", "iu"),
    (r"(?i:ab)c", "(?:[Aa][Bb])c", "u"),
    (r"(?P<year>\d{4})", r"(?<year>[\p{Nd}]{4})", "u"),
    (r"a{,3}", "a{0,3}", "u"),
    (r"a.b", r"a[^\n]b", "u"),
    (r"(?s)a.b", r"a[\s\S]b", "u"),
    (r"{", r"\{", "u"),
])
def test_python_only_features_become_their_javascript_spelling(pattern, source, flags):
    assert js_regex(pattern) == (source, flags)


@pytest.mark.parametrize(("pattern", "reason"), [
    (r"a++", "possessive quantifiers"),
    (r"a{2}+", "possessive quantifiers"),
    (r"(?>ab)c", "atomic groups"),
    (r"(a)?(?(1)b|c)", "conditional groups"),
    (r"\Bx", r"\\B"),
    (r"[\W]", r"\\W inside a \[...\] set"),
    (r"(?i)(?-i:a)b", r"\(\?-i:…\) inside a case-insensitive pattern"),
    (r"(?i:[à-ö])", "case-insensitive range"),
    (r"(", "not a valid Python regex"),
])
def test_what_javascript_cannot_express_is_refused_with_the_reason(pattern, reason):
    with pytest.raises(Untranslatable, match=reason) as info:
        js_regex(pattern)
    assert isinstance(info.value, ExportRefusedError)

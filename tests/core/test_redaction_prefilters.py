"""The redactor's fast paths find what the full scans find: each prefilter keeps a case it could wrongly skip.

The secrets are fake and assembled from pieces, so secret scanners have nothing to flag in this file.
"""

from __future__ import annotations

import pytest

from bot.core.redaction import find_secrets, redact

DISCORD = "MZ1yGvKTjE0rY0cV8i47CjAa" + ".uRHQPq." + "Xb1Mk2nEhe-4iUcrGOuegj57zMC"
GITHUB = "ghp_" + "FakeGitHubToken0123456789abcdefghijk"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # phones: the digit gate falls back to the full scan when digits may be outside ASCII
        pytest.param("call +٤٤ ٢٠ ٧٩٤٦ ٠٩٥٨ now", "call [REDACTED:phone] now", id="non-ascii-digits"),
        pytest.param("call +44 20 7946 0958 now", "call [REDACTED:phone] now", id="ascii-digits"),
        # assignments: no ":" or "=", only a quote after a blank
        pytest.param('pwd "hunter2x" it is', 'pwd "[REDACTED:password]" it is', id="quote-after-blank"),
        pytest.param("the token `t0k-3n_Value!` works", "the token `[REDACTED:secret]` works", id="backtick-after-blank"),
        # the discord rule has no keyword: its gate is a regex over the candidate runs
        pytest.param(f"bot {DISCORD} here", "bot [REDACTED:discord_token] here", id="discord-gate"),
        # candidate runs come from words of 16+ characters: a token glued into a longer word is still one
        pytest.param(f'{{"auth":"{GITHUB}"}}', '{"auth":"[REDACTED:github_token]"}', id="token-inside-json"),
        pytest.param(f"see <https://x.example/{GITHUB}|link>", "see <https://x.example/[REDACTED:github_token]|link>",
                     id="token-in-a-url-path"),
    ],
)
def test_fast_paths_keep_every_find(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "The token expired again after the deploy, and the secret key rotation is next week.",
        "password reset links expire in 24 hours",
        "pass_threshold = 1.0 and passRate: 0.95",
        "build 2024-06-12T12:34:00Z took 0.123s, job 7f3c2a9e-1b4d-4c8e-9a2f-3d5e6f7a8b9c",
    ],
)
def test_ordinary_text_has_no_find(text: str) -> None:
    assert find_secrets(text, contacts=True) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # phones in ASCII text are looked for only in stretches of number characters: at their edges the
        # lookarounds still see the text around them
        ("+44 20 7946 0958 is mine", "[REDACTED:phone] is mine"),
        ("ring 415-555-0132 or (415) 555-0199, ok", "ring [REDACTED:phone] or [REDACTED:phone], ok"),
        ("+1 415 555 0132 +1 415 555 0133", "[REDACTED:phone] [REDACTED:phone]"),
        ("call 020 7946 0958.", "call [REDACTED:phone]."),
        ("pay $ 415 555 0132 now", "pay $ 415 555 0132 now"),  # an amount: the "$ " before the stretch
        ("415 555 0132 USD", "415 555 0132 USD"),  # an amount: the currency after it
        ("order 12345678901234567890 shipped", "order 12345678901234567890 shipped"),
        ("dates 2024-06-12 and 2024-06-13", "dates 2024-06-12 and 2024-06-13"),
    ],
)
def test_phone_stretches_keep_the_lookarounds(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_find_secrets_reports_positions_in_the_original_text() -> None:
    text = f"a &amp; b {GITHUB} c"
    [(start, end, kind)] = find_secrets(text)
    assert (text[start:end], kind) == (GITHUB, "github_token")

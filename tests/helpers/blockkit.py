"""Random hostile text and a checker of Slack's Block Kit limits, for property tests of every builder.

`hostile_text` draws from markup-dense (HTML, XML, Slack tokens, `&<>` that escaping multiplies), emoji (astral,
ZWJ sequences: 2+ UTF-16 units each), CJK, right-to-left, whitespace-only and many-short-lines pools, up to
40,000 characters. `assert_message_ok` / `assert_view_ok` check every limit the builders must keep (counted in
UTF-16 units, as Slack does) and that slack_sdk's own models parse and validate the payload.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

POOLS = {
    "markup": ["<b>", "</b>", "<div class=\"x\">", "&", "&amp;", "&lt;", "<@U123>", "<!here>", "<#C1|x>", "*", "_",
               "~", "`", "```", "> ", "<xml a='1'/>", "<<>>", "&&&", "|", "<https://x.example|y>", "\\"],
    "emoji": ["😀", "👩‍👩‍👧‍👦", "🏳️‍🌈", ":fire:", "🇯🇵", "✨", "𝕏", "🧪"],
    "cjk": ["返品", "できますか", "不能显示", "한국어", "〜", "「", "」"],
    "rtl": ["مرحبا", "שלום", "\u202e", "\u200f", "ال"],
    "plain": ["refund", "within", "90", "days", "policy", "the", " ", ".", ","],
    "lines": ["\n", "a\n", "\n\n", "> q\n", "- item\n"],
    "odd": ["\t", "\u200b", "\ufeff", "\x00", " ", "\r\n"],
}
LENGTHS = [0, 1, 5, 40, 300, 1000, 3100, 6000, 40_000]


def hostile_text(rng: random.Random, *, longest: int = 40_000, nonempty: bool = False) -> str:
    """A random text mixing one to three pools, of a length drawn from LENGTHS (at most `longest`)."""
    pools = rng.sample(sorted(POOLS), rng.randint(1, 3))
    tokens = [t for name in pools for t in POOLS[name]]
    target = rng.choice([n for n in LENGTHS if n <= longest])
    piece = "".join(rng.choices(tokens, k=60))  # long texts repeat a random piece: cheap to make
    text = (piece * (target // max(1, len(piece)) + 1))[:target]
    if nonempty and not text.strip():
        text = "x" + text
    return text


def slack_len(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _text_ok(obj: dict[str, Any], limit: int, what: str) -> None:
    text = obj["text"]
    assert text.strip(), f"empty {what}"
    assert slack_len(text) <= limit, f"{what} of {slack_len(text)} > {limit}"


def assert_blocks_ok(blocks: list[dict[str, Any]], *, max_blocks: int) -> None:
    """Every block within Slack's limits, and parsed and validated by slack_sdk's models."""
    assert 0 < len(blocks) <= max_blocks, f"{len(blocks)} blocks > {max_blocks}"
    for block in blocks:
        assert slack_len(block.get("block_id", "")) <= 255
        kind = block["type"]
        if kind == "section":
            if "text" in block:
                _text_ok(block["text"], 3000, "section text")
            assert len(block.get("fields", [])) <= 10
            for item in block.get("fields", []):
                _text_ok(item, 2000, "section field")
        elif kind == "header":
            _text_ok(block["text"], 150, "header")
        elif kind == "context":
            assert 0 < len(block["elements"]) <= 10
            for element in block["elements"]:
                if "text" in element:
                    _text_ok(element, 3000, "context element")
        elif kind == "actions":
            assert 0 < len(block["elements"]) <= 25
        elif kind == "input":
            _text_ok(block["label"], 2000, "input label")
            if "hint" in block:
                _text_ok(block["hint"], 2000, "input hint")
        parsed = Block.parse(block)
        assert parsed is not None, f"slack_sdk does not know a {kind} block"
        parsed.validate_json()
    for node in _walk(blocks):
        if node.get("type") == "button":
            _text_ok(node["text"], 75, "button text")
            assert slack_len(node.get("value", "")) <= 2000 and slack_len(node["action_id"]) <= 255
        if node.get("type") == "plain_text_input":
            assert node.get("max_length", 3000) <= 3000
            initial = node.get("initial_value")
            assert initial is None or (initial != "" and slack_len(initial) <= node.get("max_length", 3000))
            if "placeholder" in node:
                _text_ok(node["placeholder"], 150, "placeholder")
    json.dumps(blocks)


def assert_message_ok(blocks: list[dict[str, Any]], text: str | None = None) -> None:
    """A chat.postMessage payload Slack accepts: at most 50 blocks, each within its limits."""
    assert_blocks_ok(blocks, max_blocks=50)
    if text is not None:
        assert text.strip() and slack_len(text) <= 40_000


def assert_view_ok(view: dict[str, Any]) -> None:
    """A views.open payload Slack accepts: titles of 24, private_metadata of 3,000, at most 100 blocks."""
    for key in ("title", "submit", "close"):
        if key in view:
            _text_ok(view[key], 24, key)
    assert slack_len(view.get("private_metadata", "")) <= 3000
    assert_blocks_ok(view["blocks"], max_blocks=100)
    View(**view).validate_json()

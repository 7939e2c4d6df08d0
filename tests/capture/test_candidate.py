"""Capture's pure parts: Slack markup, pasted transcripts, message files, titles."""

from __future__ import annotations

import json

import pytest

from bot.capture.candidate import heuristic_title
from bot.capture.transcripts import merge_turns, parse_messages_file, parse_pasted
from bot.corpus.schema import Turn
from bot.slack.markup import to_plain_text

NAMES = {"U1": "Maria", "U2": "Dev"}


@pytest.mark.parametrize(
    ("raw", "plain"),
    [
        ("hi <@U1>", "hi @Maria"),
        ("<@U2|dev> look", "@dev look"),
        ("see <https://a.example/x|the docs>", "see the docs (https://a.example/x)"),
        ("bare <https://a.example/x>", "bare https://a.example/x"),
        ("<mailto:jo@example.com|jo@example.com>", "jo@example.com"),
        ("in <#C123|general>", "in #general"),
        ("<!here> ping", "@here ping"),
        ("<!subteam^S1|@support> ping", "@support ping"),
        ("a &amp; b &lt;c&gt;", "a & b <c>"),
        ("&amp;lt; stays literal", "&lt; stays literal"),
        ("unknown <@U9>", "unknown @U9"),
    ],
)
def test_markup(raw, plain):
    assert to_plain_text(raw, user_name=lambda uid: NAMES.get(uid, uid)) == plain


def test_pasted_transcript_with_preamble_and_continuations():
    text = "Look at this:\nHuman: hi\nthere\nAI: hello\n**User:** bye"
    assert [(t.role, t.content) for t in parse_pasted(text)] == [("user", "hi\nthere"), ("assistant", "hello"), ("user", "bye")]


@pytest.mark.parametrize("text", ["just a message", "User: only one side\nCustomer: still user", "Assistant: alone"])
def test_text_that_is_not_a_transcript(text):
    assert parse_pasted(text) is None


def test_anthropic_format_with_tool_blocks():
    data = {"messages": [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "weather", "input": {"city": "Oslo"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "rain"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Sunny!"}]},
    ]}
    turns = parse_messages_file("x.json", json.dumps(data).encode())
    assert [t.role for t in turns] == ["user", "assistant", "user", "assistant"]
    assert turns[1].content == '[tool call weather] {"city": "Oslo"}'
    assert turns[2].content == "[tool result] rain"


def test_openai_format_drops_system_and_maps_tool():
    data = [{"role": "system", "content": "be nice"}, {"role": "user", "content": "q"},
            {"role": "assistant", "content": None, "tool_calls": [{"function": {"name": "lookup"}}]},
            {"role": "tool", "content": "42"}, {"role": "assistant", "content": "a"}]
    turns = parse_messages_file("x.json", json.dumps(data).encode())
    assert [(t.role, t.content) for t in turns] == [
        ("user", "q"), ("assistant", "[tool calls: lookup]"), ("user", "[tool result] 42"), ("assistant", "a")]


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("x.json", b"{not json", "is not valid JSON"),
        ("x.json", b"[]", "holds no messages"),
        ("x.json", b'[{"content": "no role"}]', "message 0 has no role"),
        ("x.json", b'[{"role": "wizard", "content": "x"}]', "role 'wizard'"),
        ("x.json", b"\xff\xfe", "not UTF-8"),
    ],
)
def test_bad_message_files(name, data, message):
    with pytest.raises(ValueError, match=message):
        parse_messages_file(name, data)


def test_merge_turns():
    turns = [Turn(role="user", content="a"), Turn(role="user", content="b"), Turn(role="assistant", content="c")]
    assert [(t.role, t.content) for t in merge_turns(turns)] == [("user", "a\n\nb"), ("assistant", "c")]


def test_heuristic_title_prefers_the_note_then_the_question():
    turns = [Turn(role="user", content="How long\ndo I have?"), Turn(role="assistant", content="90 days")]
    assert heuristic_title(turns, "policy is 30 days") == "Policy is 30 days"
    assert heuristic_title(turns, None) == "Reply to: How long"
    long = heuristic_title([Turn(role="user", content="x" * 500)], None)
    assert len(long) == 90 and long.endswith("…")

"""The Slack-message reader: every block, element and attachment kind to normalised text, and system messages."""

from __future__ import annotations

import random

import pytest

from bot.slack.reader import PLACEHOLDER, SYSTEM_SUBTYPES, mention_note, message_text, read_message
from tests.helpers.recorded import shape_threads

NAMES = {"U0LEAD001": "Lead", "U0MARIA01": "Maria"}


def name(user_id: str) -> str:
    return NAMES.get(user_id, user_id)


def rich(*elements: dict) -> dict:
    return {"type": "message", "ts": "1.000100", "user": "U0MARIA01", "text": "", "blocks": [{"type": "rich_text", "elements": list(elements)}]}


def section(*elements: dict) -> dict:
    return {"type": "rich_text_section", "elements": list(elements)}


def text(value: str, **style: bool) -> dict:
    return {"type": "text", "text": value, **({"style": style} if style else {})}


@pytest.mark.parametrize(
    ("element", "expected"),
    [
        (text("plain"), "plain"),
        (text("loud", bold=True), "**loud**"),
        (text("soft", italic=True), "*soft*"),
        (text("gone", strike=True), "~~gone~~"),
        (text("x = 1", code=True), "`x = 1`"),
        (text("both", bold=True, italic=True), "***both***"),
        ({"type": "link", "url": "https://acme.example", "text": "ACME"}, "ACME (https://acme.example)"),
        ({"type": "link", "url": "https://acme.example"}, "https://acme.example"),
        ({"type": "link", "url": "https://acme.example", "text": "ACME", "style": {"bold": True}}, "**ACME (https://acme.example)**"),
        ({"type": "user", "user_id": "U0LEAD001"}, "@Lead"),
        ({"type": "usergroup", "usergroup_id": "S0SUPPORT"}, "@S0SUPPORT"),
        ({"type": "channel", "channel_id": "C0RETURNS"}, "#C0RETURNS"),
        ({"type": "broadcast", "range": "channel"}, "@channel"),
        ({"type": "emoji", "name": "tent", "unicode": "26fa"}, ":tent:"),
        ({"type": "date", "timestamp": 1763700000, "format": "{date_long}", "fallback": "November 21st"}, "November 21st"),
        ({"type": "date", "timestamp": 1763700000, "format": "{ago}"}, "2025-11-21 04:40 UTC"),
        ({"type": "color", "value": "#36a64f"}, "#36a64f"),
    ],
    ids=lambda v: v.get("type", "") + "-" + "-".join(sorted(v.get("style", {}))) if isinstance(v, dict) else None,
)
def test_each_rich_text_element(element, expected):
    assert read_message(rich(section(element)), user_name=name).text == expected


def test_styled_runs_stay_on_one_line_with_their_spaces_outside_the_marks():
    message = rich(section(text("Hey!", bold=True), text(" this is "), text("very ", strike=True), text("rich")))
    assert read_message(message, user_name=name).text == "**Hey!** this is ~~very~~ rich"


def test_lists_number_nest_and_continue_after_an_offset():
    message = rich(
        {"type": "rich_text_list", "style": "ordered", "indent": 0, "elements": [section(text("a")), section(text("b"))]},
        {"type": "rich_text_list", "style": "bullet", "indent": 1, "elements": [section(text("b.1"))]},
        {"type": "rich_text_list", "style": "ordered", "indent": 0, "offset": 2, "elements": [section(text("c"))]},
    )
    assert read_message(message, user_name=name).text == "1. a\n2. b\n   - b.1\n3. c"


def test_quotes_and_preformatted_blocks():
    message = rich({"type": "rich_text_quote", "elements": [text("line one\nline two")]},
                   {"type": "rich_text_preformatted", "elements": [text("print('*not bold*')", bold=True)]})
    assert read_message(message, user_name=name).text == "> line one\n> line two\n```\nprint('*not bold*')\n```"


def test_section_header_context_markdown_and_image_blocks():
    message = {"type": "message", "ts": "1.1", "bot_id": "B1", "text": "notification", "blocks": [
        {"type": "header", "text": {"type": "plain_text", "text": "Refunds"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "Ask <@U0LEAD001> &amp; see <https://acme.example|this>"},
         "fields": [{"type": "mrkdwn", "text": "*Days*\n30"}, {"type": "plain_text", "text": "1 < 2"}],
         "accessory": {"type": "button", "text": {"type": "plain_text", "text": "Open"}, "action_id": "a"}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "by bot"}, {"type": "image", "image_url": "u", "alt_text": "logo"}]},
        {"type": "markdown", "text": "**done**"},
        {"type": "image", "image_url": "u", "alt_text": "a chart"},
        {"type": "divider"},
    ]}
    assert read_message(message, user_name=name).text == (
        "Refunds\nAsk @Lead & see this (https://acme.example)\n**Days**\n30\n1 < 2\n[Open]\nby bot [image: logo]\n**done**\n[image: a chart]")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"text": "ERROR", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "The job failed"}}]}, "The job failed"),
        ({"text": PLACEHOLDER, "blocks": [{"type": "section", "text": {"type": "plain_text", "text": "ok"}}]}, "ok"),
        ({"text": PLACEHOLDER}, ""),
        ({"text": "a long answer that the blocks do not repeat at all",
          "blocks": [{"type": "context", "elements": [{"type": "mrkdwn", "text": "footer"}]}]},
         "a long answer that the blocks do not repeat at all\n\nfooter"),
        ({"text": "same words", "blocks": [{"type": "rich_text", "elements": [section(text("same "), text("words", bold=True))]}]},
         "same **words**"),
        ({"text": "", "attachments": [{"fallback": "only this"}]}, "only this"),
        ({"text": "see", "attachments": [{"pretext": "pre", "title": "T", "title_link": "https://t.example", "text": "body",
                                          "fields": [{"title": "k", "value": "v"}, {"title": "", "value": "lone"}], "footer": "f",
                                          "fallback": "not used"}]},
         "see\n\npre\nT (https://t.example)\nbody\nk: v\nlone\nf"),
        ({"text": "<https://acme.example>", "attachments": [{"from_url": "https://acme.example", "title": "ACME", "text": "preview"}]},
         "https://acme.example"),
        ({"text": "look", "attachments": [{"is_share": True, "is_msg_unfurl": True, "from_url": "https://acme.slack.com/archives/C1/p1",
                                           "author_name": "Maria", "text": "it said 90 days", "footer": "Posted in #support"}]},
         "look\n\nMaria\nit said 90 days\nPosted in #support"),
    ],
    ids=["blocks-over-short-fallback", "never-the-placeholder", "placeholder-alone", "text-carries-more",
         "rich-text-same-words", "attachment-fallback", "attachment-parts", "unfurl-left-out", "forwarded-message-kept"],
)
def test_which_source_wins(raw, expected):
    assert message_text({"type": "message", "ts": "1.1", **raw}, user_name=name) == expected


@pytest.mark.parametrize("subtype", sorted(SYSTEM_SUBTYPES))
def test_every_system_subtype_is_marked_and_has_no_content(subtype):
    message = read_message({"type": "message", "subtype": subtype, "ts": "1.1", "user": "U1", "text": "<@U1> did a thing",
                            "files": [{"name": "x.png"}]}, user_name=name)
    assert message.system == SYSTEM_SUBTYPES[subtype] and not message.is_conversation
    assert message.text == "" and message.files == ()


@pytest.mark.parametrize("subtype", ["tombstone", "message_deleted"])
def test_deleted_messages_are_marked(subtype):
    message = read_message({"type": "message", "subtype": subtype, "ts": "1.1", "text": "This message was deleted."}, user_name=name)
    assert message.deleted and not message.is_conversation and message.text == ""


@pytest.mark.parametrize("subtype", [None, "bot_message", "me_message", "thread_broadcast", "file_share"])
def test_content_subtypes_are_conversation(subtype):
    message = read_message({"type": "message", "subtype": subtype, "ts": "1.1", "text": "hello"}, user_name=name)
    assert message.is_conversation and message.text == "hello"


def test_authors_files_and_the_edited_envelope():
    raw = {"type": "message", "subtype": "message_changed", "ts": "9.9", "previous_message": {"ts": "1.1", "text": "old"},
           "message": {"type": "message", "text": "new", "user": "U0BOTUSER", "bot_id": "B1", "bot_profile": {"id": "B1"},
                       "files": [{"name": "a.json", "url_private": "https://f.example/a", "size": 12}, {"title": "untitled"},
                                 {"id": "F0GONE", "mode": "tombstone"}]}}
    message = read_message(raw, user_name=name)
    assert (message.ts, message.text, message.is_bot) == ("1.1", "new", True)
    assert message.author_ids == {"U0BOTUSER", "B1"}
    assert [(f.name, f.url, f.size) for f in message.files] == [("a.json", "https://f.example/a", 12), ("untitled", None, 0)]
    assert message.content(with_files=True) == "new\n[attached file: a.json]\n[attached file: untitled]"


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"text": "<@UEVALBOT> policy is 30 days"}, "policy is 30 days"),
        ({"text": "<@UEVALBOT>"}, None),
        ({"text": "<@UEVALBOT|evalbot> labelled"}, "labelled"),
        ({"text": "<@UEVALBOT> ask <@U0LEAD001>"}, "ask <@U0LEAD001>"),
        ({"text": PLACEHOLDER, "blocks": [{"type": "section", "text": {"type": "plain_text", "text": "Wrong window."}},
                                          {"type": "context", "elements": [{"type": "mrkdwn", "text": "<@UEVALBOT> it is 30"}]}]},
         "Wrong window.\nit is 30"),
        ({"text": "<@UEVALBOT> fallback", "blocks": [{"type": "rich_text", "elements": [section(
            {"type": "user", "user_id": "UEVALBOT"}, text(" the "), text("real", bold=True), text(" note"))]}]}, "the **real** note"),
    ],
    ids=["text", "mention-only", "labelled-mention", "other-people-kept", "from-blocks-not-placeholder", "rich-text"],
)
def test_the_mention_note_is_the_content_without_the_bot(event, expected):
    assert mention_note({"type": "app_mention", "ts": "1.1", "user": "U0MARIA01", **event}, bot_user_id="UEVALBOT") == expected


JUNK = [None, 0, -3, 2.5, True, "", "x", "<@U1>", [], [None], {}, {"type": 7}, {"type": "text"}, [{"type": "rich_text_list", "indent": "deep"}]]


def mutate(node, rng: random.Random):
    """A copy of `node` with some values replaced by junk of the wrong type or shape."""
    if isinstance(node, dict):
        return {k: (rng.choice(JUNK) if rng.random() < 0.15 else mutate(v, rng)) for k, v in node.items()}
    if isinstance(node, list):
        return [rng.choice(JUNK) if rng.random() < 0.15 else mutate(v, rng) for v in node]
    return node


@pytest.mark.parametrize("seed", range(3))
def test_malformed_payloads_never_stop_the_reader(seed):
    """Property: any field of any message shape replaced by junk is read as absent, never raises."""
    rng = random.Random(seed)
    threads = shape_threads()
    for _ in range(20):
        for thread in threads:
            for raw in thread["messages"]:
                broken = mutate(raw, rng)
                message = read_message(broken, user_name=name)
                assert isinstance(message.text, str) and all(isinstance(f.name, str) for f in message.files)
                assert mention_note(broken, bot_user_id="UEVALBOT") is None or isinstance(mention_note(broken, bot_user_id="UEVALBOT"), str)

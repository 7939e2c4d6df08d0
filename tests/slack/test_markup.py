"""Slack mrkdwn as Markdown (`bot.slack.markup.to_markdown`), as the reader writes every message."""

from __future__ import annotations

import pytest

from bot.slack.markup import to_markdown


@pytest.mark.parametrize(
    ("mrkdwn", "markdown"),
    [
        ("*bold* and _italic_ and ~gone~", "**bold** and *italic* and ~~gone~~"),
        ("*bold _both_*", "**bold *both***"),
        ("*Total*: 1", "**Total**: 1"),
        ("2*3*4 and snake_case_name", "2*3*4 and snake_case_name"),
        ("* a bullet\n* another", "* a bullet\n* another"),
        ("a * b * c", "a * b * c"),
        ("`*code*` stays, *this* not", "`*code*` stays, **this** not"),
        ("```\n*block*\n``` *after*", "```\n*block*\n``` **after**"),
        ("<https://a.example/_x_|the _docs_> _y_", "the _docs_ (https://a.example/_x_) *y*"),
        ("Hello &lt;MARQUEE&gt; *bold*", "Hello <MARQUEE> **bold**"),
    ],
    ids=["styles", "nested", "before-punctuation", "inside-words", "bullets", "spaced-stars", "code-span",
         "code-block", "links-untouched", "entities"],
)
def test_mrkdwn_styles_become_markdown(mrkdwn, markdown):
    assert to_markdown(mrkdwn, user_name=lambda uid: uid) == markdown

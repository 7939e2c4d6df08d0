"""People in the text the domain writes: a Slack user id as `@U0ANA`, which each edge shows its own way.

The domain knows people by the ids Slack gave them (they are in case files, git authors and the database), not how
a surface shows them: the CLI prints `@U0ANA` as it is; the Slack edge turns each into a mention, which Slack shows
as the person's name (`bot.slack.markup.mentions`). Anyone else (a git author with no Slack id) is `@name`.
"""

from __future__ import annotations

import re

USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
IN_TEXT = re.compile(r"(?<![\w<@|/])@([UW][A-Z0-9]{4,})\b")  # a person as `person` writes them, inside a text


def person(user_id: str | None = None, *, name: str | None = None) -> str | None:
    """`@U0ANA` for a Slack user id, `@name` for anyone else, None when there is neither."""
    if user_id and USER_ID.match(user_id):
        return f"@{user_id}"
    shown = name or user_id
    return f"@{shown}" if shown else None

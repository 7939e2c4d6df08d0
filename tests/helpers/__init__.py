"""Small builders shared by tests."""

from __future__ import annotations

from datetime import datetime, timezone

from bot.corpus.ids import slack_case_id
from bot.corpus.schema import Case


def candidate(ts: str = "1763700000.000100", *, channel: str = "C0TEST01", title: str = "Invents a 90-day window", flagged_by=("U0A",)) -> Case:
    """A candidate case captured from message `ts`."""
    return Case.model_validate(
        {
            "id": slack_case_id(channel, ts),
            "title": title,
            "status": "candidate",
            "source": {
                "kind": "slack",
                "channel": channel,
                "ts": ts,
                "flagged_by": list(flagged_by),
                "flagged_at": datetime(2026, 11, 20, 10, tzinfo=timezone.utc),
                "note": "policy is 30 days",
            },
            "conversation": [
                {"role": "user", "content": "How long do I have to return this?"},
                {"role": "assistant", "content": "You have 90 days."},
            ],
            "suggested_expect": [{"rubric": "States the 30-day window."}],
        }
    )

"""Builders of what Slack sends an app: event_callback bodies, slash command and interactivity payloads, signatures.

Used by the Socket Mode side of the fake (it wraps them in envelopes) and directly by tests of HTTP mode
(``serve --http``), which post them signed with ``signed_request_headers``.
"""

from __future__ import annotations

import time
import uuid

from slack_sdk.signature import SignatureVerifier

from tests.fakes.slack.common import APP_ID, BOT_USER_ID, JSON, TEAM_DOMAIN, TEAM_ID, VERIFICATION_TOKEN


def event_callback(event: JSON, *, event_id: str | None = None, event_time: int | None = None) -> JSON:
    """The Events API ``event_callback`` body Slack wraps ``event`` in (``event_ts`` filled in if missing)."""
    event = {**event}
    event.setdefault("event_ts", event.get("ts") or f"{time.time():.6f}")
    return {
        "token": VERIFICATION_TOKEN, "team_id": TEAM_ID, "context_team_id": TEAM_ID, "api_app_id": APP_ID,
        "event": event, "type": "event_callback", "event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}",
        "event_time": event_time or int(time.time()), "is_ext_shared_channel": False,
        "authorizations": [{"enterprise_id": None, "team_id": TEAM_ID, "user_id": BOT_USER_ID, "is_bot": True,
                            "is_enterprise_install": False}],
    }  # fmt: skip


def slash_command_payload(payload: JSON, *, response_url: str | None = None) -> JSON:
    """A slash command payload: ``payload`` over Slack's defaults (token, team, command "/eval", trigger_id, ...)."""
    defaults = {
        "token": VERIFICATION_TOKEN, "team_id": TEAM_ID, "team_domain": TEAM_DOMAIN, "api_app_id": APP_ID,
        "command": "/eval", "text": "", "is_enterprise_install": "false", "trigger_id": _trigger_id(),
        "response_url": response_url or f"https://hooks.slack.com/commands/{TEAM_ID}/1/fake",
    }  # fmt: skip
    return {**defaults, **payload}


def interactive_payload(payload: JSON, *, response_url: str | None = None) -> JSON:
    """An interactivity payload (block_actions, message_action, shortcut, view_submission) over Slack's defaults."""
    defaults: JSON = {
        "token": VERIFICATION_TOKEN, "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN}, "api_app_id": APP_ID,
        "is_enterprise_install": False, "enterprise": None, "trigger_id": _trigger_id(),
    }  # fmt: skip
    if payload.get("type") in ("block_actions", "message_action"):
        defaults["response_url"] = response_url or f"https://hooks.slack.com/actions/{TEAM_ID}/1/fake"
    return {**defaults, **payload}


def signed_request_headers(signing_secret: str, body: str, timestamp: int | str | None = None) -> dict[str, str]:
    """Headers of a request Slack signed with ``signing_secret`` (for tests of ``serve --http``)."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(signing_secret).generate_signature(timestamp=stamp, body=body)
    content_type = "application/json" if body.lstrip().startswith("{") else "application/x-www-form-urlencoded"
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature or "", "Content-Type": content_type}


def _trigger_id() -> str:
    return f"{int(time.time())}.{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex[:16]}"


"""The Slack WebClient evalbot uses: SLACK_API_URL honoured, rate limits and connection errors retried."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from slack_sdk.web import SlackResponse

from bot.core.errors import SlackUnavailableError
from bot.core.settings import Settings
from bot.slack.redaction import RedactingWebClient

T = TypeVar("T")

# Slack's errors for a token it will not take (auth.test, apps.connections.open).
REFUSED = frozenset({"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired",
                     "not_allowed_token_type", "missing_scope", "no_permission", "ekm_access_denied"})
WHERE_TOKENS = {
    "SLACK_BOT_TOKEN": "the Bot User OAuth Token (xoxb-...) under OAuth & Permissions (reinstall the app if revoked)",
    "SLACK_APP_TOKEN": "an app-level token (xapp-...) with connections:write under Basic Information",
}


def make_web_client(settings: Settings, *, token: str | None = None) -> WebClient:
    """A WebClient for the bot token that retries 429s (after Retry-After) and dropped connections, and redacts
    what it posts."""
    bot_token = token or (settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None)
    return RedactingWebClient(
        token=bot_token,
        base_url=settings.slack_api_url,
        timeout=30,
        retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=2), RateLimitErrorRetryHandler(max_retry_count=3)],
    )


def signing_in(settings: Settings, variable: str, call: Callable[[], T]) -> T:
    """Run a call that proves a token works; a refusal or an unreachable Slack becomes one SlackUnavailableError."""
    try:
        return call()
    except SlackApiError as exc:
        error = str(exc.response.get("error") or exc.response.status_code)
        if error in REFUSED:
            raise SlackUnavailableError(f"Slack refused {variable} ({error}): set it to {WHERE_TOKENS[variable]}") from None
        raise SlackUnavailableError(f"Slack answered {error} when checking {variable}: try again, or check "
                                    "https://slack-status.com") from None
    except OSError as exc:  # URLError, refused or reset connections, DNS failures, timeouts
        reason = getattr(exc, "reason", None) or exc.strerror or exc
        raise SlackUnavailableError(f"cannot reach Slack at {settings.slack_api_url} ({reason}): check the network, "
                                    "a proxy, or SLACK_API_URL") from None


def sign_in(settings: Settings, client: WebClient) -> SlackResponse:
    """auth.test with the bot token: who the bot is, or SlackUnavailableError saying what to fix."""
    return signing_in(settings, "SLACK_BOT_TOKEN", client.auth_test)

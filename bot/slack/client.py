"""The Slack WebClient evalbot uses: SLACK_API_URL honoured, rate limits and connection errors retried."""

from __future__ import annotations

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

from bot.config import Settings


def make_web_client(settings: Settings, *, token: str | None = None) -> WebClient:
    """A WebClient for the bot token that retries 429s (after Retry-After) and dropped connections."""
    bot_token = token or (settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None)
    return WebClient(
        token=bot_token,
        base_url=settings.slack_api_url,
        timeout=30,
        retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=2), RateLimitErrorRetryHandler(max_retry_count=3)],
    )

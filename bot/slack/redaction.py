"""Slack's exits guarded by the redactor: Web API posts, response_url posts, and Bolt's per-request helpers.

* `RedactingWebClient`: every Web API call that posts content (messages, ephemerals, modals, file comments) is
  redacted before it leaves; reads (conversations.replies, users.info…) are left alone;
* `RedactingWebhookClient`: response_url posts;
* `redacting_middleware`: Bolt builds a plain WebClient for each request, so this global middleware swaps the
  request's `client` for a redacting one and gives it a redacting `respond` and `ack` (`say` uses the client).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt.context.ack import Ack
from slack_bolt.context.respond import Respond
from slack_sdk import WebClient
from slack_sdk.web import SlackResponse
from slack_sdk.webhook import WebhookClient, WebhookResponse

from bot.core.redaction_exits import IDENTIFIERS, redact_payload

# Web API methods that carry content people read.
_POSTING = ("chat.", "views.", "files.", "dialog.", "conversations.setTopic", "conversations.setPurpose")


def _to_dict(value: Any) -> Any:
    """Slack SDK model objects (blocks, views) as the dicts they send."""
    to_dict = getattr(value, "to_dict", None)
    return to_dict() if callable(to_dict) else value


class RedactingWebClient(WebClient):
    """A WebClient whose content-posting calls (messages, modals, file comments) are redacted before they leave."""

    def api_call(  # the SDK's keyword-only signature, kept as is
        self,
        api_method: str,
        *,
        http_verb: str = "POST",
        files: dict | None = None,
        data: dict | None = None,
        params: dict | None = None,
        json: dict | None = None,
        headers: dict | None = None,
        auth: dict | None = None,
    ) -> SlackResponse:
        if api_method.startswith(_POSTING):
            data, params, json = (
                None if part is None else redact_payload({k: _to_dict(v) for k, v in part.items()})
                for part in (data, params, json)
            )
        return super().api_call(
            api_method, http_verb=http_verb, files=files, data=data, params=params, json=json, headers=headers, auth=auth
        )

    @classmethod
    def like(cls, client: WebClient) -> RedactingWebClient:
        """A redacting client with `client`'s token, URL, timeouts and retry handlers (a shallow copy)."""
        if isinstance(client, RedactingWebClient):
            return client
        copy = cls.__new__(cls)
        copy.__dict__.update(client.__dict__)
        return copy


class RedactingWebhookClient(WebhookClient):
    """A response_url client whose posts are redacted before they leave."""

    def send_dict(self, body: dict[str, Any], headers: dict[str, str] | None = None) -> WebhookResponse:
        return super().send_dict(redact_payload({k: _to_dict(v) for k, v in body.items()}), headers)


class _RedactingRespond(Respond):
    def __call__(self, *args: Any, **kwargs: Any) -> WebhookResponse:
        return super().__call__(*_redacted_args(args), **_redacted_kwargs(kwargs))


class _RedactingAck(Ack):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return super().__call__(*_redacted_args(args), **_redacted_kwargs(kwargs))


def _redacted_args(args: tuple[Any, ...]) -> list[Any]:
    return [redact_payload(_to_dict(arg)) for arg in args]


def _redacted_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {key: value if key in IDENTIFIERS else redact_payload(_to_dict(value)) for key, value in kwargs.items()}


def redacting_middleware(context: Any, next_: Callable[[], Any]) -> Any:
    """Bolt middleware: the request's `client`, `say`, `respond` and `ack` redact what they send."""
    client = context.get("client")
    if isinstance(client, WebClient):
        context["client"] = RedactingWebClient.like(client)
        if "say" in context:  # already built (the assistant middleware does): point it at the redacting client
            context["say"].client = context["client"]
    if context.get("response_url"):
        client = context.get("client")
        context["respond"] = _RedactingRespond(
            response_url=context["response_url"], proxy=getattr(client, "proxy", None), ssl=getattr(client, "ssl", None)
        )
    if "ack" not in context or context["ack"].response is None:
        context["ack"] = _RedactingAck()
    return next_()

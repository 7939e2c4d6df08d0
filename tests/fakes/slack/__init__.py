"""A fake Slack on 127.0.0.1 — Web API and Socket Mode — driven by the real slack-sdk and slack-bolt clients.

Owns a fake workspace (users, user groups, channels, messages and threads, views, uploaded files), the HTTP
endpoints the real ``WebClient`` calls (``/api/<method>``, the file upload URL, ``response_url``), the Socket Mode
websocket that slack-sdk's built-in client connects to, fault injection (error codes, 429s, latency) and the
waiting helpers tests use instead of sleeps. An aiohttp server runs in a background thread with its own event
loop; every public method is thread-safe.

    with FakeSlack() as slack:
        slack.add_channel("C1", "evals")
        parent = slack.post("C1", "hello", user="U1")
        client = WebClient(base_url=slack.api_url, token="xoxb-test")
        client.chat_postMessage(channel="C1", thread_ts=parent, text="hi")
        assert slack.messages_in("C1", thread_ts=parent)[-1]["text"] == "hi"

Thread semantics follow Slack's (see PLATFORM_NOTES): ``conversations.replies`` with a parent's ts pages through the
whole thread parent-first; with a reply's ts it returns only that reply; ``conversations.history`` lists top-level
messages newest-first. Credentials are never recorded: ``Call.headers`` carries ``<redacted>`` for Authorization.

Tests import everything from here; the modules behind it, by concern:

    common       the workspace's ids (TEAM_ID, BOT_ID…), Call, Ack, UploadedFile, ApiError, timestamp and cursor helpers
    payloads     what Slack sends an app: event_callback, slash command and interactivity payloads, signatures
    workspace    the state: users, groups, channels, messages and threads (reply metadata, tombstones), views, files
    web_api      one api_<method> per Web API method, over that state
    http         the HTTP endpoints: token rules, recorded calls and waiting for them, injected faults and latency
    socket_mode  the websocket: envelopes, acks, reconnects; close_socket_mode for the client side
    server       FakeSlack itself: life cycle, seeding and inspecting the workspace
"""

from tests.fakes.slack.common import (
    APP_ID,
    BOT_ID,
    BOT_NAME,
    BOT_USER_ID,
    PERMALINK_BASE,
    TEAM_DOMAIN,
    TEAM_ID,
    VERIFICATION_TOKEN,
    Ack,
    Call,
    UploadedFile,
    ts_key,
)
from tests.fakes.slack.payloads import (
    event_callback,
    interactive_payload,
    signed_request_headers,
    slash_command_payload,
)
from tests.fakes.slack.server import FakeSlack
from tests.fakes.slack.socket_mode import close_socket_mode

__all__ = [
    "APP_ID",
    "BOT_ID",
    "BOT_NAME",
    "BOT_USER_ID",
    "PERMALINK_BASE",
    "TEAM_DOMAIN",
    "TEAM_ID",
    "VERIFICATION_TOKEN",
    "Ack",
    "Call",
    "FakeSlack",
    "UploadedFile",
    "close_socket_mode",
    "event_callback",
    "interactive_payload",
    "signed_request_headers",
    "slash_command_payload",
    "ts_key",
]

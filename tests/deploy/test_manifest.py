"""slack-manifest.yml asks for exactly the bot scopes the code uses: the Web API methods called anywhere in bot/,
the events it listens to, the slash command and shortcut, and the private file downloads."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import yaml
from slack_sdk import WebClient

from tests.helpers.paths import REPO

# Every Web API method evalbot calls (or may call: other features add conversations.history, views.publish,
# reactions.add) -> the bot scopes it needs (https://api.slack.com/methods). An empty set: no scope needed.
METHOD_SCOPES: dict[str, set[str]] = {
    "auth.test": set(),
    "apps.connections.open": set(),  # the app-level token's connections:write, not a bot scope
    "chat.postMessage": {"chat:write"},
    "chat.postEphemeral": {"chat:write"},
    "chat.update": {"chat:write"},
    "chat.delete": {"chat:write"},
    "chat.getPermalink": set(),
    # The bot reads threads in public and private channels alike: it needs both history scopes.
    "conversations.replies": {"channels:history", "groups:history"},
    "conversations.history": {"channels:history", "groups:history"},
    "conversations.info": {"channels:read", "groups:read"},
    "conversations.join": {"channels:join"},
    "conversations.open": {"im:write"},
    "users.info": {"users:read"},
    "usergroups.users.list": {"usergroups:read"},
    "views.open": set(),
    "views.push": set(),
    "views.update": set(),
    "views.publish": set(),
    "reactions.add": {"reactions:write"},
    "files.upload_v2": {"files:write"},  # files.getUploadURLExternal + files.completeUploadExternal
    "files.getUploadURLExternal": {"files:write"},
    "files.completeUploadExternal": {"files:write"},
    "files.info": {"files:read"},
}
EVENT_SCOPES: dict[str, set[str]] = {
    "app_mention": {"app_mentions:read"},
    "reaction_added": {"reactions:read"},
    "app_home_opened": set(),
    "message.channels": {"channels:history"},
    "message.groups": {"groups:history"},
    "message.im": {"im:history"},
}


def _python_files() -> list[Path]:
    return sorted((REPO / "bot").rglob("*.py"))


def methods_called() -> set[str]:
    """Web API methods the code calls: `client.chat_postMessage(...)` and `api_call("conversations.replies")`."""
    found: set[str] = set()
    for path in _python_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            if isinstance(func, ast.Attribute) and hasattr(WebClient, func.attr) and re.fullmatch(r"[a-z]+_[A-Za-z_0-9]+", func.attr):
                if func.attr in ("api_call", "_call"):
                    continue
                found.add(func.attr.replace("_", ".", 1) if func.attr != "files_upload_v2" else "files.upload_v2")
            for arg in node.args[:1]:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and _is_method_name(arg.value):
                    found.add(arg.value)
    # usergroups_users_list is usergroups.users.list: the SDK joins every word after the first with dots.
    return {_dotted(name) for name in found}


def _is_method_name(text: str) -> bool:
    return bool(re.fullmatch(r"[a-z]+(\.[a-zA-Z]+)+", text)) and hasattr(WebClient, text.replace(".", "_"))


def _dotted(name: str) -> str:
    if name == "files.upload_v2":
        return name
    family, _, rest = name.partition(".")
    return f"{family}.{rest.replace('_', '.')}"


def events_listened() -> set[str]:
    found = set()
    for path in _python_files():
        found.update(re.findall(r"\bapp\.event\(\s*[\"']([a-z_.]+)[\"']", path.read_text(encoding="utf-8")))
    return found


def downloads_private_files() -> bool:
    return any("url_private" in path.read_text(encoding="utf-8") for path in _python_files())


def manifest() -> dict:
    return yaml.safe_load((REPO / "slack-manifest.yml").read_text(encoding="utf-8"))


def test_the_scan_finds_the_calls_it_is_meant_to_find():
    called = methods_called()
    assert {"chat.postMessage", "conversations.replies", "usergroups.users.list", "files.upload_v2"} <= called
    assert {"reaction_added", "app_mention"} <= events_listened()


def test_every_method_the_code_calls_has_a_known_scope():
    unknown = methods_called() - METHOD_SCOPES.keys()
    assert not unknown, f"add these Web API methods and their scopes to METHOD_SCOPES: {sorted(unknown)}"


def test_the_manifest_subscribes_to_every_event_the_code_listens_to():
    assert events_listened() <= set(manifest()["settings"]["event_subscriptions"]["bot_events"])


def test_the_manifest_asks_for_exactly_the_scopes_used():
    data = manifest()
    needed: set[str] = set()
    for method in methods_called():
        needed |= METHOD_SCOPES.get(method, set())
    for event in data["settings"]["event_subscriptions"]["bot_events"]:
        needed |= EVENT_SCOPES[event]
    if data["features"].get("slash_commands") or data["features"].get("shortcuts"):
        needed.add("commands")
    if downloads_private_files():
        needed.add("files:read")  # url_private downloads of attached transcripts
    asked = set(data["oauth_config"]["scopes"]["bot"])
    assert asked == needed, f"unused: {sorted(asked - needed)}; missing: {sorted(needed - asked)}"

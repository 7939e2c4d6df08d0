"""Conversations that arrive as data instead of a Slack thread: a pasted transcript or an attached JSON file.

Pasted: lines starting `User:`/`Human:`/`Customer:` and `Assistant:`/`AI:`/`Bot:` (continuation lines belong
to the turn above). Files: `.json` or `.jsonl` in Anthropic or OpenAI messages format.
"""

from __future__ import annotations

import json
import re
from typing import Any, cast

from bot.core.kinds import Role
from bot.corpus.schema import Turn

_SPEAKER = re.compile(r"^\s*(?:\*\*)?(user|human|customer|assistant|ai|bot)(?:\*\*)?\s*:\s?(?:\*\*)?\s?(.*)$", re.I)
_ROLES = {"user": "user", "human": "user", "customer": "user", "assistant": "assistant", "ai": "assistant", "bot": "assistant"}


def parse_pasted(text: str) -> list[Turn] | None:
    """The turns of a pasted transcript, or None when the text is not one (needs a user and an assistant turn)."""
    turns: list[dict[str, str]] = []
    preamble = True
    for line in text.splitlines():
        match = _SPEAKER.match(line)
        if match:
            preamble = False
            turns.append({"role": _ROLES[match.group(1).lower()], "content": match.group(2)})
        elif not preamble and turns:
            turns[-1]["content"] += "\n" + line
    roles = {t["role"] for t in turns}
    if len(turns) < 2 or roles != {"user", "assistant"}:
        return None
    return merge_turns([Turn(role=cast(Role, t["role"]), content=t["content"].strip()) for t in turns])


def parse_messages_file(name: str, data: bytes) -> list[Turn]:
    """Turns from a .json/.jsonl file in Anthropic or OpenAI messages format; ValueError says what is wrong."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError(f"{name} is not UTF-8 text") from None
    try:
        if name.lower().endswith(".jsonl"):
            items: Any = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{name} is not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if isinstance(items, dict):
        items = items.get("messages")
    if isinstance(items, list) and len(items) == 1 and isinstance(items[0], dict) and "messages" in items[0]:
        items = items[0]["messages"]
    if not isinstance(items, list) or not items:
        raise ValueError(f"{name} holds no messages: expected a list of {{role, content}} or {{\"messages\": [...]}}")
    turns = []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or "role" not in item:
            raise ValueError(f"{name}: message {index} has no role")
        role = item["role"]
        if role in ("system", "developer"):
            continue
        content = _content_text(item.get("content"))
        if role == "tool" or role == "function":
            role, content = "user", f"[tool result] {content}"
        if role not in ("user", "assistant"):
            raise ValueError(f"{name}: message {index} has role '{role}' (expected user or assistant)")
        if content or item.get("tool_calls"):
            turns.append(Turn(role=role, content=content or _tool_calls_text(item["tool_calls"])))
    if not turns:
        raise ValueError(f"{name} has no user or assistant messages")
    return merge_turns(turns)


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, dict):
                kind = block.get("type")
                if kind in ("text", "input_text", "output_text"):
                    parts.append(str(block.get("text", "")))
                elif kind == "tool_use":
                    parts.append(f"[tool call {block.get('name')}] {json.dumps(block.get('input'), ensure_ascii=False)}")
                elif kind == "tool_result":
                    parts.append(f"[tool result] {_content_text(block.get('content'))}")
                elif kind in ("image", "image_url", "document"):
                    parts.append(f"[{kind}]")
        return "\n".join(p for p in parts if p)
    return str(content)


def _tool_calls_text(calls: Any) -> str:
    names = [c.get("function", {}).get("name", "?") for c in calls if isinstance(c, dict)]
    return "[tool calls: " + ", ".join(names) + "]"


def merge_turns(turns: list[Turn]) -> list[Turn]:
    """Merge consecutive turns of the same role (blank line between them)."""
    merged: list[Turn] = []
    for turn in turns:
        if merged and merged[-1].role == turn.role:
            merged[-1] = Turn(role=turn.role, content=f"{merged[-1].content}\n\n{turn.content}".strip())
        else:
            merged.append(turn)
    return merged

"""What changed between a run and its baseline: the corpus commit, each prompt file, the target's settings, the
judge model and evalbot's version — so a regression comes with its likely cause.

`snapshot` is recorded in each run's JSON document (`EvalRun.target["system"]`) when the run starts, prompt texts
included (up to PROMPT_CHARS each, else only their hash), so `describe` can later say "system prompt changed in
abc1234: +3 −1 lines" without going back to git; when nothing changed it says "same config: model drift?".
"""

from __future__ import annotations

import difflib
import hashlib
import os
from importlib import metadata
from pathlib import Path
from typing import Any

from bot.evals.config import EvalConfig

SYSTEM_KEY = "system"
PROMPT_CHARS = 64_000
_SECRET_FIELDS = {"headers"}  # may carry tokens: compared by hash only


def evalbot_version() -> str:
    """The installed evalbot version, or 'unknown'."""
    try:
        return metadata.version("evalbot")
    except metadata.PackageNotFoundError:
        return "unknown"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def snapshot(corpus_root: Path, config: EvalConfig, *, corpus_commit: str | None) -> dict[str, Any]:
    """What identifies the evaluated system, as a JSON-ready dict."""
    prompts: dict[str, dict[str, str | None]] = {}
    root = corpus_root.resolve()
    for path in config.prompt_files(corpus_root):
        text = path.read_text(encoding="utf-8", errors="replace")
        name = str(path.resolve().relative_to(root))
        prompts[name] = {"sha": _digest(text), "text": text if len(text) <= PROMPT_CHARS else None}
    target = config.target.model_dump(mode="json")
    for secret in _SECRET_FIELDS & target.keys():
        target[secret] = _digest(repr(sorted(target[secret].items())))
    return {"corpus_commit": corpus_commit, "prompts": prompts, "target": target,
            "judge": config.judge.model_dump(mode="json"), "evalbot": evalbot_version()}


def _diff_stat(before: str | None, after: str | None) -> str:
    if before is None or after is None:
        return "content changed"
    added = removed = 0
    for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0):
        if line.startswith("+") and not line.startswith("+++"):
            added += 1
        elif line.startswith("-") and not line.startswith("---"):
            removed += 1
    return f"+{added} −{removed} lines"


def _prompt_label(name: str, config_target: dict[str, Any]) -> str:
    configured = config_target.get("system_prompt")
    return "system prompt" if configured and os.path.normpath(str(configured)) == os.path.normpath(name) else name


def _settings(before: dict[str, Any], after: dict[str, Any], what: str) -> list[str]:
    lines = []
    for key in sorted(set(before) | set(after)):
        if key == "system_prompt" or before.get(key) == after.get(key):
            continue
        lines.append(f"{what} {key} changed: {before.get(key)!r} → {after.get(key)!r}")
    return lines


def describe(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[str]:
    """One line per change from `before` (the baseline's snapshot) to `after`; [] when either is unknown."""
    if not before or not after:
        return []
    lines: list[str] = []
    commit = (after.get("corpus_commit") or "")[:7]
    at = f" in {commit}" if commit else ""
    old_prompts, new_prompts = before.get("prompts", {}), after.get("prompts", {})
    target = after.get("target", {})
    for name in sorted(set(old_prompts) | set(new_prompts)):
        old, new = old_prompts.get(name), new_prompts.get(name)
        label = _prompt_label(name, target)
        if old is None:
            lines.append(f"{label} added{at}: {name}")
        elif new is None:
            lines.append(f"{label} removed{at}: {name}")
        elif old.get("sha") != new.get("sha"):
            lines.append(f"{label} changed{at}: {_diff_stat(old.get('text'), new.get('text'))}")
    lines += _settings(before.get("target", {}), target, "target")
    lines += _settings(before.get("judge", {}), after.get("judge", {}), "judge")
    if before.get("evalbot") != after.get("evalbot"):
        lines.append(f"evalbot {before.get('evalbot')} → {after.get('evalbot')}")
    if not lines:
        same = "same config and prompts"
        if before.get("corpus_commit") != after.get("corpus_commit"):
            same += f" (corpus moved to {commit}: cases only)"
        lines.append(same + ": model drift?")
    return lines

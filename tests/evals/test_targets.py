"""Targets against real things: a subprocess, a local HTTP server, Python functions and the fake Anthropic API."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.core.errors import CallFailed, ConfigError
from bot.core.llm import RetryPolicy
from bot.core.settings import load_settings
from bot.evals.config import EvalConfig
from bot.evals.targets import build_target, dig
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.endpoint import FakeEndpoint
from tests.helpers.evals import make_case

FAST = RetryPolicy(retries=2, base_delay=0.01)
CASE = make_case("tgt00001", turns=[
    {"role": "user", "content": "hi"},
    {"role": "assistant", "content": "hello"},
    {"role": "user", "content": "return window?"},
    {"role": "assistant", "content": "90 days"},
])
REPLAYED = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}, {"role": "user", "content": "return window?"}]


def target_for(target: dict, root: Path, **settings):
    config = EvalConfig.model_validate({"target": target})
    return build_target(config, corpus_root=root, settings=load_settings(**settings), policy=FAST, concurrency=4)


def generate(target, case=CASE):
    async def go():
        try:
            return await target.generate(case)
        finally:
            await target.aclose()

    return asyncio.run(go())


# ---------------------------------------------------------------- command


SCRIPT = """
import json, os, sys, time
messages = json.load(sys.stdin)
mode = os.environ.get("FAKE_MODE", "echo")
if mode == "fail":
    print("model exploded", file=sys.stderr)
    sys.exit(3)
if mode == "slow":
    time.sleep(10)
print(f"{os.environ['EVALBOT_CASE_ID']}: {len(messages)} turns, last: {messages[-1]['content']}")
"""


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "bot_under_test.py"
    path.write_text(SCRIPT)
    return path


def test_command_gets_the_messages_on_stdin_and_replies_on_stdout(tmp_path, script):
    reply = generate(target_for({"kind": "command", "argv": [sys.executable, script.name]}, tmp_path))
    assert reply.text == "tgt00001: 3 turns, last: return window?"  # run in the corpus folder, trailing newline dropped
    assert reply.latency_ms > 0


def test_command_failure_is_an_error_with_its_stderr(tmp_path, script, monkeypatch):
    monkeypatch.setenv("FAKE_MODE", "fail")
    with pytest.raises(CallFailed, match="exited with status 3: model exploded"):
        generate(target_for({"kind": "command", "argv": [sys.executable, str(script)]}, tmp_path))


def test_command_timeout_kills_it(tmp_path, script, monkeypatch):
    monkeypatch.setenv("FAKE_MODE", "slow")
    with pytest.raises(CallFailed, match=r"did not finish within 0.5s \(killed\)"):
        generate(target_for({"kind": "command", "argv": [sys.executable, str(script)], "timeout": 0.5}, tmp_path))


def test_command_that_does_not_exist(tmp_path):
    with pytest.raises(CallFailed, match="cannot start 'no-such-binary-xyz'"):
        generate(target_for({"kind": "command", "argv": ["no-such-binary-xyz"]}, tmp_path))


# ---------------------------------------------------------------- http


@pytest.fixture
def server() -> Iterator[FakeEndpoint]:
    with FakeEndpoint(default={"output": {"text": "ok"}}) as endpoint:
        yield endpoint


def http_target(server, tmp_path, **extra):
    url = f"http://127.0.0.1:{server.server_address[1]}/chat?token=secret"
    return target_for({"kind": "http", "url": url, "response_path": "output.text", **extra}, tmp_path)


def test_http_posts_messages_and_case_id_and_reads_the_response_path(server, tmp_path, monkeypatch):
    monkeypatch.setenv("BOT_TOKEN", "t0ps3cret")
    server.script.append((200, {"output": {"text": "You have 30 days."}}, {}))
    target = http_target(server, tmp_path, headers={"Authorization": "Bearer ${BOT_TOKEN}"})
    assert target.label == f"http:http://127.0.0.1:{server.server_address[1]}/chat"  # no query string in records
    reply = generate(target)
    assert reply.text == "You have 30 days."
    assert server.seen == [{"body": {"messages": REPLAYED, "case_id": "tgt00001"}, "auth": "Bearer t0ps3cret"}]


def test_http_retries_429_and_5xx_honouring_retry_after(server, tmp_path):
    server.script += [(429, {"error": "slow down"}, {"retry-after": "0.01"}), (503, "down", {}), (200, {"output": {"text": "ok"}}, {})]
    assert generate(http_target(server, tmp_path)).text == "ok"
    assert len(server.seen) == 3


def test_http_gives_up_after_the_retries(server, tmp_path):
    server.script += [(500, "boom", {})] * 3
    with pytest.raises(CallFailed, match=r"failed after 3 attempt\(s\): .* answered HTTP 500: boom"):
        generate(http_target(server, tmp_path))


def test_http_client_errors_are_not_retried(server, tmp_path):
    server.script.append((400, {"error": "bad"}, {}))
    with pytest.raises(CallFailed, match='answered HTTP 400: {"error": "bad"}'):
        generate(http_target(server, tmp_path))
    assert len(server.seen) == 1


def test_http_missing_response_path(server, tmp_path):
    server.script.append((200, {"answer": "hi"}, {}))
    with pytest.raises(CallFailed, match="no reply at response_path 'output.text'"):
        generate(http_target(server, tmp_path))


def test_http_unreachable_is_retried_then_an_error(tmp_path):
    target = target_for({"kind": "http", "url": "http://127.0.0.1:9/chat"}, tmp_path)
    with pytest.raises(CallFailed, match=r"failed after 3 attempt\(s\): cannot reach"):
        generate(target)


def test_http_header_with_an_unset_variable_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigError, match=r"headers.X-Key uses \$\{MISSING_VAR\} but the environment variable MISSING_VAR is not set"):
        target_for({"kind": "http", "url": "http://x/", "headers": {"X-Key": "${MISSING_VAR}"}}, tmp_path)


@pytest.mark.parametrize(
    ("data", "path", "value"),
    [({"reply": "a"}, "reply", "a"), ({"choices": [{"message": {"content": "b"}}]}, "choices.0.message.content", "b"),
     ({"items": ["x", "y"]}, "items.-1", "y")],
)
def test_dig(data, path, value):
    assert dig(data, path) == value


# ---------------------------------------------------------------- python


def write_module(root: Path, source: str) -> str:
    name = f"target_{uuid.uuid4().hex[:8]}"
    (root / f"{name}.py").write_text(source)
    return name


def test_python_sync_function(tmp_path):
    module = write_module(tmp_path, "def reply(messages):\n    return 'sync: ' + messages[-1]['content']\n")
    assert generate(target_for({"kind": "python", "callable": f"{module}:reply"}, tmp_path)).text == "sync: return window?"


def test_python_async_function(tmp_path):
    module = write_module(tmp_path, "import asyncio\nasync def reply(messages):\n    await asyncio.sleep(0)\n    return f'async: {len(messages)}'\n")
    assert generate(target_for({"kind": "python", "callable": f"{module}:reply"}, tmp_path)).text == "async: 3"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def reply(messages):\n    raise ValueError('no model')\n", "raised ValueError: no model"),
        ("def reply(messages):\n    return 42\n", "returned int; it must return the reply as a str"),
        ("import asyncio\nasync def reply(messages):\n    await asyncio.sleep(5)\n", "did not return within 0.2s"),
    ],
)
def test_python_failures_are_errors(tmp_path, source, message):
    module = write_module(tmp_path, source)
    with pytest.raises(CallFailed, match=message):
        generate(target_for({"kind": "python", "callable": f"{module}:reply", "timeout": 0.2}, tmp_path))


@pytest.mark.parametrize(("spec", "message"), [("no_such_module_xyz:reply", "cannot import no_such_module_xyz"), ("json:nope", "json has no function nope")])
def test_python_callable_that_cannot_be_loaded(tmp_path, spec, message):
    with pytest.raises(ConfigError, match=message):
        target_for({"kind": "python", "callable": spec}, tmp_path)


# ---------------------------------------------------------------- anthropic


def test_anthropic_sends_the_system_prompt_and_the_replayed_turns(tmp_path):
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "system.md").write_text("You are Trailhead.")
    with FakeAnthropic() as fake:
        fake.queue("You have 30 days.")
        target = target_for({"kind": "anthropic", "model": "claude-haiku-4-5", "system_prompt": "prompts/system.md", "max_tokens": 300},
                            tmp_path, anthropic_api_key="sk-ant-test", anthropic_base_url=fake.base_url)
        reply = generate(target)
        sent = fake.requests[-1].json
    assert reply.text == "You have 30 days." and reply.model == "claude-haiku-4-5" and reply.usage.output_tokens > 0
    # the system prompt is one block marked for prompt caching (harmless below the model's minimum cacheable length)
    assert sent["system"] == [{"type": "text", "text": "You are Trailhead.", "cache_control": {"type": "ephemeral"}}]
    assert sent["messages"] == REPLAYED and sent["max_tokens"] == 300
    assert "temperature" not in sent  # API 2026-10-21 rejects sampling parameters


def test_anthropic_target_needs_the_key(tmp_path):
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY is not set: the anthropic target"):
        target_for({"kind": "anthropic", "model": "claude-haiku-4-5"}, tmp_path)

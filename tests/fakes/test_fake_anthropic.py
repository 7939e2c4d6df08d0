"""Self-tests of the fake Anthropic API, driven by the real anthropic SDK over 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest
from pydantic import BaseModel

from .anthropic import FakeAnthropic, Reply, example_from_schema

MODEL = "claude-haiku-4-5"
API_KEY = "sk-ant-test-secret"
HELLO = [{"role": "user", "content": "hello there"}]
VERDICT_TOOL = {
    "name": "verdict",
    "description": "Record the verdict.",
    "input_schema": {
        "type": "object",
        "properties": {"passed": {"type": "boolean"}, "reason": {"type": "string"}},
        "required": ["passed", "reason"],
    },
}


class Verdict(BaseModel):
    passed: bool
    reason: str


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


@pytest.fixture
def client(fake: FakeAnthropic) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(api_key=API_KEY, base_url=fake.base_url, max_retries=2) as sdk:
        yield sdk


def async_client(fake: FakeAnthropic, **kwargs: Any) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(api_key=API_KEY, base_url=fake.base_url, **kwargs)


def create(client: anthropic.Anthropic, **kwargs: Any) -> anthropic.types.Message:
    return client.messages.create(**{"model": MODEL, "max_tokens": 64, "messages": HELLO, **kwargs})


def raw_post(fake: FakeAnthropic, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """POST /v1/messages without the SDK, to see the fake's error answers as they are."""
    request = urllib.request.Request(
        f"{fake.base_url}/v1/messages",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json", **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


# ---------------------------------------------------------------- messages


def test_sync_create_returns_a_message(fake: FakeAnthropic, client: anthropic.Anthropic) -> None:
    fake.queue("The answer is 42.")
    message = create(client)
    assert message.type == "message" and message.role == "assistant" and message.model == MODEL
    assert message.content[0].type == "text" and message.content[0].text == "The answer is 42."
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    assert message.usage.input_tokens >= 1 and message.usage.output_tokens >= 1
    assert message.usage.cache_creation_input_tokens == 0 and message.usage.cache_read_input_tokens == 0


def test_async_create_returns_a_message(fake: FakeAnthropic) -> None:
    async def run() -> anthropic.types.Message:
        async with async_client(fake) as sdk:
            return await sdk.messages.create(model=MODEL, max_tokens=64, messages=HELLO)

    message = asyncio.run(run())
    assert message.content[0].text == "Fake reply to: hello there"


def test_queue_is_used_first_then_the_responder(fake: FakeAnthropic, client: anthropic.Anthropic) -> None:
    fake.responder = lambda request: f"responder saw {request['model']}"
    fake.queue("one", Reply.text("two"))
    assert [create(client).content[0].text for _ in range(3)] == ["one", "two", f"responder saw {MODEL}"]


def test_requests_are_recorded_without_the_api_key(fake: FakeAnthropic, client: anthropic.Anthropic) -> None:
    create(client, system="Be brief.")
    recorded = fake.requests[-1]
    assert (recorded.method, recorded.path) == ("POST", "/v1/messages")
    assert recorded.json == {"model": MODEL, "max_tokens": 64, "messages": HELLO, "system": "Be brief."}
    assert recorded.headers["authorization"] == "<redacted>"
    assert API_KEY not in repr(fake.requests)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"max_tokens": 5, "messages": HELLO}, "model: Field required"),
        ({"model": MODEL, "messages": HELLO}, "max_tokens: Field required"),
        ({"model": MODEL, "max_tokens": 5}, "messages: Field required"),
    ],
)
def test_malformed_request_is_a_400(fake: FakeAnthropic, body: dict[str, Any], message: str) -> None:
    status, answer = raw_post(fake, body, {"x-api-key": API_KEY})
    assert status == 400
    assert answer["type"] == "error"
    assert answer["error"] == {"type": "invalid_request_error", "message": message}


def test_missing_api_key_is_a_401(fake: FakeAnthropic) -> None:
    status, answer = raw_post(fake, {"model": MODEL, "max_tokens": 5, "messages": HELLO}, {})
    assert status == 401 and answer["error"]["type"] == "authentication_error"


def test_x_api_key_header_is_accepted(fake: FakeAnthropic) -> None:
    status, answer = raw_post(fake, {"model": MODEL, "max_tokens": 5, "messages": HELLO}, {"x-api-key": API_KEY})
    assert status == 200 and answer["type"] == "message"


# ---------------------------------------------------------------- faults


@pytest.mark.parametrize("status", [429, 529])
def test_sdk_retries_a_transient_error(fake: FakeAnthropic, client: anthropic.Anthropic, status: int) -> None:
    fake.fail_next(status, retry_after=0.01)
    fake.queue("recovered")
    assert create(client).content[0].text == "recovered"
    assert [r.headers["x-stainless-retry-count"] for r in fake.requests] == ["0", "1"]


@pytest.mark.parametrize(
    ("status", "error", "error_type"),
    [
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (529, anthropic.OverloadedError, "overloaded_error"),
        (500, anthropic.InternalServerError, "api_error"),
    ],
)
def test_fault_carries_anthropic_error_json(
    fake: FakeAnthropic, status: int, error: type[Exception], error_type: str
) -> None:
    fake.fail_next(status, retry_after=7)
    sdk = anthropic.Anthropic(api_key=API_KEY, base_url=fake.base_url, max_retries=0)
    with pytest.raises(error) as raised:
        create(sdk)
    assert raised.value.response.headers["retry-after"] == "7"
    assert raised.value.body["error"]["type"] == error_type


def test_persistent_500_raises_after_retries(fake: FakeAnthropic, client: anthropic.Anthropic) -> None:
    fake.fail_always(500, retry_after=0.01)
    with pytest.raises(anthropic.InternalServerError):
        create(client)
    assert len(fake.requests) == 3  # the first try and max_retries=2
    fake.clear_faults()
    assert create(client).content


def test_fail_next_times_then_success(fake: FakeAnthropic, client: anthropic.Anthropic) -> None:
    fake.fail_next(429, times=2, retry_after=0.01, error_type="rate_limit_error")
    assert create(client).content
    assert len(fake.requests) == 3


def test_dropped_connection_is_an_api_connection_error(fake: FakeAnthropic) -> None:
    fake.drop_connection_next()
    sdk = anthropic.Anthropic(api_key=API_KEY, base_url=fake.base_url, max_retries=0)
    with pytest.raises(anthropic.APIConnectionError):
        create(sdk)
    assert create(sdk).content  # the next request is answered


def test_broken_responder_is_a_500_that_is_not_retried(fake: FakeAnthropic, client: anthropic.Anthropic) -> None:
    fake.responder = lambda request: 1 / 0
    with pytest.raises(anthropic.InternalServerError):
        create(client)
    assert len(fake.requests) == 1 and isinstance(fake.errors[0], ZeroDivisionError)


# ---------------------------------------------------------------- structured replies


def test_forced_tool_use_returns_a_tool_use_block(fake: FakeAnthropic, client: anthropic.Anthropic) -> None:
    fake.queue({"passed": False, "reason": "invents 90 days"})
    message = create(client, tools=[VERDICT_TOOL], tool_choice={"type": "tool", "name": "verdict"})
    block = message.content[0]
    assert message.stop_reason == "tool_use"
    assert block.type == "tool_use" and block.name == "verdict" and block.id.startswith("toolu_")
    assert block.input == {"passed": False, "reason": "invents 90 days"}


def test_default_responder_fills_a_forced_tool_from_its_schema(client: anthropic.Anthropic) -> None:
    message = create(client, tools=[VERDICT_TOOL], tool_choice={"type": "tool", "name": "verdict"})
    assert message.content[0].input == {"passed": True, "reason": "fake"}


def test_parse_returns_parsed_output(fake: FakeAnthropic, client: anthropic.Anthropic) -> None:
    fake.queue({"passed": True, "reason": "states 30 days"})
    message = client.messages.parse(model=MODEL, max_tokens=64, messages=HELLO, output_format=Verdict)
    assert message.parsed_output == Verdict(passed=True, reason="states 30 days")
    assert fake.requests[-1].json["output_config"]["format"]["type"] == "json_schema"


def test_parse_with_default_responder_is_schema_valid(client: anthropic.Anthropic) -> None:
    message = client.messages.parse(model=MODEL, max_tokens=64, messages=HELLO, output_format=Verdict)
    assert isinstance(message.parsed_output, Verdict)


def test_example_from_schema_follows_refs_and_enums() -> None:
    schema = {
        "type": "object",
        "properties": {"grade": {"$ref": "#/$defs/Grade"}, "notes": {"type": "array", "items": {"type": "string"}}},
        "$defs": {"Grade": {"enum": ["pass", "fail"]}},
    }
    assert example_from_schema(schema) == {"grade": "pass", "notes": []}


def test_prompt_caching_creates_then_reads(client: anthropic.Anthropic) -> None:
    system = [{"type": "text", "text": "policy " * 400, "cache_control": {"type": "ephemeral"}}]
    first, second = create(client, system=system).usage, create(client, system=system).usage
    assert first.cache_creation_input_tokens > 0 and first.cache_read_input_tokens == 0
    assert second.cache_read_input_tokens == first.cache_creation_input_tokens
    assert second.cache_creation_input_tokens == 0


# ---------------------------------------------------------------- batches


def batch_request(custom_id: str) -> dict[str, Any]:
    messages = [{"role": "user", "content": f"question {custom_id}"}]
    return {"custom_id": custom_id, "params": {"model": MODEL, "max_tokens": 32, "messages": messages}}


def test_batch_lifecycle_with_mixed_outcomes(fake: FakeAnthropic, client: anthropic.Anthropic) -> None:
    fake.batch_processing_seconds = None  # only end_batch() ends it
    fake.batch_outcomes.update({"b": "errored", "c": "expired"})
    batch = client.messages.batches.create(requests=[batch_request(i) for i in "abcd"])
    assert batch.id.startswith("msgbatch_") and batch.processing_status == "in_progress"
    assert batch.request_counts.processing == 4 and batch.results_url is None

    assert client.messages.batches.retrieve(batch.id).processing_status == "in_progress"
    fake.end_batch(batch.id)
    ended = client.messages.batches.retrieve(batch.id)
    assert ended.processing_status == "ended" and ended.ended_at is not None
    assert ended.results_url == f"{fake.base_url}/v1/messages/batches/{batch.id}/results"
    counts = ended.request_counts
    assert (counts.processing, counts.succeeded, counts.errored, counts.expired) == (0, 2, 1, 1)

    results = list(client.messages.batches.results(batch.id))
    assert [r.custom_id for r in results] == ["d", "c", "b", "a"]  # not request order
    by_id = {r.custom_id: r.result for r in results}
    assert by_id["a"].type == "succeeded" and by_id["a"].message.content[0].text == "Fake reply to: question a"
    assert by_id["b"].type == "errored" and by_id["b"].error.error.type == "api_error"
    assert by_id["c"].type == "expired"
    assert fake.requests[-1].headers["accept"] == "application/binary"


def test_batch_ends_after_processing_seconds(fake: FakeAnthropic, client: anthropic.Anthropic) -> None:
    fake.batch_processing_seconds = 0
    batch = client.messages.batches.create(requests=[batch_request("only")])
    assert batch.processing_status == "in_progress"
    assert client.messages.batches.retrieve(batch.id).processing_status == "ended"


def test_batch_invalid_params_are_errored(fake: FakeAnthropic, client: anthropic.Anthropic) -> None:
    broken = {"custom_id": "x", "params": {"model": MODEL, "messages": HELLO}}
    batch = client.messages.batches.create(requests=[broken])
    (line,) = client.messages.batches.results(batch.id)
    assert line.result.type == "errored" and line.result.error.error.type == "invalid_request_error"


def test_batch_cancel(fake: FakeAnthropic, client: anthropic.Anthropic) -> None:
    fake.batch_processing_seconds = None
    batch = client.messages.batches.create(requests=[batch_request("a"), batch_request("b")])
    canceling = client.messages.batches.cancel(batch.id)
    assert canceling.processing_status == "canceling" and canceling.cancel_initiated_at is not None
    ended = client.messages.batches.retrieve(batch.id)
    assert ended.processing_status == "ended" and ended.request_counts.canceled == 2
    assert {line.result.type for line in client.messages.batches.results(batch.id)} == {"canceled"}


def test_unknown_batch_is_a_404(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError):
        client.messages.batches.retrieve("msgbatch_missing")


def test_async_batch_results(fake: FakeAnthropic) -> None:
    async def run() -> list[str]:
        async with async_client(fake) as sdk:
            batch = await sdk.messages.batches.create(requests=[batch_request("a"), batch_request("b")])
            results = await sdk.messages.batches.results(batch.id)
            return [line.result.message.content[0].text async for line in results]

    assert asyncio.run(run()) == ["Fake reply to: question b", "Fake reply to: question a"]


# ---------------------------------------------------------------- throughput


def test_200_concurrent_calls_with_latency_overlap(fake: FakeAnthropic) -> None:
    fake.latency = 0.1

    async def run() -> list[anthropic.types.Message]:
        async with async_client(fake, max_retries=0) as sdk:
            calls = [sdk.messages.create(model=MODEL, max_tokens=8, messages=HELLO) for _ in range(200)]
            return await asyncio.gather(*calls)

    messages = asyncio.run(run())
    assert len(messages) == 200 and len(fake.requests) == 200
    # Overlap is a property of the fake (it never blocks its loop), not a wall-clock figure.
    assert fake.peak_in_flight >= 50, f"only {fake.peak_in_flight} calls were in flight at once"

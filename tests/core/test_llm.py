"""bot.core.llm: the client's retry policy against the fake Anthropic API, usage accounting, cost, and call logs."""

from __future__ import annotations

import asyncio
import logging
import time
from email.utils import formatdate

import pytest

from bot.core.errors import CallFailed, ConfigError, TransientError
from bot.core.llm import (
    LLM,
    RetryPolicy,
    parse_retry_after,
    retry_call,
)
from bot.core.settings import load_settings
from bot.core.usage import Usage, UsageMeter, estimate_cost, price_for
from tests.fakes.anthropic import FakeAnthropic

KEY = "sk-ant-secret-value-123"
MODEL = "claude-haiku-4-5"
HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture
def fake():
    with FakeAnthropic() as server:
        yield server


def complete(fake: FakeAnthropic, *, retries: int = 3, base_delay: float = 0.01, timeout: float = 5.0, **params):
    async def go():
        llm = LLM(api_key=KEY, base_url=fake.base_url, policy=RetryPolicy(retries=retries, base_delay=base_delay), timeout=timeout)
        try:
            return await llm.complete(purpose="test", **{"model": MODEL, "max_tokens": 32, "messages": HELLO, **params}), llm
        finally:
            await llm.aclose()

    return asyncio.run(go())


def test_429_and_529_are_retried_until_success(fake):
    fake.fail_next(429, retry_after=0.01)
    fake.fail_next(529)
    fake.queue("finally")
    done, llm = complete(fake)
    assert done.text == "finally" and done.attempts == 3
    assert len(fake.requests) == 3
    assert llm.meter.calls == 1 and llm.meter.by_model[MODEL] == done.usage


def test_retry_after_is_honoured_instead_of_the_backoff(fake):
    fake.fail_next(429, times=2, retry_after=0.05)
    started = time.perf_counter()
    done, _ = complete(fake, base_delay=30.0)  # the backoff alone would wait 30 s
    assert done.attempts == 3
    assert 0.1 <= time.perf_counter() - started < 5


@pytest.mark.parametrize("status", [500, 503, 529])
def test_5xx_that_persist_fail_after_the_retries(fake, status):
    fake.fail_always(status)
    with pytest.raises(CallFailed) as caught:
        complete(fake, retries=2)
    assert caught.value.attempts == 3 and len(fake.requests) == 3
    assert f"test call to {MODEL} failed after 3 attempt(s): HTTP {status}" in str(caught.value)


def test_a_dropped_connection_is_retried(fake):
    fake.drop_connection_next()
    fake.queue("after the drop")
    done, _ = complete(fake)
    assert done.text == "after the drop" and done.attempts == 2


def test_a_slow_answer_times_out_and_is_retried(fake):
    fake.latency = 1.0
    with pytest.raises(CallFailed, match=r"failed after 2 attempt\(s\): no answer within 0.2s"):
        complete(fake, retries=1, timeout=0.2)


def test_a_bad_request_is_not_retried(fake):
    fake.fail_next(400)
    with pytest.raises(CallFailed) as caught:
        complete(fake)
    assert not isinstance(caught.value, TransientError)
    assert caught.value.attempts == 1 and len(fake.requests) == 1
    assert "HTTP 400 BadRequestError" in str(caught.value)


def test_a_refused_key_is_a_configuration_error(fake):
    fake.fail_next(401)
    with pytest.raises(ConfigError, match="check ANTHROPIC_API_KEY"):
        complete(fake)
    assert len(fake.requests) == 1


def test_the_sdk_does_not_retry_on_its_own(fake):
    llm = LLM(api_key=KEY, base_url=fake.base_url)
    assert llm.client.max_retries == 0
    asyncio.run(llm.aclose())


def test_each_call_is_logged_with_latency_and_tokens_never_the_key(fake, caplog):
    fake.fail_next(529)
    caplog.set_level(logging.INFO, logger="bot.core.llm")
    done, _ = complete(fake)
    records = [r for r in caplog.records if r.name == "bot.core.llm"]
    final = records[-1]
    assert final.purpose == "test" and final.model == MODEL and final.attempts == 2
    assert final.input_tokens == done.usage.input_tokens and final.output_tokens == done.usage.output_tokens
    assert final.latency_ms >= 0
    assert any(getattr(r, "outcome", None) == "error" for r in records)  # the failed attempt is logged too
    assert KEY not in caplog.text and "hello" not in caplog.text  # neither the key nor the prompt
    assert fake.requests[-1].headers.get("authorization") == "<redacted>"


def test_from_settings_needs_the_key(monkeypatch):
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY is not set: the judge calls the Anthropic API"):
        LLM.from_settings(load_settings(), needed_for="the judge")
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9")
    llm = LLM.from_settings(load_settings())
    assert str(llm.client.base_url).startswith("http://127.0.0.1:9")
    asyncio.run(llm.aclose())


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": "0.25"}, 0.25),
        ({"retry-after-ms": "150", "retry-after": "9"}, 0.15),
        ({"retry-after": "soon"}, None),
        ({}, None),
        (None, None),
    ],
)
def test_parse_retry_after(headers, seconds):
    assert parse_retry_after(headers) == seconds


def test_parse_retry_after_as_a_date():
    assert 8 <= parse_retry_after({"retry-after": formatdate(time.time() + 10, usegmt=True)}) <= 10


def test_policy_delays():
    policy = RetryPolicy(base_delay=0.5, max_delay=8.0, max_retry_after=60.0)
    assert policy.delay(1, 3.0) == 3.0
    assert policy.delay(1, 600.0) == 60.0
    assert 0.375 <= policy.delay(1, None) <= 0.5
    assert 3.0 <= policy.delay(4, None) <= 4.0
    assert 6.0 <= policy.delay(10, None) <= 8.0


def test_retry_call_stops_at_a_permanent_error():
    calls = []

    async def flaky():
        calls.append(1)
        raise TransientError("busy", retry_after=0) if len(calls) == 1 else CallFailed("bad request")

    with pytest.raises(CallFailed, match="bad request") as caught:
        asyncio.run(retry_call(flaky, policy=RetryPolicy(retries=5), what="x"))
    assert len(calls) == 2 and caught.value.attempts == 2


@pytest.mark.parametrize(
    ("model", "price"),
    [
        ("claude-haiku-4-5", (1.0, 5.0)),
        ("claude-haiku-4-5-20251001", (1.0, 5.0)),
        ("claude-3-5-haiku-20241022", (0.8, 4.0)),
        ("claude-sonnet-4-6", (3.0, 15.0)),
        ("claude-opus-4-6", (5.0, 25.0)),
        ("claude-opus-4-1", (15.0, 75.0)),
        ("claude-fable-5", None),
        ("my-fine-tune", None),
    ],
)
def test_price_table(model, price):
    found = price_for(model)
    assert (found.input, found.output) == price if price else found is None


def test_cost_estimate_counts_cache_and_halves_batches():
    usage = Usage(input_tokens=1_000_000, output_tokens=100_000, cache_read_tokens=1_000_000, cache_write_tokens=1_000_000)
    # sonnet: 3 + 1.5 (output) + 0.3 (cache read) + 3.75 (cache write)
    assert estimate_cost("claude-sonnet-4-6", usage) == pytest.approx(8.55)
    assert estimate_cost("claude-sonnet-4-6", usage, batch=True) == pytest.approx(4.275)
    assert estimate_cost("unknown-model", usage) is None


def test_meter_cost_names_unknown_models():
    meter = UsageMeter()
    meter.add("claude-haiku-4-5", Usage(1_000_000, 0))
    meter.add("claude-haiku-4-5", Usage(0, 200_000))
    meter.add("house-model", Usage(5, 5))
    assert meter.total == Usage(1_000_005, 200_005)
    assert meter.cost() == (pytest.approx(2.0), ["house-model"])


def test_a_usage_meter_survives_json():
    meter = UsageMeter()
    meter.add(MODEL, Usage(10, 5, 3, 2))
    meter.add("claude-sonnet-4-6", Usage(1, 1))
    assert UsageMeter.load(meter.dump()).by_model == meter.by_model
    assert UsageMeter.load(None).by_model == {}


def test_cacheable_marks_one_system_block():
    from bot.core.llm import cacheable

    assert cacheable("Be brief.") == [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]


def test_message_batches_create_retries_poll_once_and_stream_every_result(fake):
    from bot.core.errors import TransientError

    requests = [{"custom_id": f"r-{i}", "params": {"model": MODEL, "max_tokens": 8, "messages": HELLO}} for i in range(3)]
    fake.batch_processing_seconds = None

    async def go():
        llm = LLM(api_key=KEY, base_url=fake.base_url, policy=RetryPolicy(retries=2, base_delay=0.01), timeout=5)
        try:
            fake.fail_next(529)
            batch = await llm.create_batch(requests, purpose="test")  # retried after the 529
            assert (await llm.retrieve_batch(batch["id"]))["processing_status"] == "in_progress"
            fake.fail_next(529)
            with pytest.raises(TransientError):  # a poll is one attempt: the caller polls again
                await llm.retrieve_batch(batch["id"])
            fake.end_batch(batch["id"])
            lines = []
            fake.drop_connection_next()  # the download breaks once and starts again
            count = await llm.batch_results(batch["id"], lines.append)
            return batch, count, lines
        finally:
            await llm.aclose()

    batch, count, lines = asyncio.run(go())
    assert count == 3 and sorted(line["custom_id"] for line in lines[-3:]) == ["r-0", "r-1", "r-2"]
    assert len([r for r in fake.requests if r.method == "POST"]) == 2 and len(fake.batches) == 1


def test_model_calls_are_counted_in_the_metrics(fake):
    from bot.core.metrics import REGISTRY

    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, {"purpose": "test", **labels}) or 0.0

    calls, tokens = sample("evalbot_model_call_seconds_count"), sample("evalbot_model_tokens_total", kind="output")
    fake.queue("four words of reply")
    done, _ = complete(fake)
    assert sample("evalbot_model_call_seconds_count") == calls + 1
    assert sample("evalbot_model_tokens_total", kind="output") == tokens + done.usage.output_tokens

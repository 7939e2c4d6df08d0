"""Prompt caching: the target's system prompt and the judge's fixed instructions are cached system blocks, and the
cache reads and writes the API reports are recorded on the run, priced (reads 0.1x, writes 1.25x the input price)
and shown by `evalbot eval report`. Runs against the fake Anthropic API, which simulates the cache.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.evals import records
from bot.evals.evaluate import run_eval
from bot.evals.judge import INSTRUCTIONS
from bot.evals.render.report import format_comparison
from bot.runtime import open_runtime
from bot.store.tables import EvalRun, session_scope
from tests.fakes.anthropic import FakeAnthropic, estimate_tokens
from tests.helpers.evalruns import anthropic_corpus, anthropic_toml

pytestmark = pytest.mark.migrated_db  # the database starts migrated: each test's first use of it migrates in-process

TOML = anthropic_toml(retries=1, concurrency=4)
PRICES = {"claude-haiku-4-5": (1.0, 5.0), "claude-sonnet-4-6": (3.0, 15.0)}  # $ per million input/output tokens


@pytest.fixture
def fake(db_url, corpus_dir, monkeypatch):
    with anthropic_corpus(corpus_dir, monkeypatch, toml=TOML) as server:
        server.rt = open_runtime()
        server.system_prompt = (corpus_dir / "prompts" / "system.md").read_text()
        yield server


def stored(rt, run_id: int) -> EvalRun:
    with session_scope(rt.engine) as session:
        return session.get(EvalRun, run_id)


def test_the_second_call_reads_what_the_first_wrote_and_the_run_records_both(fake):
    report = run_eval(fake.rt)
    target_prefix = estimate_tokens(fake.system_prompt)  # the fake counts about four characters a token
    judge_prefix = estimate_tokens(INSTRUCTIONS)
    messages = [r.json for r in fake.requests if r.path == "/v1/messages"]
    assert all(m["system"][0]["cache_control"] == {"type": "ephemeral"} for m in messages)
    run = stored(fake.rt, report.run_id)
    # 6 target calls and 4 judgements: the first of each writes the cache, every later one reads it
    assert run.cache_write_tokens == target_prefix + judge_prefix
    assert run.cache_read_tokens == 5 * target_prefix + 3 * judge_prefix
    models = records.target_info(run)["models"]
    assert models["claude-haiku-4-5"]["cache_read_tokens"] == 5 * target_prefix
    assert models["claude-sonnet-4-6"]["cache_write_tokens"] == judge_prefix
    # cost by hand: input 1x, cache reads 0.1x, cache writes 1.25x the input price, output at the output price
    by_hand = {
        model: (e["input_tokens"] * PRICES[model][0] + e["cache_read_tokens"] * PRICES[model][0] * 0.1
                + e["cache_write_tokens"] * PRICES[model][0] * 1.25 + e["output_tokens"] * PRICES[model][1]) / 1e6
        for model, e in models.items()
    }
    assert {model: e["cost_usd"] for model, e in models.items()} == pytest.approx(by_hand)
    assert run.cost_usd == pytest.approx(sum(by_hand.values()), abs=1e-6)
    assert run.cost_saved_usd == 0.0 and run.mode == "sync"


def test_a_second_run_reads_every_cached_prefix(fake):
    run_eval(fake.rt)
    second = stored(fake.rt, run_eval(fake.rt).run_id)
    assert second.cache_write_tokens == 0
    assert second.cache_read_tokens == 6 * estimate_tokens(fake.system_prompt) + 4 * estimate_tokens(INSTRUCTIONS)


def test_the_report_shows_cache_reads_and_writes(fake):
    report = run_eval(fake.rt)
    run = stored(fake.rt, report.run_id)
    shown = f"cache {run.cache_read_tokens:,} read / {run.cache_write_tokens:,} written"
    assert shown in format_comparison(report.comparison)
    result = CliRunner().invoke(app, ["eval", "report"])
    assert result.exit_code == 0, result.output
    assert shown in result.output
    assert "batch: saved" not in result.output  # a synchronous run saved nothing


def test_a_run_without_caching_shows_no_cache_line(fake, corpus_dir):
    (corpus_dir / "evalbot.toml").write_text(TOML.replace('system_prompt = "prompts/system.md"\n', ""))
    report = run_eval(fake.rt, case_ids=["2tj5"])  # no system prompt, no rubric: nothing to cache
    assert report.comparison.run.cache_read_tokens == report.comparison.run.cache_write_tokens == 0
    assert " · cache " not in format_comparison(report.comparison)


def test_the_fake_only_caches_marked_prefixes():
    """The simulation these tests rely on: unmarked system prompts never report cache tokens."""
    import anthropic

    with FakeAnthropic() as server:
        client = anthropic.Anthropic(api_key="k", base_url=server.base_url, max_retries=0)
        params = {"model": "claude-haiku-4-5", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
        plain = [client.messages.create(system="x" * 400, **params).usage for _ in range(2)]
        client.close()
    assert all(u.cache_read_input_tokens == u.cache_creation_input_tokens == 0 for u in plain)

"""Eval overhead: 1,000 cases x 3 trials against the fake Anthropic API (100 ms a call) at concurrency 50.

Measures how close `run_eval` comes to the ideal wall time `calls x latency / concurrency` (6.0 s here; target
ratio <= 1.05), and peak memory (peak RSS of this process). The fake API runs in its own process, as the real
API is not inside ours, so its CPU does not compete with the runner for the GIL. Then the same corpus,
exported with `evalbot corpus export --format inspect`, goes through Inspect AI's anthropic provider against
the same fake server, for comparison.

Run: `uv run --group bench python benchmarks/eval_overhead.py [--cases 1000] [--trials 3] [--concurrency 50]
[--latency 0.1] [--skip-inspect]`. Not part of `uv run pytest`.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MODEL = "claude-haiku-4-5"
API_KEY = "sk-ant-bench"


def fake_side(conn, latency: float) -> None:
    """The fake Anthropic process: serve until told to stop."""
    from tests.fakes.anthropic import FakeAnthropic

    with FakeAnthropic(latency=latency, record=False) as fake:
        conn.send(fake.base_url)
        conn.recv()


def make_corpus(root: Path, cases: int) -> None:
    """A corpus of `cases` promoted cases with deterministic expectations, committed to its own git repo."""
    from bot.corpus.casefile import dump_case
    from bot.corpus.schema import Case

    (root / "cases").mkdir(parents=True)
    (root / "prompts").mkdir()
    (root / "prompts" / "system.md").write_text("You are a benchmark assistant. Answer briefly.\n")
    (root / "evalbot.toml").write_text(
        f'[target]\nkind = "anthropic"\nmodel = "{MODEL}"\nsystem_prompt = "prompts/system.md"\nmax_tokens = 256\n\n'
        '[judge]\nmodel = "claude-sonnet-4-6"\n'
    )
    flagged = datetime(2026, 11, 20, tzinfo=timezone.utc)
    for i in range(cases):
        case = Case.model_validate({
            "id": f"bench{i:05d}", "title": f"Benchmark case {i}", "status": "promoted",
            "source": {"kind": "file", "flagged_at": flagged},
            "conversation": [{"role": "user", "content": f"Question {i}: how long is the return window?"},
                             {"role": "assistant", "content": "90 days."}],
            "expect": [{"contains": f"Question {i}"}, {"not_contains": "90 days"}, {"max_chars": 400}],
        })
        (root / "cases" / f"{case.id}.yaml").write_text(dump_case(case))
    env = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "b@x", "GIT_COMMITTER_NAME": "bench",
           "GIT_COMMITTER_EMAIL": "b@x"}
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "benchmark corpus"]):
        subprocess.run(["git", *args], cwd=root, check=True, env=env)


class TimedTarget:
    """Wraps a target to note when the first call starts and the last one ends (the calls phase)."""

    def __init__(self, inner):
        self.inner, self.label = inner, inner.label
        self.first: float | None = None
        self.last = 0.0

    async def generate(self, case):
        if self.first is None:
            self.first = time.perf_counter()
        try:
            return await self.inner.generate(case)
        finally:
            self.last = time.perf_counter()

    async def aclose(self):
        await self.inner.aclose()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def bench_evalbot(corpus: Path, workdir: Path, base_url: str, args) -> dict:
    from bot.core.llm import RetryPolicy
    from bot.core.settings import load_settings
    from bot.evals.config import load_eval_config
    from bot.evals.evaluate import run_eval
    from bot.evals.targets import build_target
    from bot.runtime import open_runtime

    settings = load_settings(corpus_dir=corpus, database_url=f"sqlite:///{workdir / 'bench.db'}",
                             anthropic_api_key=API_KEY, anthropic_base_url=base_url)
    rt = open_runtime(settings)
    config = load_eval_config(corpus)
    started = time.perf_counter()
    loaded = len(rt.corpus.scan("promoted")[0])
    load_s = time.perf_counter() - started
    target = TimedTarget(build_target(config, corpus_root=corpus, settings=settings, policy=RetryPolicy(),
                                      concurrency=args.concurrency))
    rss_before = peak_rss_mb()
    cpu = time.process_time()
    started = time.perf_counter()
    report = run_eval(rt, trials=args.trials, concurrency=args.concurrency, target=target)
    ended = time.perf_counter()
    wall, cpu = ended - started, time.process_time() - cpu
    run = report.comparison.run
    assert loaded == args.cases and run.cases_total == args.cases, (loaded, run.cases_total)
    return {"wall": wall, "cpu": cpu, "calls_phase": target.last - target.first, "load": load_s,
            "before": target.first - started, "after": ended - target.last, "passed": run.passed,
            "errored": run.errored, "rss_before": rss_before, "rss_peak": peak_rss_mb(),
            "tokens": run.input_tokens + run.output_tokens}


def bench_floor(base_url: str, args) -> float:
    """Wall time of the same number of bare httpx2 POSTs at the same concurrency: the transport's own floor."""
    import asyncio

    import httpx2

    async def go() -> float:
        limits = httpx2.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
        async with httpx2.AsyncClient(limits=limits) as client:
            jobs = iter(range(args.cases * args.trials))

            async def worker() -> None:
                for i in jobs:
                    body = {"model": MODEL, "max_tokens": 256, "messages": [{"role": "user", "content": f"Question {i}"}]}
                    response = await client.post(f"{base_url}/v1/messages", json=body, headers={"x-api-key": API_KEY})
                    response.json()

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(args.concurrency)))
            return time.perf_counter() - started

    return asyncio.run(go())


def bench_inspect(corpus: Path, workdir: Path, base_url: str, args) -> dict:
    """The exported corpus through Inspect AI's anthropic provider, pointed at the fake with model_base_url."""
    from inspect_ai import Task
    from inspect_ai import eval as inspect_eval
    from inspect_ai.dataset import json_dataset
    from inspect_ai.scorer import includes
    from inspect_ai.solver import generate

    from bot.corpus.files import Corpus
    from bot.evals.render.export import export_cases

    dataset = workdir / "inspect.jsonl"
    dataset.write_text(export_cases(Corpus(corpus).cases("promoted"), "inspect"))
    os.environ["ANTHROPIC_API_KEY"] = API_KEY
    task = Task(dataset=json_dataset(str(dataset)), solver=generate(), scorer=includes(), epochs=args.trials)
    cpu = time.process_time()
    started = time.perf_counter()
    [log] = inspect_eval(task, model=f"anthropic/{MODEL}", model_base_url=base_url, max_connections=args.concurrency,
                         max_samples=args.concurrency, log_dir=str(workdir / "inspect-logs"), display="none",
                         max_tokens=256)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    samples = len(log.samples or [])
    return {"wall": wall, "cpu": cpu, "status": log.status, "samples": samples,
            "error": str(log.error.message)[:300] if log.error else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--skip-inspect", action="store_true")
    args = parser.parse_args()

    calls = args.cases * args.trials
    ideal = calls * args.latency / args.concurrency
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    server = ctx.Process(target=fake_side, args=(child, args.latency), daemon=True)
    server.start()
    base_url = parent.recv()
    try:
        with tempfile.TemporaryDirectory(prefix="evalbot-bench-") as tmp:
            workdir = Path(tmp)
            corpus = workdir / "corpus"
            make_corpus(corpus, args.cases)
            print(f"{args.cases} cases x {args.trials} trials = {calls} calls, {args.latency * 1000:.0f} ms each, "
                  f"concurrency {args.concurrency}: ideal {ideal:.2f} s")
            ours = bench_evalbot(corpus, workdir, base_url, args)
            print(f"evalbot run_eval   wall {ours['wall']:.2f} s   ratio {ours['wall'] / ideal:.3f} "
                  f"(end to end: load {args.cases} case files, calls, grading, database, compare; CPU {ours['cpu']:.1f} s)")
            print(f"  calls phase      wall {ours['calls_phase']:.2f} s   ratio {ours['calls_phase'] / ideal:.3f} "
                  f"(first call start to last call end)")
            print(f"  before calls     {ours['before']:.2f} s (config, loading the case files, the run record; "
                  f"loading alone: {ours['load']:.2f} s)")
            print(f"  after calls      {ours['after']:.2f} s (recording {calls} trials, comparing with the baseline)")
            print(f"  results          {ours['passed']} passed, {ours['errored']} errors, {ours['tokens']:,} tokens")
            print(f"  peak memory      {ours['rss_peak']:.0f} MB RSS (before the run: {ours['rss_before']:.0f} MB)")
            floor = bench_floor(base_url, args)
            print(f"bare httpx2 POSTs  wall {floor:.2f} s   ratio {floor / ideal:.3f} (same calls, no SDK, no evalbot: "
                  "what this machine's asyncio + HTTP stack costs on its own)")
            if args.skip_inspect:
                return
            try:
                theirs = bench_inspect(corpus, workdir, base_url, args)
            except ImportError as exc:
                print(f"inspect-ai         not run: {exc} (install it with `uv sync --group bench`)")
                return
            print(f"inspect-ai eval    wall {theirs['wall']:.2f} s   ratio {theirs['wall'] / ideal:.3f} "
                  f"(status {theirs['status']}, {theirs['samples']} samples x epochs; CPU {theirs['cpu']:.1f} s)")
            if theirs["error"]:
                print(f"  inspect error    {theirs['error']}")
    finally:
        parent.send("stop")
        server.join(timeout=10)


if __name__ == "__main__":
    main()

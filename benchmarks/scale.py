"""Scale: every corpus command, a full eval run and the near-duplicate check on a corpus of N cases (default 20,000).

Builds a committed corpus of N promoted cases (one short conversation and one `contains` expectation each), then
times each command as its own process (wall time and peak RSS of the child) against the issue-19 targets:

    corpus list            <= 0.3 s (from the index)
    corpus validate        <= 3 s (first, and when nothing changed: verdicts kept in the git folder)
    corpus reindex         <= 3 s full; <= 0.3 s when nothing changed
    corpus show ID         <= 0.3 s
    eval run               <= 8 s and <= 200 MB (fake model at 10 ms a call, concurrency 50; ideal N x 10 ms / 50)
    near-duplicate check   <= 50 ms per capture, cache ready within 2 s of a worker's start

Run: `uv run python benchmarks/scale.py [--cases 20000] [--skip-eval]`. Not part of `uv run pytest`.
"""

from __future__ import annotations

import argparse
import compileall
import multiprocessing as mp
import os
import random
import subprocess
import sys
import sysconfig
import tempfile
import time
from datetime import datetime, timedelta, timezone
from multiprocessing.connection import Connection
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WORDS = ("refund order tent return window policy shipping invoice account password reset delivery warranty "
         "size colour exchange store hours discount code coupon stock backorder tracking label damaged item").split()


def fake_side(conn: Connection, latency: float) -> None:
    """The fake Anthropic process: serve until told to stop."""
    from tests.fakes.anthropic import FakeAnthropic

    with FakeAnthropic(latency=latency, record=False) as fake:
        conn.send(fake.base_url)
        conn.recv()


def git(folder: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=bench", "-c", "user.email=bench@evalbot.invalid", *args],
                   cwd=folder, check=True, capture_output=True)


def sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


def build_corpus(folder: Path, cases: int, *, seed: int = 7) -> list[str]:
    """Write `cases` promoted case files and commit them; returns their ids."""
    from bot.corpus.casefile import dump_case
    from bot.corpus.schema import Case

    rng = random.Random(seed)
    (folder / "cases").mkdir(parents=True)
    (folder / "candidates").mkdir()
    (folder / "prompts").mkdir()
    (folder / "prompts" / "system.md").write_text("You are a helpful support assistant.\n", encoding="utf-8")
    (folder / "evalbot.toml").write_text(
        '[target]\nkind = "anthropic"\nmodel = "claude-haiku-4-5"\nsystem_prompt = "prompts/system.md"\n'
        'max_tokens = 64\n\n[judge]\nmodel = "claude-sonnet-4-6"\n\n[run]\ntrials = 1\nconcurrency = 50\n',
        encoding="utf-8")
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
    ids: list[str] = []
    seen: set[str] = set()
    while len(ids) < cases:
        case_id = "".join(rng.choice(alphabet) for _ in range(8))
        if case_id in seen:
            continue
        seen.add(case_id)
        n = len(ids)
        flagged = start + timedelta(minutes=n)
        case = Case.model_validate({
            "id": case_id, "title": sentence(rng, 5), "status": "promoted", "tags": [rng.choice(WORDS)],
            "source": {"kind": "slack", "channel": "C0SCALE", "ts": f"{1767225600 + n}.000100",
                       "flagged_by": ["U0FLAGGER"], "flagged_at": flagged},
            "conversation": [{"role": "user", "content": sentence(rng, 14)},
                             {"role": "assistant", "content": sentence(rng, 20)}],
            "expect": [{"contains": "ok"}],
            "promoted_by": "U0LEAD", "promoted_at": flagged + timedelta(hours=1),
        })
        (folder / "cases" / f"{case_id}.yaml").write_text(dump_case(case), encoding="utf-8")
        ids.append(case_id)
    git(folder, "init", "-q")
    git(folder, "add", "-A")
    git(folder, "commit", "-qm", f"{cases} cases")
    return ids


def timed(argv: list[str], env: dict[str, str], cwd: str, ok: tuple[int, ...] = (0,)) -> tuple[float, float, float]:
    """(wall seconds, peak RSS MB, CPU seconds) of one child process; the CPU time counts its worker processes
    too, and says what a busy machine's wall time cannot."""
    started = time.perf_counter()
    child = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert child.stderr is not None
    err = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode not in ok:
        raise SystemExit(f"`{' '.join(argv[1:])}` exited {child.returncode}: {err.decode(errors='replace').strip()[-800:]}")
    return elapsed, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def near_duplicate_figures(corpus_dir: Path, ids: list[str], samples: int = 20, *, kept: bool = True) -> tuple[float, float]:
    """(seconds to warm a fresh cache, median seconds per near-duplicate check) in a fresh process, the way a
    capture worker starts: from the texts the start-up index rebuild kept (`kept`), or from the files alone."""
    if not kept:
        for path in (corpus_dir / ".git" / "evalbot").glob("similarity-*.json"):
            path.unlink()
    code = f"""
import statistics, sys, threading, time
sys.path.insert(0, {str(ROOT)!r})
from bot.corpus.files import Corpus
from bot.corpus import similarity
corpus = Corpus({str(corpus_dir)!r})
threading.Thread(target=threading.Event().wait, daemon=True).start()  # a worker has threads: bulk spawns
started = time.perf_counter()
similarity.warm(corpus)
warm = time.perf_counter() - started
ids = {ids[:samples]!r}
times = []
for case_id in ids:
    case = corpus.load(case_id, "promoted")
    started = time.perf_counter()
    similarity.near_duplicates(case, corpus)
    times.append(time.perf_counter() - started)
print(warm, statistics.median(times))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    warm, per_check = done.stdout.split()
    return float(warm), float(per_check)


SDK_FLOOR = """
import asyncio, sys, time
import anthropic
from anthropic import DefaultAioHttpClient

async def main(base_url, calls, concurrency):
    client = anthropic.AsyncAnthropic(base_url=base_url, api_key="sk-ant-bench", max_retries=0,
                                      http_client=DefaultAioHttpClient())
    gate = asyncio.Semaphore(concurrency)

    async def one(n):
        async with gate:
            await client.messages.create(model="claude-haiku-4-5", max_tokens=64, system="You are a support bot.",
                                         messages=[{"role": "user", "content": f"Where is order {n}?"}])

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one(n) for n in range(calls)))
    print(time.perf_counter() - started, time.process_time() - cpu)
    await client.close()

asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
"""


def sdk_floor(base_url: str, calls: int, concurrency: int = 50) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of `calls` bare Anthropic SDK calls against the same fake, nothing else: what
    any run over the Messages API from one Python process costs at least on this machine."""
    done = subprocess.run([sys.executable, "-c", SDK_FLOOR, base_url, str(calls), str(concurrency)],
                          capture_output=True, text=True, check=True)
    wall, cpu = done.stdout.split()
    return float(wall), float(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--latency", type=float, default=0.01)
    parser.add_argument("--skip-eval", action="store_true")
    args = parser.parse_args()

    for folder in (ROOT / "bot", Path(sysconfig.get_paths()["purelib"])):
        compileall.compile_dir(folder, quiet=1, workers=0)
    evalbot = str(Path(sys.executable).parent / "evalbot")
    rows: list[tuple[str, float, float, float, str]] = []

    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        started = time.perf_counter()
        ids = build_corpus(corpus, args.cases)
        print(f"built and committed {args.cases} cases in {time.perf_counter() - started:.1f} s")
        parent, child = mp.Pipe()
        fake = mp.Process(target=fake_side, args=(child, args.latency), daemon=True)
        fake.start()
        base_url = parent.recv()
        env = {**os.environ, "EVALBOT_CORPUS_DIR": str(corpus), "EVALBOT_DATABASE_URL": f"sqlite:///{tmp}/scale.db",
               "ANTHROPIC_API_KEY": "sk-ant-bench", "ANTHROPIC_BASE_URL": base_url, "EVALBOT_LOG_LEVEL": "WARNING"}

        def run(name: str, argv: list[str], target: str, ok: tuple[int, ...] = (0,), repeat: int = 1) -> None:
            """The median of `repeat` runs (the quick commands run 5 times: one run is at the mercy of the load)."""
            runs = sorted(timed([evalbot, *argv], env, tmp, ok) for _ in range(repeat))
            seconds, rss, cpu = runs[len(runs) // 2]
            rows.append((name + (f" (median of {repeat})" if repeat > 1 else ""), seconds, rss, cpu, target))

        run("corpus reindex (first: a full rebuild)", ["corpus", "reindex"], "<= 3 s")
        run("corpus reindex --full", ["corpus", "reindex", "--full"], "<= 3 s")
        run("corpus reindex (nothing changed)", ["corpus", "reindex"], "<= 0.3 s", repeat=5)
        run("corpus list", ["corpus", "list"], "<= 0.3 s", repeat=5)
        run("corpus show ID", ["corpus", "show", ids[len(ids) // 2]], "<= 0.3 s", repeat=5)
        run("corpus validate (first: every file)", ["corpus", "validate"], "<= 3 s")
        run("corpus validate (nothing changed)", ["corpus", "validate"], "<= 3 s", repeat=5)
        if not args.skip_eval:
            ideal = args.cases * args.latency / 50
            run(f"eval run (ideal {ideal:.1f} s)", ["eval", "run", "--concurrency", "50"], "<= 8 s, <= 200 MB", ok=(0, 1))
            floor = sdk_floor(base_url, args.cases)
        warm, per_check = near_duplicate_figures(corpus, ids)
        cold_warm, _ = near_duplicate_figures(corpus, ids, samples=1, kept=False)
        parent.send("stop")
        fake.join(5)

    print(f"scale: {args.cases} cases, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    for name, seconds, rss, cpu, target in rows:
        print(f"  {name:<48} {seconds:7.2f} s  {rss:6.0f} MB  cpu {cpu:6.2f} s   target {target}")
    if not args.skip_eval:
        print(f"  {'floor: the Anthropic SDK alone, same calls':<48} {floor[0]:7.2f} s             cpu {floor[1]:6.2f} s "
              f"({floor[1] / args.cases * 1000:.2f} ms a call, one process)")
    print(f"  {'near-duplicate warm, first start':<48} {warm:7.2f} s             target <= 2 s (texts kept by the rebuild)")
    print(f"  {'near-duplicate warm, no texts kept':<48} {cold_warm:7.2f} s             (every file parsed, spawned workers)")
    print(f"  {'near-duplicate check per capture':<48} {per_check * 1000:7.1f} ms            target <= 50 ms")


if __name__ == "__main__":
    main()

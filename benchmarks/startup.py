"""Start-up: how long the CLI takes before it answers, median of 5 runs each.

Measures, as separate processes with bytecode compiled (this script compiles `bot/` and the virtualenv first,
since `PYTHONDONTWRITEBYTECODE` may be set): `evalbot --help`, `evalbot corpus list` and `evalbot corpus validate`
on a copy of the example corpus, and `evalbot eval run --case ID` of one case against the fake Anthropic API,
timed from process start to the fake's first model request (and to exit), and the same run with an `http` target
(a local endpoint: evalbot's own start-up, without the Anthropic SDK). Targets: `--help` and `corpus list`
<= 0.5 s, `eval run` reaches its first model request within 1.0 s.

Run: `uv run python benchmarks/startup.py [--runs 5]`. Not part of `uv run pytest`.
"""

from __future__ import annotations

import argparse
import compileall
import multiprocessing as mp
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CASE = "1breqg51"  # an example case with no rubric: its run builds no judge, so only the target is called


def fake_side(conn: Connection) -> None:
    """The fake Anthropic process, and a plain HTTP endpoint for an `http` target: answer until told to stop, and
    report when the first request came ("first": the model's, "first-http": the endpoint's)."""
    from tests.fakes.anthropic import FakeAnthropic
    from tests.fakes.endpoint import FakeEndpoint

    with FakeAnthropic(record=False) as fake, FakeEndpoint({"reply": "A refund is possible within 30 days."}) as endpoint:
        conn.send((fake.base_url, f"{endpoint.url}/reply"))
        while (asked := conn.recv()) in ("first", "first-http"):
            if asked == "first":
                conn.send(fake.first_request_at)
                fake.first_request_at = None
            else:
                conn.send(endpoint.first_request_at)
                endpoint.first_request_at = None


def git(folder: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=bench", "-c", "user.email=bench@evalbot.invalid", *args],
                   cwd=folder, check=True, capture_output=True)


def median_of(runs: int, once: Callable[[], float]) -> tuple[float, list[float]]:
    once()  # warm: the first run migrates the database and fills the page cache
    times = [once() for _ in range(runs)]
    return statistics.median(times), times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    for folder in (ROOT / "bot", Path(sysconfig.get_paths()["purelib"])):
        compileall.compile_dir(folder, quiet=1, workers=0)
    evalbot = Path(sys.executable).parent / "evalbot"

    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        shutil.copytree(ROOT / "corpus", corpus)
        git(corpus, "init", "-q")
        git(corpus, "add", "-A")
        git(corpus, "commit", "-qm", "example corpus")
        parent, child = mp.Pipe()
        fake = mp.Process(target=fake_side, args=(child,), daemon=True)
        fake.start()
        base_url, endpoint = parent.recv()
        # The same corpus with an `http` target: what evalbot's own start-up costs, without the Anthropic SDK.
        http_corpus = Path(tmp) / "http-corpus"
        shutil.copytree(corpus, http_corpus)
        toml = (http_corpus / "evalbot.toml").read_text(encoding="utf-8")
        head, _, rest = toml.partition("[judge]")
        (http_corpus / "evalbot.toml").write_text(
            f'[target]\nkind = "http"\nurl = "{endpoint}"\n\n[judge]{rest}', encoding="utf-8")
        git(http_corpus, "commit", "-qam", "an http target")
        env = {**os.environ, "EVALBOT_CORPUS_DIR": str(corpus), "EVALBOT_DATABASE_URL": f"sqlite:///{tmp}/bench.db",
               "ANTHROPIC_API_KEY": "sk-ant-bench", "ANTHROPIC_BASE_URL": base_url, "EVALBOT_LOG_LEVEL": "WARNING"}

        def command(*argv: str, ok: tuple[int, ...] = (0,), extra: dict[str, str] | None = None) -> Callable[[], float]:
            def once() -> float:
                started = time.perf_counter()
                done = subprocess.run([str(evalbot), *argv], env={**env, **(extra or {})}, cwd=tmp,
                                      capture_output=True, text=True)
                elapsed = time.perf_counter() - started
                if done.returncode not in ok:
                    raise SystemExit(f"`evalbot {' '.join(argv)}` exited {done.returncode}: {done.stderr.strip()}")
                return elapsed

            return once

        def eval_run(asked: str, into: list[float], extra: dict[str, str] | None = None) -> Callable[[], float]:
            """`eval run` of CASE, noting in `into` when the fake (`asked`: "first" or "first-http") was first called."""
            def once() -> float:
                started = time.time()
                elapsed = command("eval", "run", "--case", CASE, ok=(0, 1), extra=extra)()
                parent.send(asked)
                first = parent.recv()
                if first is None:
                    raise SystemExit(f"`evalbot eval run` finished without calling the target ({asked})")
                into.append(first - started)
                return elapsed

            return once

        first_request: list[float] = []
        first_http: list[float] = []
        eval_once = eval_run("first", first_request)
        eval_http_once = eval_run("first-http", first_http, {"EVALBOT_CORPUS_DIR": str(http_corpus),
                                                             "EVALBOT_DATABASE_URL": f"sqlite:///{tmp}/bench-http.db"})

        def python(code: str) -> Callable[[], float]:
            def once() -> float:
                started = time.perf_counter()
                subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp, check=True)
                return time.perf_counter() - started

            return once

        results = {
            "floor: python -c pass": median_of(args.runs, python("pass")),
            "floor: python -c 'import anthropic'": median_of(args.runs, python("import anthropic")),
            "floor: python -c 'import sqlalchemy'": median_of(args.runs, python("import sqlalchemy")),
            "floor: python -c 'import sqlmodel'": median_of(args.runs, python("import sqlmodel")),
            "evalbot --help": median_of(args.runs, command("--help")),
            "evalbot corpus list": median_of(args.runs, command("corpus", "list")),
            "evalbot corpus validate": median_of(args.runs, command("corpus", "validate")),
            f"evalbot eval run --case {CASE} (to exit)": median_of(args.runs, eval_once),
            "evalbot eval run, http target (to exit)": median_of(args.runs, eval_http_once),
        }
        first_request, first_http = first_request[1:], first_http[1:]  # drop the warm-up, like median_of
        parent.send("stop")
        fake.join(5)

    print(f"start-up, median of {args.runs} runs (bytecode compiled, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f})")
    for name, (median, times) in results.items():
        print(f"  {name:<48} {median:6.3f} s   [{', '.join(f'{t:.2f}' for t in times)}]")
    print(f"  {'evalbot eval run: start to first model request':<48} {statistics.median(first_request):6.3f} s   "
          f"[{', '.join(f'{t:.2f}' for t in first_request)}]")
    print(f"  {'evalbot eval run, http target: to first request':<48} {statistics.median(first_http):6.3f} s   "
          f"[{', '.join(f'{t:.2f}' for t in first_http)}]")


if __name__ == "__main__":
    main()

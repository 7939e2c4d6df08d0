"""Interop: do the exports run as exported, and do promptfoo and Inspect AI give evalbot's verdicts?

Exports the example corpus plus edge cases (regex flags and anchors, ```json fences, emoji lengths, Python-only
whitespace) with `evalbot corpus export`, then, against the fake Anthropic API (the model answers each case with a
canned reply; the judge always passes):

- promptfoo (`npx promptfoo@0.121 eval -c <config>`, as exported), when npx can run it; else each exported
  `javascript` assertion is evaluated with `node` (when present) on the canned reply;
- Inspect AI (`inspect_ai.eval` on the exported task file, the `bench` group), when installed; else the task
  file's embedded graders are run in Python on the canned reply;

and prints "N/M verdicts agree with evalbot" for each (one verdict per exported case: all its deterministic
expectations pass, as `bot.evals.graders` says), the cases the export refused with their reasons, and whether every
request carried the system prompt and max_tokens of evalbot.toml. Exits 1 when a verdict disagrees.

Run: `uv run --group bench python benchmarks/interop.py [--skip-promptfoo] [--skip-inspect]`. Not part of pytest.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

PROMPTFOO = "promptfoo@0.121"
JUDGE_REPLY = '{"pass": true, "score": 1, "reason": "fake judge"}\nGRADE: C'

# (id, expectation, canned reply): one case each; the reply is what the fake model answers.
EDGE_CASES: list[tuple[str, dict, str]] = [
    ("edgeanc1", {"regex": r"\Arefund\Z"}, "refund\n"),                      # \Z: no final newline allowed
    ("edgeanc2", {"regex": r"^Yes$"}, "Yes\n"),                              # $: before a final newline
    ("edgemul1", {"regex": r"(?m)^Total: \d+$"}, "Items: 2\r\nTotal: ١٢\nThanks"),  # \d Unicode, \r not a line end
    ("edgeverb", {"regex": r"(?x) refund \s+ policy  # words apart"}, "see the refund  policy"),
    ("edgescoi", {"regex": r"(?i:refund) policy"}, "REFUND POLICY"),           # scoped flag: POLICY must be lower
    ("edgeglbi", {"not_regex": r"(?i)card number"}, "Please send your Card Number."),
    ("edgedot1", {"regex": r"total.due"}, "total\rdue"),                     # . matches \r in Python
    ("edgeword", {"regex": r"\bcafé\b"}, "un café noir"),                     # Unicode word boundary
    ("edgename", {"regex": r"(?P<y>\d{4})-(?P=y)"}, "2026-2026"),           # named group and back-reference
    ("edgefenc", {"json_schema": {"type": "object", "required": ["ok"]}}, '```json\n{"ok": true}\n```'),
    ("edgepatt", {"json_schema": {"type": "object", "properties": {"n": {"type": "string", "pattern": r"^\d+$"}}}},
     '{"n": "١٢٣"}'),
    ("edgeemoj", {"max_chars": 5}, "😀😀😀😀😀"),                           # 5 code points, 10 UTF-16 units
    ("edgeequ1", {"equals": "YES"}, "YES\x1c"),                              # Python strips \x1c, JS trim() does not
    ("edgecont", {"not_contains": "{{ order }}"}, "Your order {{ order }} shipped"),
    ("edgeposs", {"regex": r"a++b"}, "aab"),                                 # refused: possessive quantifier
    ("edgeform", {"json_schema": {"type": "string", "format": "email"}}, '"not-an-email"'),  # refused: format
]


def build_corpus(root: Path) -> dict[str, str]:
    """The example corpus plus the edge cases in `root`; returns case id -> canned reply."""
    from bot.corpus.casefile import dump_case
    from bot.corpus.files import Corpus
    from bot.corpus.schema import Case

    shutil.copytree(REPO / "corpus", root)
    replies = {}
    for case in Corpus(root).cases("promoted"):
        # The example's own flagged reply: what the system said when someone flagged it.
        replies[case.id] = case.conversation[case.flagged_index].content if case.flagged_index is not None else ""
    flagged = datetime(2026, 11, 20, tzinfo=timezone.utc)
    for case_id, expectation, reply in EDGE_CASES:
        case = Case.model_validate({
            "id": case_id, "title": f"interop edge case {case_id}", "status": "promoted",
            "source": {"kind": "file", "flagged_at": flagged},
            "conversation": [{"role": "user", "content": f"interop edge case {case_id}"},
                             {"role": "assistant", "content": reply}],
            "expect": [expectation],
        })
        (root / "cases" / f"{case_id}.yaml").write_text(dump_case(case), encoding="utf-8")
        replies[case_id] = reply
    return replies


def evalbot_verdicts(root: Path, replies: dict[str, str]) -> dict[str, bool]:
    """evalbot's own verdict per case on its canned reply (deterministic expectations only)."""
    from bot.corpus.files import Corpus
    from bot.evals.graders import grade_deterministic, is_deterministic

    return {case.id: all(grade_deterministic(e, replies[case.id]).passed for e in case.expect if is_deterministic(e))
            for case in Corpus(root).cases("promoted")}


def export(root: Path, fmt: str, out: Path) -> list[tuple[str, str]]:
    """Run `evalbot corpus export`; the (case id, reason) of each refused case."""
    env = {**os.environ, "EVALBOT_CORPUS_DIR": str(root)}
    done = subprocess.run([sys.executable, "-m", "bot", "corpus", "export", "--format", fmt, "--out", str(out)],
                          env=env, capture_output=True, text=True, cwd=REPO, check=True)
    return re.findall(r"^refused (\w+): (.*)$", done.stderr, flags=re.M)


def responder_for(replies_by_prompt: dict[str, str], seen: list[dict]):
    from tests.fakes.anthropic import flatten_text

    def respond(request: dict) -> str:
        seen.append(request)
        last = flatten_text(request["messages"][-1].get("content", "")) if request.get("messages") else ""
        return replies_by_prompt.get(last, JUDGE_REPLY)

    return respond


def report(tool: str, verdicts: dict[str, bool], expected: dict[str, bool], how: str) -> bool:
    agree = [cid for cid in verdicts if verdicts[cid] == expected[cid]]
    print(f"{tool}: {len(agree)}/{len(verdicts)} verdicts agree with evalbot ({how})")
    for cid in sorted(set(verdicts) - set(agree)):
        print(f"  DISAGREE {cid}: {tool} says {'pass' if verdicts[cid] else 'fail'}, evalbot says "
              f"{'pass' if expected[cid] else 'fail'}")
    return len(agree) == len(verdicts)


def deterministic_asserts(test: dict) -> list[dict]:
    return [a for a in test["assert"] if a["type"] != "llm-rubric"]


def run_promptfoo(config: Path, work: Path, env: dict[str, str]) -> dict[str, bool] | str:
    """Verdicts from a real promptfoo eval of the config, or why it could not run."""
    npx = shutil.which("npx")
    if npx is None:
        return "npx is not installed"
    results = work / "promptfoo-results.json"
    pf_env = {**env, "PROMPTFOO_DISABLE_TELEMETRY": "1", "PROMPTFOO_DISABLE_UPDATE": "1",
              "PROMPTFOO_CONFIG_DIR": str(work / "promptfoo-home"), "PROMPTFOO_DISABLE_SHARING": "1"}
    try:
        done = subprocess.run([npx, "-y", PROMPTFOO, "eval", "-c", str(config), "-o", str(results), "--no-cache",
                               "--no-table", "--no-progress-bar", "-j", "4"], env=pf_env, capture_output=True,
                              text=True, timeout=600, cwd=work)
    except subprocess.TimeoutExpired:
        return "promptfoo did not finish in 600 s"
    if not results.exists():
        return f"promptfoo exited {done.returncode} without results: {(done.stderr or done.stdout).strip()[-400:]}"
    import yaml

    tests = {t["vars"]["case_id"]: t for t in yaml.safe_load(config.read_text(encoding="utf-8"))["tests"]}
    verdicts = {}
    for row in json.loads(results.read_text(encoding="utf-8"))["results"]["results"]:
        case_id = row["testCase"]["vars"]["case_id"]
        if row.get("error") and not (row.get("gradingResult") or {}).get("componentResults"):
            raise RuntimeError(f"promptfoo could not run {case_id}: {row['error']}")
        components = row["gradingResult"]["componentResults"]
        mine = [c for c in components if (c.get("assertion") or {}).get("type") != "llm-rubric"]
        assert len(mine) == len(deterministic_asserts(tests[case_id])), (case_id, components)
        verdicts[case_id] = all(c["pass"] for c in mine)
    return verdicts


def run_node(config: Path, replies: dict[str, str], schemas: dict[str, list]) -> dict[str, bool] | str:
    """Each exported assertion evaluated by node on the canned reply, as promptfoo would (no Ajv here: is-json
    parses the transformed reply and checks the case's own schema with jsonschema's Draft 7, Ajv's draft)."""
    node = shutil.which("node")
    if node is None:
        return "node is not installed"
    import jsonschema
    import yaml

    tests = yaml.safe_load(config.read_text(encoding="utf-8"))["tests"]
    jobs = []
    for test in tests:
        for index, a in enumerate(deterministic_asserts(test)):
            code = a["transform"] if a["type"] == "is-json" else a["value"]
            jobs.append({"case": test["vars"]["case_id"], "index": index, "type": a["type"], "code": code,
                         "output": replies[test["vars"]["case_id"]]})
    script = ("const jobs = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
              "console.log(JSON.stringify(jobs.map(j => { const f = new Function('output', 'return (' + j.code + ');');"
              " return f(j.output); })));")
    done = subprocess.run([node, "-e", script], input=json.dumps(jobs), capture_output=True, text=True, check=True)
    values = json.loads(done.stdout)
    verdicts: dict[str, bool] = {t["vars"]["case_id"]: True for t in tests}
    for job, value in zip(jobs, values):
        if job["type"] == "is-json":
            try:
                data = json.loads(value)
                ok = jsonschema.Draft7Validator(schemas[job["case"]].pop(0)).is_valid(data)
            except json.JSONDecodeError:
                ok = False
        else:
            ok = bool(value)
        verdicts[job["case"]] = verdicts[job["case"]] and ok
    return verdicts


def run_inspect(task_file: Path, work: Path, base_url: str) -> dict[str, bool] | str:
    """Verdicts from Inspect AI running the exported task file, or why it could not run."""
    try:
        from inspect_ai import eval as inspect_eval
    except ImportError:
        return "inspect-ai is not installed (`uv sync --group bench`)"
    here = Path.cwd()
    # The task names its model and judge itself (evalbot.toml's), as exported: only the API's address changes.
    os.environ.update({"ANTHROPIC_API_KEY": "sk-ant-interop", "ANTHROPIC_BASE_URL": base_url})
    os.chdir(task_file.parent)  # Inspect resolves a task file relative to the working directory
    try:
        [log] = inspect_eval(task_file.name, log_dir=str(work / "inspect-logs"), display="none", max_connections=4)
    finally:
        os.chdir(here)
    if log.status != "success":
        return f"Inspect AI run {log.status}: {str(log.error.message if log.error else '')[:300]}"
    return {str(s.id): s.scores["evalbot_expectations"].value == "C" for s in log.samples or []}


def run_embedded_graders(task_file: Path, dataset: Path, replies: dict[str, str]) -> dict[str, bool]:
    """The task file's embedded graders (the part before the Inspect AI imports) on the canned replies."""
    from bot.evals.render.inspect_task import TASK_MARK

    namespace: dict = {"__file__": str(task_file)}
    exec(compile(task_file.read_text(encoding="utf-8").split(TASK_MARK)[0], str(task_file), "exec"), namespace)
    verdicts = {}
    for line in dataset.read_text(encoding="utf-8").splitlines():
        sample = json.loads(line)
        checks = [e for e in sample["metadata"]["expect"] if next(iter(e)) in namespace["DETERMINISTIC"]]
        verdicts[sample["id"]] = all(namespace["grade"](e, replies[sample["id"]])[0] for e in checks)
    return verdicts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skip-promptfoo", action="store_true", help="do not run promptfoo (node checks only)")
    parser.add_argument("--skip-inspect", action="store_true", help="do not run Inspect AI (embedded graders only)")
    args = parser.parse_args()

    from bot.corpus.files import Corpus
    from bot.corpus.schema import expectation_kind
    from bot.evals.targets import replay_messages
    from tests.fakes.anthropic import FakeAnthropic, flatten_text

    ok = True
    with tempfile.TemporaryDirectory(prefix="evalbot-interop-") as tmp:
        work = Path(tmp)
        root = work / "corpus"
        replies = build_corpus(root)
        expected = evalbot_verdicts(root, replies)
        cases = Corpus(root).cases("promoted")
        by_prompt = {flatten_text(replay_messages(c)[-1]["content"]): replies[c.id] for c in cases}
        assert len(by_prompt) == len(cases), "every case needs its own last user message"
        system = (root / "prompts" / "system.md").read_text(encoding="utf-8")
        print(f"{len(cases)} cases: {len(cases) - len(EDGE_CASES)} from the example corpus, {len(EDGE_CASES)} edge cases")

        seen: list[dict] = []
        with FakeAnthropic(responder=responder_for(by_prompt, seen)) as fake:
            env = {**os.environ, "ANTHROPIC_API_KEY": "sk-ant-interop", "ANTHROPIC_BASE_URL": fake.base_url}
            for fmt, out in (("promptfoo", work / "promptfoo" / "promptfooconfig.yaml"), ("inspect", work / "inspect" / "cases.inspect")):
                refused = export(root, fmt, out)
                for case_id, reason in refused:
                    print(f"{fmt} export refused {case_id}: {reason}")
                subset = {cid: v for cid, v in expected.items() if cid not in dict(refused)}
                if fmt == "promptfoo":
                    verdicts = None if args.skip_promptfoo else run_promptfoo(out, work, env)
                    if isinstance(verdicts, dict):
                        ok &= report("promptfoo", verdicts, subset, f"npx {PROMPTFOO} eval, as exported")
                    else:
                        print(f"promptfoo: not run ({verdicts or 'skipped'}); checking the exported assertions with node")
                        schemas = {c.id: [e.json_schema for e in c.expect if expectation_kind(e) == "json_schema"]
                                   for c in cases}
                        checked = run_node(out, replies, schemas)
                        if isinstance(checked, dict):
                            ok &= report("promptfoo assertions", checked, subset, "node, is-json schemas with Draft 7")
                        else:
                            print(f"promptfoo assertions: not checked ({checked})")
                else:
                    task, dataset = out.parent / "cases_task.py", out.parent / "cases.jsonl"
                    verdicts = None if args.skip_inspect else run_inspect(task, work, fake.base_url)
                    if isinstance(verdicts, dict):
                        ok &= report("inspect", verdicts, subset, "inspect_ai.eval of the exported task file")
                    else:
                        print(f"inspect: not run ({verdicts or 'skipped'}); running the task file's embedded graders")
                        ok &= report("inspect graders", run_embedded_graders(task, dataset, replies), subset,
                                     "the exported task file's graders in Python")
        model_requests = [r for r in seen if flatten_text(r["messages"][-1].get("content", "")) in by_prompt]
        if model_requests:
            with_system = sum(system.strip() in flatten_text(r.get("system", "")) for r in model_requests)
            with_tokens = sum(r.get("max_tokens") == 1024 for r in model_requests)
            print(f"model requests: {len(model_requests)}; system prompt of evalbot.toml on {with_system}, "
                  f"max_tokens 1024 on {with_tokens}")
            ok &= with_system == with_tokens == len(model_requests)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

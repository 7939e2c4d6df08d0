"""`evalbot eval run|report` and `evalbot corpus export`: exit codes 0/1/2, the report, JUnit XML, export formats."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
import yaml
from typer.testing import CliRunner

from bot.cli import app
from bot.corpus.schema import Case
from tests.fakes.anthropic import FakeAnthropic
from tests.helpers.evals import GOOD

pytestmark = pytest.mark.migrated_db  # the database starts migrated: each test's first use of it migrates in-process

runner = CliRunner()

TARGET = """
import json, os, pathlib

def reply(messages):
    table = json.loads(pathlib.Path(os.environ["EVAL_REPLIES"]).read_text())
    return table[messages[-1]["content"]]
"""

TOML = """
[target]
kind = "python"
callable = "evalbot_cli_target:reply"

[judge]
model = "claude-sonnet-4-6"

[run]
retries = 1
"""


@pytest.fixture
def corpus(db_url, corpus_dir, tmp_path, monkeypatch):
    """The example corpus with a python target whose replies come from a JSON file, and a fake judge."""
    (corpus_dir / "evalbot.toml").write_text(TOML)
    (corpus_dir / "evalbot_cli_target.py").write_text(TARGET)
    monkeypatch.setenv("EVAL_REPLIES", str(tmp_path / "replies.json"))
    with FakeAnthropic() as fake:  # the judge: its default answer to the forced tool is a `pass` verdict
        for name, value in fake.env().items():
            monkeypatch.setenv(name, value)
        yield corpus_dir


def set_replies(corpus_dir, tmp_path, **changes):
    from bot.corpus.files import Corpus

    by_id = {**GOOD, **changes}
    table = {case.replay_turns[-1].content: by_id[case.id] for case in Corpus(corpus_dir).cases("promoted")}
    (tmp_path / "replies.json").write_text(json.dumps(table))


def run(*args: str):
    return runner.invoke(app, list(args))


def test_a_run_without_regressions_exits_0_and_writes_junit(corpus, tmp_path):
    set_replies(corpus, tmp_path, tne841s8="You have 90 days.")
    junit = tmp_path / "out" / "junit.xml"
    result = run("eval", "run", "--junit", str(junit), "--fail-on-regression")
    assert result.exit_code == 0, result.output
    assert "6 case(s) x 1 trial(s): 5 passed, 1 failed, 0 error(s)" in result.output
    assert "baseline: none (first finished run)" in result.output and "No regressions." in result.output
    suite = ET.parse(junit).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("6", "1", "0")
    cases = {c.get("name").split(":")[0]: c for c in suite.findall("testcase")}
    assert len(cases) == 6
    failure = cases["tne841s8"].find("failure")
    assert failure.get("type") == "fail"
    assert failure.get("message").startswith("not_contains: expected no '90 days'; found it at char 9")
    assert "regex: expected a match for /\\b30[- ]day/; got 'You have 90 days.'" in failure.text
    assert cases["2tj51dm1"].find("failure") is None and cases["2tj51dm1"].find("error") is None


def test_a_regression_exits_1_only_with_fail_on_regression(corpus, tmp_path):
    set_replies(corpus, tmp_path)
    assert run("eval", "run").exit_code == 0
    set_replies(corpus, tmp_path, **{"2tj51dm1": "Probably yes."})
    plain = run("eval", "run")
    assert plain.exit_code == 0, plain.output
    assert "Regressions (passed before, fail now; confirmed by re-running): 1" in plain.output
    gated = run("eval", "run", "--fail-on-regression", "--baseline", "1", "--junit", str(tmp_path / "j.xml"))
    assert gated.exit_code == 1, gated.output
    assert gated.output.rstrip().splitlines()[-1] == "exit 1: 1 regression(s) (--fail-on-regression): 2tj51dm1"
    assert "2tj51dm1  fail (0% of 6, 95% CI 0–39%)  Yes/no eligibility check must answer with one word" in gated.output
    assert "confirmed regression: re-run 0/5 passed; 0/6 now against 1/1 before" in gated.output
    assert "equals: expected exactly 'YES'; got 'Probably yes.'" in gated.output
    failure = ET.parse(tmp_path / "j.xml").getroot().find("testsuite/testcase/failure")
    assert failure is not None and failure.get("type") == "regression"


def test_a_case_that_cannot_be_graded_exits_3_not_a_regression(corpus, tmp_path):
    set_replies(corpus, tmp_path)
    assert run("eval", "run").exit_code == 0
    (tmp_path / "replies.json").write_text("{}")  # the target now raises KeyError for every case
    result = run("eval", "run", "--fail-on-regression", "--case", "2tj5", "--junit", str(tmp_path / "j.xml"))
    assert result.exit_code == 3, result.output
    assert "Errors (could not be graded): 1" in result.output
    assert result.output.rstrip().splitlines()[-1] == "exit 3: 1 of 1 cases could not be graded: 2tj51dm1"
    error = ET.parse(tmp_path / "j.xml").getroot().find("testsuite/testcase/error")
    assert "raised KeyError" in error.text
    tolerated = run("eval", "run", "--fail-on-regression", "--case", "2tj5", "--allow-errors", "1")
    assert tolerated.exit_code == 0, tolerated.output
    assert tolerated.output.rstrip().splitlines()[-1] == (
        "exit 0: nothing regressed; 1 ungraded case(s) tolerated by --allow-errors 1")


def test_fail_on_failure_exits_1_for_any_failing_case_and_says_which(corpus, tmp_path):
    set_replies(corpus, tmp_path, tne841s8="You have 90 days.")  # fails on the first run: not a regression
    gated = run("eval", "run", "--fail-on-regression", "--fail-on-failure")
    assert gated.exit_code == 1, gated.output
    assert gated.output.rstrip().splitlines()[-1] == "exit 1: 1 failing case(s) (--fail-on-failure): tne841s8"
    set_replies(corpus, tmp_path)
    passing = run("eval", "run", "--fail-on-failure")
    assert passing.exit_code == 0, passing.output
    assert passing.output.rstrip().splitlines()[-1] == "exit 0: all 6 graded case(s) passed"


@pytest.mark.parametrize(
    ("args", "setup", "message"),
    [
        (["--case", "zzzz"], None, "error: --case zzzz: no promoted case has an id starting with 'zzzz'"),
        (["--baseline", "7"], None, "error: --baseline: there is no run 7"),
        ([], "toml", "error: "),
        ([], "no-key", "error: ANTHROPIC_API_KEY is not set"),
        ([], "no-module", "error: [target] callable = 'evalbot_cli_target:reply': cannot import evalbot_cli_target"),
    ],
)
def test_configuration_errors_exit_2(corpus, tmp_path, monkeypatch, args, setup, message):
    set_replies(corpus, tmp_path)
    if setup == "toml":
        (corpus / "evalbot.toml").write_text("[target]\nkind = 'telepathy'\n")
    elif setup == "no-key":
        monkeypatch.delenv("ANTHROPIC_API_KEY")
    elif setup == "no-module":
        monkeypatch.setitem(__import__("sys").modules, "evalbot_cli_target", None)
    result = run("eval", "run", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_report_prints_a_run_against_its_baseline(corpus, tmp_path):
    assert run("eval", "report").exit_code == 1  # nothing to report yet
    set_replies(corpus, tmp_path, **{"2tj51dm1": "no"})
    run("eval", "run")
    set_replies(corpus, tmp_path)
    run("eval", "run")
    latest = run("eval", "report")
    assert latest.exit_code == 0, latest.output
    assert latest.output.startswith("Run 2 (finished, cli, ")
    assert "baseline: run 1 (pass rate 83%, +17 pts)" in latest.output
    assert "Fixes (failed before, pass now): 1\n  2tj51dm1  pass" in latest.output
    first = run("eval", "report", "1")
    assert "baseline: none" in first.output and "Still failing" not in first.output
    assert run("eval", "report", "99").exit_code == 1


def test_export_promptfoo(corpus):
    result = run("corpus", "export", "--format", "promptfoo")
    assert result.exit_code == 0, result.output
    config = yaml.safe_load(result.stdout)
    # A python target has no promptfoo provider: the config says so, and so does the command.
    assert config["providers"][0]["id"] == "echo" and "kind python" in result.stderr
    assert config["defaultTest"]["options"]["provider"]["id"] == "anthropic:messages:claude-sonnet-4-6"
    by_id = {t["vars"]["case_id"]: t for t in config["tests"]}
    assert len(by_id) == 6
    refund = by_id["tne841s8"]
    assert refund["description"] == "tne841s8: Refund answer invents a 90-day window"
    assert json.loads(refund["vars"]["messages"]) == [
        {"role": "user", "content": "Hi! I bought the Ridgeline 2 tent last month. How long do I have to return it?"}]
    assert [a["type"] for a in refund["assert"]] == ["llm-rubric", "javascript", "javascript"]
    assert refund["assert"][1]["value"] == '!output.includes("90 days")'
    assert by_id["rfsv4ymg"]["assert"][0] == {"type": "javascript", "value": "[...output].length <= 400"}
    schema = by_id["1breqg51"]["assert"][0]
    assert schema["type"] == "is-json" and schema["value"]["required"] == ["order_id", "status", "eta_days"]


def test_export_inspect_to_a_file(corpus, tmp_path):
    out = tmp_path / "export" / "cases.jsonl"
    result = run("corpus", "export", "--format", "inspect", "--out", str(out))
    assert result.exit_code == 0, result.output
    samples = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(samples) == 6
    sample = next(s for s in samples if s["id"] == "ewjirjst")
    assert [m["role"] for m in sample["input"]] == ["user", "assistant", "user"]
    assert sample["target"] == ["Says plainly that a shipped order cannot be cancelled, explains the 30-day return for unused items, and offers a human agent."]
    assert sample["metadata"]["expect"][1] == {"contains": "support@acme-outdoor.example"}
    assert sample["metadata"]["title"] == "Promises to cancel an order that already shipped"
    assert next(s for s in samples if s["id"] == "2tj51dm1")["target"] == []  # no rubric: graded by the task's scorer
    assert (out.parent / "cases_task.py").is_file()


def test_export_jsonl_round_trips_the_cases(corpus):
    result = run("corpus", "export", "--format", "jsonl")
    cases = [Case.model_validate_json(line) for line in result.output.splitlines()]
    assert sorted(c.id for c in cases) == sorted(GOOD)
    assert all(c.status == "promoted" for c in cases)  # candidates are not exported


def test_progress_bar_draws_one_line_and_ends_it():
    import io

    from bot.cli.evals import ProgressBar

    stream = io.StringIO()
    bar = ProgressBar(stream, width=10)
    bar(1, 4)
    bar(2, 4)  # within 0.1 s of the last draw: skipped
    bar(4, 4)  # the last one is always drawn, with a newline
    drawn = stream.getvalue()
    assert drawn.startswith("\r[##........] 1/4 trials")
    assert "2/4" not in drawn
    assert "\r[##########] 4/4 trials" in drawn and drawn.endswith("\n")


@pytest.mark.migrated_db(False)  # starts on an empty database
def test_a_model_that_only_answers_529_exits_3_from_a_real_process(db_url, corpus_dir, monkeypatch, tmp_path):
    """A total outage must not pass CI: `evalbot eval run --fail-on-regression` as a process, the SDK's retries."""
    import subprocess
    import sys

    from tests.helpers.evalruns import anthropic_corpus, anthropic_toml

    with anthropic_corpus(corpus_dir, monkeypatch, toml=anthropic_toml(retries=0, concurrency=6)) as fake:
        fake.fail_always(529, retry_after=0, error_type="overloaded_error")
        done = subprocess.run([sys.executable, "-m", "bot", "eval", "run", "--fail-on-regression"],
                              capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 3, done.stdout + done.stderr
    assert done.stdout.rstrip().splitlines()[-1].startswith("exit 3: 6 of 6 cases could not be graded: ")
    assert "Traceback" not in done.stderr and len(fake.requests) >= 6


def test_report_as_json_for_tools(corpus, tmp_path):
    set_replies(corpus, tmp_path, **{"2tj51dm1": "no"})
    run("eval", "run")
    result = run("eval", "report", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["run"]["id"] == 1 and len(data["cases"]) == 6
    assert [case["case_id"] for case in data["cases"] if case["status"] == "fail"] == ["2tj51dm1"]


def test_a_quarantined_case_runs_but_never_fails_the_gate(corpus, tmp_path):
    set_replies(corpus, tmp_path)
    assert run("eval", "run").exit_code == 0
    quarantined = run("corpus", "quarantine", "2tj5", "--reason", "flaky since the model update", "--as", "U1")
    assert quarantined.exit_code == 0, quarantined.output
    assert quarantined.output.startswith("quarantined 2tj51dm1:")
    assert yaml.safe_load((corpus / "cases" / "2tj51dm1.yaml").read_text())["quarantined"] is True
    assert run("corpus", "quarantine", "2tj5").output.strip() == "2tj51dm1 was already quarantined"
    set_replies(corpus, tmp_path, **{"2tj51dm1": "Probably yes."})
    gated = run("eval", "run", "--fail-on-regression", "--fail-on-failure", "--junit", str(tmp_path / "q.xml"))
    assert gated.exit_code == 0, gated.output
    suite = ET.parse(tmp_path / "q.xml").getroot().find("testsuite")
    assert (suite.get("failures"), suite.get("skipped")) == ("0", "1")
    skipped = next(c for c in suite.findall("testcase") if c.get("name").startswith("2tj51dm1")).find("skipped")
    assert skipped.get("message").startswith("quarantined; fail: trial 1: equals: expected exactly 'YES'")
    assert "2tj51dm1  fail (0% of 6, 95% CI 0–39%) [quarantined]" in gated.output
    assert "Quarantined (run, never fail the gate): 1" in gated.output
    assert gated.output.rstrip().splitlines()[-1] == ("exit 0: all 5 graded case(s) passed; "
                                                      "1 quarantined case(s) not counted")
    released = run("corpus", "unquarantine", "2tj5")
    assert released.exit_code == 0 and released.output.startswith("released 2tj51dm1 from quarantine")
    assert "quarantined" not in yaml.safe_load((corpus / "cases" / "2tj51dm1.yaml").read_text())
    assert run("eval", "run", "--fail-on-failure").exit_code == 1


def test_against_a_ref_runs_that_config_side_by_side(corpus, tmp_path):
    import subprocess

    set_replies(corpus, tmp_path)
    # a module of its own: another test may have imported evalbot_cli_target already
    (corpus / "evalbot_cli_v2.py").write_text(TARGET.replace("def reply(", "def _reply(") + (
        '\n\ndef reply(messages):\n    text = _reply(messages)\n    return "Probably yes." if text == "YES" else text\n'))
    git = ["git", "-c", "user.name=Test", "-c", "user.email=test@example.invalid"]
    subprocess.run([*git, "add", "-A"], cwd=corpus, check=True)
    subprocess.run([*git, "commit", "-qm", "python target"], cwd=corpus, check=True)
    (corpus / "evalbot.toml").write_text(TOML.replace("evalbot_cli_target:reply", "evalbot_cli_v2:reply"))
    result = run("eval", "run", "--against", "HEAD", "--junit", str(tmp_path / "a.xml"))
    assert result.exit_code == 0, result.output
    assert "Side by side with HEAD (" in result.output and "5/6 pass here, 6/6 at HEAD" in result.output
    assert ("this config vs HEAD: target callable changed: 'evalbot_cli_target:reply' → 'evalbot_cli_v2:reply'"
            in result.output)
    assert "2tj51dm1  here fail (0%)  at HEAD pass (100%)  Yes/no eligibility check" in result.output
    suite = ET.parse(tmp_path / "a.xml").getroot().find("testsuite")
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert props["against_ref"] == "HEAD" and len(props["against_commit"]) == 40
    out = next(c for c in suite.findall("testcase") if c.get("name").startswith("2tj51dm1")).find("system-out").text
    assert "at HEAD: pass (100% over 1 trial(s))" in out
    bad = run("eval", "run", "--against", "no-such-ref")
    assert bad.exit_code == 2 and "--against no-such-ref: git rev-parse failed" in bad.output

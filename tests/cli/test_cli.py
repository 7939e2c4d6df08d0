"""The CLI: each corpus command and db upgrade, through Typer's runner (doctor: test_doctor.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from bot.cli import COMMANDS, app
from tests.helpers.paths import REPO

pytestmark = pytest.mark.migrated_db  # the database starts migrated: each test's first use of it migrates in-process

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


@pytest.fixture
def corpus(db_url, corpus_dir):
    return corpus_dir


def test_validate_passes_on_the_example_corpus(corpus):
    result = run("corpus", "validate")
    assert result.exit_code == 0, result.output
    assert "6 cases, 1 candidates, 0 problem(s)" in result.output


def test_validate_fails_listing_each_problem(corpus):
    (corpus / "cases" / "bad00001.yaml").write_text("id: bad00001\ncolour: red\n")
    (corpus / "evalbot.toml").write_text("[target]\nkind = 'telepathy'\n")
    result = run("corpus", "validate")
    assert result.exit_code == 1
    assert "evalbot.toml: target: kind must be one of anthropic, http, command, python" in result.output
    assert "cases/bad00001.yaml: " in result.output and "colour: unknown field" in result.output


def test_list_and_show(corpus):
    result = run("corpus", "list", "candidates")
    assert result.exit_code == 0
    assert "qa31qo8q  candidate" in result.output and "1 total" in result.output
    shown = run("corpus", "show", "tne8")
    assert shown.exit_code == 0
    assert shown.output.startswith("# corpus/cases/tne841s8.yaml\nid: tne841s8\n")


def test_schema_is_json(corpus):
    schema = json.loads(run("corpus", "schema").output)
    assert schema["title"] == "evalbot case"
    assert "expect" in schema["properties"]


def test_promote_and_reject_from_the_cli(corpus):
    promoted = run("corpus", "promote", "qa31", "--rubric", "Recommends our stoves.", "--not-contains", "another outdoor retailer", "--as", "U01LEAD")
    assert promoted.exit_code == 0, promoted.output
    assert "promoted qa31qo8q" in promoted.output
    author = subprocess.run(["git", "log", "-1", "--format=%an"], cwd=corpus, capture_output=True, text=True).stdout.strip()
    assert author == "U01LEAD"
    again = run("corpus", "reject", "qa31", "dup")
    assert again.exit_code == 1 and "only candidates can be rejected" in again.output


def test_promote_with_the_suggested_rubric(corpus, tmp_path):
    # The CLI's default author is the user's git identity (the suite has none: give this test one).
    (tmp_path / "home" / ".gitconfig").write_text("[user]\n\tname = Test Runner\n\temail = runner@example.com\n")
    result = run("corpus", "promote", "qa31", "--use-suggested")
    assert result.exit_code == 0, result.output
    author = subprocess.run(["git", "log", "-1", "--format=%an <%ae>"], cwd=corpus, capture_output=True, text=True).stdout.strip()
    assert author == "Test Runner <runner@example.com>"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("corpus", "show", "../../etc/passwd"), "is not a case id"),
        (("corpus", "promote", "../../etc/passwd", "--rubric", "x"), "is not a case id"),
        (("corpus", "reject", "zzzz", "nope"), "no case has an id starting with 'zzzz'"),
        (("corpus", "promote", "qa31"), "give at least one of --rubric"),
        (("corpus", "promote", "qa31", "--regex", "(bad"), "not a valid regular expression"),
    ],
)
def test_bad_input_is_a_clear_error_and_changes_nothing(corpus, args, message):
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=corpus, capture_output=True, text=True).stdout
    result = run(*args)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
    assert subprocess.run(["git", "rev-parse", "HEAD"], cwd=corpus, capture_output=True, text=True).stdout == head
    assert subprocess.run(["git", "status", "--porcelain"], cwd=corpus, capture_output=True, text=True).stdout == ""


def test_reindex(corpus):
    result = run("corpus", "reindex")
    assert result.exit_code == 0 and "indexed 7 case file(s); read 7 (rebuilt from every file)" in result.output
    again = run("corpus", "reindex")
    assert "read 0 (nothing changed since the last index)" in again.output
    assert "read 7" in run("corpus", "reindex", "--full").output


@pytest.mark.migrated_db(False)  # starts on an empty database
def test_db_upgrade(db_url):
    first = run("db", "upgrade")
    assert first.exit_code == 0 and "upgraded from empty to" in first.output
    second = run("db", "upgrade")
    assert "up to date" in second.output


def test_serve_without_tokens_stops_with_one_line():
    result = run("serve")
    assert result.exit_code == 2
    assert result.output.startswith("error: SLACK_BOT_TOKEN is not set")


def test_edit_from_the_cli_is_one_commit_by_the_given_user(corpus):
    result = run("corpus", "edit", "ewji", "--title", "Claims to cancel a shipped order", "--tag", "orders",
                 "--not-contains", "cancelled", "--as", "U01LEAD")
    assert result.exit_code == 0, result.output
    assert "edited ewjirjst: Claims to cancel a shipped order" in result.output
    log = subprocess.run(["git", "log", "-1", "--format=%an|%s"], cwd=corpus, capture_output=True, text=True).stdout.strip()
    assert log == "U01LEAD|Edit ewjirjst: Claims to cancel a shipped order"
    shown = run("corpus", "show", "ewji").output
    assert "tags:\n- orders\nsource:" in shown and "expect:\n- not_contains: cancelled\npromoted_by" in shown


def test_edit_from_the_cli_without_changes_makes_no_commit(corpus):
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=corpus, capture_output=True, text=True).stdout
    same = run("corpus", "edit", "tne8", "--title", "Refund answer invents a 90-day window")
    assert same.exit_code == 0 and "nothing changed in tne841s8" in same.output
    nothing = run("corpus", "edit", "tne8")
    assert nothing.exit_code == 1 and "say what to change" in nothing.output
    assert subprocess.run(["git", "rev-parse", "HEAD"], cwd=corpus, capture_output=True, text=True).stdout == head


HEAVY = ("anthropic", "sqlalchemy", "sqlmodel", "alembic", "matplotlib", "slack_bolt", "slack_sdk", "rapidfuzz")
# Runs a command in a fresh interpreter, then prints which of HEAVY it imported (last line of stderr).
PROBE = f"""
import sys
import typer

from bot.cli import COMMANDS, app
try:
    app(sys.argv[1:], prog_name="evalbot")
except SystemExit:
    pass
print(" ".join(sorted({{name.split(".")[0] for name in sys.modules}} & {set(HEAVY)!r})) or "-", file=sys.stderr)
"""


@pytest.mark.parametrize(
    ("args", "allowed"),
    [(["--help"], set()), (["corpus", "--help"], set()),
     (["corpus", "list"], {"sqlalchemy", "sqlmodel", "rapidfuzz"}), (["eval", "report"], {"sqlalchemy", "sqlmodel"}),
     (["corpus", "show", "tne8"], set()), (["corpus", "validate"], set())],
    ids=["help", "corpus-help", "corpus-list", "eval-report", "corpus-show", "corpus-validate"],
)
def test_commands_import_only_what_they_use(corpus, db_url, args, allowed):
    assert run("db", "upgrade").exit_code == 0  # a database to migrate would need alembic, rightly
    assert imported(corpus, db_url, args)[0] <= allowed


@pytest.mark.parametrize("args", [["corpus", "list"], ["corpus", "list", "candidates"], ["corpus", "reindex"]],
                         ids=["list", "list-candidates", "reindex"])
def test_a_current_index_is_read_without_sqlalchemy(corpus, db_url, args):
    assert run("corpus", "reindex").exit_code == 0  # the first build needs the ordinary path, rightly
    loaded, output = imported(corpus, db_url, args)
    assert loaded <= set()
    assert output.splitlines()[-1] == {"list": "7 total", "reindex": "indexed 7 case file(s); read 0 (nothing changed "
                                       "since the last index)"}.get(args[-1], "1 total")


def test_an_eval_run_of_an_http_target_imports_no_model_sdk(corpus, db_url):
    # Teams whose system is an HTTP service and whose cases need no judge never pay for the Anthropic SDK.
    from tests.fakes.endpoint import FakeEndpoint

    with FakeEndpoint(default={"reply": "Items can be returned within 30 days."}) as endpoint:
        toml = (corpus / "evalbot.toml").read_text(encoding="utf-8")
        judge = toml[toml.index("[judge]"):]
        (corpus / "evalbot.toml").write_text(f'[target]\nkind = "http"\nurl = "{endpoint.url}/reply"\n\n{judge}',
                                             encoding="utf-8")
        assert run("corpus", "reindex").exit_code == 0  # a first index build keeps near-duplicate texts (rapidfuzz)
        loaded, output = imported(corpus, db_url, ["eval", "run", "--case", "1breqg51"])
    asked = [seen["body"] for seen in endpoint.seen]
    assert [body["case_id"] for body in asked] == ["1breqg51"]
    assert "1 case(s) x 1 trial(s)" in output
    assert loaded <= {"sqlalchemy", "sqlmodel"}, f"`eval run` of an http target imported {sorted(loaded)}"


def imported(corpus, db_url: str, args: list[str]) -> tuple[set[str], str]:
    """Which of HEAVY `evalbot ARGS` imported, run in a fresh interpreter (a failing command fails the test), and
    what it printed."""
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=60,
                          cwd=corpus.parent, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert "Traceback" not in done.stderr, done.stderr
    loaded = set(done.stderr.strip().splitlines()[-1].split()) - {"-"}
    if db_url.startswith("postgresql"):
        loaded -= {"sqlalchemy"}  # a PostgreSQL URL is checked with SQLAlchemy's dialects (its driver)
    return loaded, done.stdout


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_lazy_help_line_is_the_commands_own(name):
    from typer._click.core import Context

    from bot.cli import LazyGroup

    group = typer.main.get_command(app)
    assert isinstance(group, LazyGroup)
    command = group.get_command(Context(group), name)
    assert command is not None and (command.help or "").strip().splitlines()[0] == COMMANDS[name][1]

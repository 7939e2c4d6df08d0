"""Every exit outside Slack passes the redactor: case files, commit messages, exports, JUnit, run records (model
outputs in the database), the drafting prompt, and logs on every handler.

Each test plants a secret where capture's own redaction never saw it (a case made elsewhere, a model output, a
log line) and looks for it where it would leak: the file, `git log`, the exported text, the database row.
The secrets are fake and assembled from pieces, so secret scanners have nothing to flag in this file.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import subprocess

import pytest
from sqlmodel import select

from bot.capture import drafting
from bot.core.errors import CallFailed
from bot.core.logs import setup_logging
from bot.core.redaction_exits import redact_case, redact_payload
from bot.corpus.files import Corpus
from bot.corpus.gitrepo import Author
from bot.corpus.schema import Turn
from bot.evals import records
from bot.evals.batch.api import PollPolicy
from bot.evals.evaluate import run_eval
from bot.evals.render.export import FORMATS, export_cases
from bot.evals.render.junit import junit_xml
from bot.runtime import open_runtime
from bot.store.tables import CaseResult, EvalRun, TrialResult, session_scope
from tests.helpers import candidate
from tests.helpers.evalruns import anthropic_corpus, anthropic_toml, record_run
from tests.helpers.evals import GOOD

GITHUB = "ghp_" + "FakeGitHubToken0123456789abcdefghijk"
AWS_ID = "AKIA" + "FAKE0123456789AB"
PASSWORD = "hunter2" + "-Fake-9z"
PLANTED = (GITHUB, AWS_ID, PASSWORD)


def leaks(text: str) -> list[str]:
    """The planted secrets (or their distinctive middles) found in `text`."""
    return [secret for secret in PLANTED if secret in text or secret[4:-2] in text]


def secret_case():
    """A case made elsewhere: a secret in its title, its note, its conversation and its rubric."""
    case = candidate(title=f"Leaks {GITHUB} in the reply")
    return case.model_copy(
        update={
            "source": case.source.model_copy(update={"note": f"the key was {AWS_ID}"}),
            "conversation": [
                Turn(role="user", content=f"my config has password={PASSWORD} and fails"),
                Turn(role="assistant", content=f"Try the token {GITHUB} instead."),
            ],
        }
    )


def git_log(path) -> str:
    return subprocess.run(["git", "-C", str(path), "log", "-p", "--all"], capture_output=True, text=True, check=True).stdout


def test_a_case_file_and_its_commit_message_never_hold_a_secret(corpus_dir):
    corpus = Corpus(corpus_dir)
    case = secret_case()
    with corpus.change(author=Author(user_id="U0TEST"), message=f"capture {case.id}: {GITHUB}") as tx:
        path = tx.write(case)
    assert leaks(path.read_text(encoding="utf-8")) == []
    assert leaks(git_log(corpus_dir)) == []
    written = corpus.get(case.id)
    assert "[REDACTED:github_token]" in written.title and "[REDACTED:aws_access_key]" in (written.source.note or "")
    assert written.conversation[0].content == "my config has password=[REDACTED:password] and fails"


def test_redact_case_leaves_a_clean_case_as_it_is():
    case = candidate()
    assert redact_case(case) is case


@pytest.mark.parametrize("fmt", FORMATS)
def test_exports_never_hold_a_secret(fmt):
    text = export_cases([secret_case()], fmt)
    assert leaks(text) == []
    assert "[REDACTED:github_token]" in text


def test_junit_never_holds_a_secret(corpus_dir):
    comparison = record_run(open_runtime()).comparison
    first = dataclasses.replace(comparison.cases[0], title=f"title {GITHUB}", status="fail", failure=f"got {AWS_ID}\nand {GITHUB}")
    xml = junit_xml(dataclasses.replace(comparison, cases=[first, *comparison.cases[1:]]))
    assert leaks(xml) == []
    assert "[REDACTED:aws_access_key]" in xml and "[REDACTED:github_token]" in xml


def test_run_records_never_hold_a_model_output_secret(db_url, corpus_dir):
    rt = open_runtime()
    leaked = f"Sure, use {GITHUB} and password={PASSWORD}"
    report = record_run(rt, **{"2tj51dm1": leaked, "1breqg51": CallFailed(f"backend said {AWS_ID}")})
    with session_scope(rt.engine) as session:
        trials = session.exec(select(TrialResult).where(TrialResult.run_id == report.run_id)).all()
        cases = session.exec(select(CaseResult).where(CaseResult.run_id == report.run_id)).all()
        run = session.get(EvalRun, report.run_id)
        stored = json.dumps([t.model_dump(mode="json") for t in trials] + [c.model_dump(mode="json") for c in cases]
                            + [run.model_dump(mode="json") if run else None])
    assert leaks(stored) == []
    outputs = {t.case_id: t.output for t in trials}
    assert outputs["2tj51dm1"] == "Sure, use [REDACTED:github_token] and password=[REDACTED:password]"


def test_batch_run_records_never_hold_a_model_output_secret(db_url, corpus_dir, monkeypatch):
    with anthropic_corpus(corpus_dir, monkeypatch, toml=anthropic_toml(mode="batch", retries=0)) as fake:
        rt = open_runtime()
        fake.answers.update({**GOOD, "2tj51dm1": f"YES, and the key is {GITHUB}"})
        report = run_eval(rt, case_ids=["2tj5"], poll=PollPolicy(initial=0.01, factor=2, maximum=0.05))
        with session_scope(rt.engine) as session:
            [trial] = records.trial_results(session, report.run_id)
    assert trial.output == "YES, and the key is [REDACTED:github_token]"
    assert leaks(json.dumps(trial.model_dump(mode="json"))) == []


def test_the_drafting_prompt_never_holds_a_secret():
    prompt = drafting._render([Turn(role="user", content=f"token {GITHUB}")], f"note {AWS_ID}")
    assert leaks(prompt) == []
    assert prompt.startswith("<conversation>") and "[REDACTED:github_token]" in prompt


def test_redact_payload_keeps_slack_identifiers():
    payload = {"channel": "C0TEST01", "ts": "1763700000.000100", "blocks": [{"type": "section", "block_id": "b1",
               "text": {"type": "mrkdwn", "text": f"key {GITHUB}"}}]}
    assert redact_payload(payload) == {**payload, "blocks": [{"type": "section", "block_id": "b1",
                                       "text": {"type": "mrkdwn", "text": "key [REDACTED:github_token]"}}]}


@pytest.fixture
def root_logging():
    yield
    logging.getLogger().handlers.clear()


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_logs_never_hold_a_secret_on_any_handler(root_logging, fmt):
    library = logging.getLogger("some.library")
    own = io.StringIO()
    handler = logging.StreamHandler(own)  # a library's own handler, added before set-up
    library.addHandler(handler)
    library.propagate = False
    try:
        setup_logging(fmt=fmt)
        root_stream = io.StringIO()
        logging.getLogger().handlers[0].setStream(root_stream)
        library.warning("retrying with %s", GITHUB)
        logging.getLogger("bot.test").warning("loaded", extra={"event": "config", "detail": f"password={PASSWORD}"})
        try:
            raise ValueError(f"bad key {AWS_ID}")
        except ValueError:
            logging.getLogger("bot.test").exception("failed")
    finally:
        library.removeHandler(handler)
        library.propagate = True
    assert "[REDACTED:github_token]" in own.getvalue() and leaks(own.getvalue()) == []
    text = root_stream.getvalue()
    assert leaks(text) == [] and "[REDACTED:aws_access_key]" in text
    if fmt == "json":
        assert json.loads(text.splitlines()[0])["detail"] == "password=[REDACTED:password]"

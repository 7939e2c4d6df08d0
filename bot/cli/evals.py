"""`evalbot eval`: run the corpus against the system under test (`run`), show a run's comparison (`report`) and
review a judge verdict (`review`).

Exit codes of `run` (bot/evals/gate.py decides them): 0 ok, 1 a regression or failure as asked, 2 a
configuration error, 3 cases that could not be graded (beyond --allow-errors N).
"""

from __future__ import annotations

import sys
import time
from enum import Enum
from pathlib import Path
from typing import Annotated, TextIO

import typer

from bot.cli.common import cli_author, cli_errors
from bot.core.errors import ConfigError, RunNotFoundError
from bot.evals import records
from bot.evals.compare import compare_runs
from bot.evals.gate import GateRules, decide
from bot.evals.render.junit import junit_xml
from bot.evals.render.report import PAGE, comparison_json, format_comparison
from bot.evals.runs import resume_exclusive, run_exclusive, stopped_hint
from bot.runtime import open_runtime
from bot.store.tables import session_scope

app = typer.Typer(help="Evaluate the corpus against the system under test and compare runs.", no_args_is_help=True, add_completion=False)


class ReportFormat(str, Enum):
    text = "text"
    json = "json"


class ProgressBar:
    """A one-line progress bar on a terminal, redrawn at most ten times a second."""

    def __init__(self, stream: TextIO, width: int = 30):
        self.stream = stream
        self.width = width
        self.started = time.monotonic()
        self.drawn = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self.drawn < 0.1:
            return
        self.drawn = now
        filled = self.width * done // max(total, 1)
        bar = "#" * filled + "." * (self.width - filled)
        end = "\n" if done >= total else ""
        self.stream.write(f"\r[{bar}] {done}/{total} trials  {now - self.started:.0f}s{end}")
        self.stream.flush()


@app.command("run")
@cli_errors
def run(
    trials: Annotated[int | None, typer.Option(min=1, help="Samples per case (default: [run] trials).")] = None,
    concurrency: Annotated[int | None, typer.Option(min=1, help="Calls in flight (default: [run] concurrency).")] = None,
    case: Annotated[list[str] | None, typer.Option("--case", help="Run this case (id prefix; repeatable).")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Run the cases with this tag (repeatable).")] = None,
    junit: Annotated[Path | None, typer.Option(help="Also write JUnit XML to this file.")] = None,
    fail_on_regression: Annotated[bool, typer.Option(help="Exit 1 when a case that passed in the baseline fails.")] = False,
    fail_on_failure: Annotated[bool, typer.Option(help="Exit 1 when any graded case fails.")] = False,
    allow_errors: Annotated[int, typer.Option(min=0, help="Tolerate up to N cases that could not be graded (else exit 3).")] = 0,
    baseline: Annotated[int | None, typer.Option(help="Compare with this run (default: the previous finished run).")] = None,
    post: Annotated[bool, typer.Option("--post", help="Post the digest to EVALBOT_CHANNEL, as the nightly run does.")] = False,
    show_all: Annotated[bool, typer.Option("--all", help=f"List every case in each section (default: {PAGE}).")] = False,
    against: Annotated[str | None, typer.Option(help="Also run the target as configured at this git ref, side by side.")] = None,
    resume: Annotated[int | None, typer.Option("--resume", metavar="RUN", help="Take up run RUN that stopped half-way "
                                               "(crash, Ctrl-C): grade only the cases it had not graded.")] = None,
) -> None:
    """Run the promoted cases against the target, grade them, record the run and compare it."""
    if resume is not None:
        given = [name for name, value in (("--trials", trials), ("--case", case), ("--tag", tag),
                                          ("--baseline", baseline), ("--against", against)) if value]
        if given:
            raise ConfigError(f"--resume {resume} goes on with the run as it was started: drop {', '.join(given)}")
    rt = open_runtime(existing_corpus=True)
    if post:
        # Say so before a long run, not after it: --post needs the bot token and the channel.
        missing = [line for line in rt.settings.missing_for_serve(http=False) if not line.startswith("SLACK_APP_TOKEN")]
        if missing:
            raise ConfigError(f"--post needs Slack: {missing[0]}")
    progress = ProgressBar(sys.stderr) if sys.stderr.isatty() else None
    try:
        if resume is not None:
            report = resume_exclusive(rt, resume, concurrency=concurrency, progress=progress)
        else:
            report = run_exclusive(rt, trigger="cli", trials=trials, concurrency=concurrency, case_ids=case or (),
                                   tags=tag or (), baseline_id=baseline, progress=progress, against=against)
    except KeyboardInterrupt:
        typer.echo(f"\nstopped: {stopped_hint(rt)}", err=True)
        raise typer.Exit(130) from None
    for warning in report.warnings:
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(format_comparison(report.comparison, page=None if show_all else PAGE))
    if junit is not None:
        junit.parent.mkdir(parents=True, exist_ok=True)
        junit.write_text(junit_xml(report.comparison), encoding="utf-8")
        typer.echo(f"JUnit XML written to {junit}")
    if post:
        from bot.slack.flows.digest_post import post_digest

        ts = post_digest(rt, report.run_id)
        typer.echo(f"digest posted to {rt.settings.channel}" + (f" (message {ts})" if ts else " by another process"))
    verdict = decide(report.comparison, GateRules(fail_on_regression=fail_on_regression,
                                                  fail_on_failure=fail_on_failure, allow_errors=allow_errors))
    typer.echo(verdict.reason)
    if verdict.exit_code:
        raise typer.Exit(verdict.exit_code)


@app.command("report")
@cli_errors
def report(
    run_id: Annotated[int | None, typer.Argument(metavar="[RUN]", help="Run id (default: the newest finished run).")] = None,
    baseline: Annotated[int | None, typer.Option(help="Compare with this run (default: the previous finished run).")] = None,
    show_all: Annotated[bool, typer.Option("--all", help=f"List every case in each section (default: {PAGE}).")] = False,
    output: Annotated[ReportFormat, typer.Option("--format", help="text for people, json (every case) for tools.")]
        = ReportFormat.text,
) -> None:
    """Print a run compared with its baseline: regressions, fixes, new, removed, failing, errors, flaky."""
    rt = open_runtime(existing_corpus=True)
    with session_scope(rt.engine) as session:
        if run_id is None:
            latest = records.latest_finished_run(session)
            if latest is None:
                raise RunNotFoundError("no finished run yet: start one with `evalbot eval run`")
            run_id = latest.id
        assert run_id is not None
        comparison = compare_runs(session, run_id, baseline)
    if output is ReportFormat.json:
        typer.echo(comparison_json(comparison))
        return
    typer.echo(format_comparison(comparison, page=None if show_all else PAGE))


class HumanVerdict(str, Enum):
    passed = "pass"
    failed = "fail"


@app.command("review")
@cli_errors
def review(
    run_id: Annotated[int, typer.Argument(metavar="RUN", help="The run whose judge verdict you reviewed.")],
    case_id: Annotated[str, typer.Argument(metavar="CASE", help="Case id (any unique prefix).")],
    verdict: Annotated[HumanVerdict, typer.Option(help="Your verdict on the reply: pass or fail.")],
    trial: Annotated[int, typer.Option(min=1, help="Which trial (1 = the first).")] = 1,
    rubric: Annotated[int, typer.Option(min=1, help="Which of the case's rubrics (1 = the first).")] = 1,
    note: Annotated[str | None, typer.Option(help="Why (shown to the judge with the example).")] = None,
    as_user: Annotated[str | None, typer.Option("--as", help="Reviewer (default: git user).")] = None,
) -> None:
    """Check the judge against a person: your verdict on one rubric verdict (a correction becomes a judge example)."""
    from bot.corpus.schema import Rubric
    from bot.evals.reviews import agreement, review_verdict

    rt = open_runtime(existing_corpus=True)
    case = rt.corpus.get(case_id)
    rubrics = [e.rubric for e in case.expect if isinstance(e, Rubric)]
    if rubric > len(rubrics):
        raise ConfigError(f"--rubric {rubric}: {case.id} has {len(rubrics)} rubric expectation(s)")
    with session_scope(rt.engine) as session:
        saved = review_verdict(session, run_id=run_id, case_id=case.id, rubric=rubrics[rubric - 1],
                               human_passed=verdict is HumanVerdict.passed, reviewer=cli_author(as_user).user_id,
                               trial=trial - 1, rubric_index=rubric - 1, note=note)
        overall = agreement(session)
    said = "agrees with the judge" if saved.judge_passed == saved.human_passed else \
        "corrects the judge: it will be shown to the judge as an example of this rubric on later runs"
    typer.echo(f"recorded: {case.id} trial {trial} rubric {rubric} is a {verdict.value} ({said})")
    typer.echo(overall.summary() or "no reviewed verdict yet")

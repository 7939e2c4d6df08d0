"""`evalbot corpus`: list, show, validate, scan (secrets), schema, promote, reject, edit and reindex the corpus.

Each command imports what it uses when it runs: the database layer (sqlmodel, half a second to import), the
secret scanner's rules, the YAML writer, the JSON Schema, so `show`, `validate` and `schema` answer without a
database and `list` pays for nothing but the index it reads.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from bot.cli.common import cli_author, cli_errors
from bot.cli.export import export
from bot.core.clock import age
from bot.core.errors import ConfigError, EvalbotError, InvalidCaseError
from bot.runtime import open_corpus, open_runtime

app = typer.Typer(help="The eval corpus: candidates and cases.", no_args_is_help=True, add_completion=False)
app.command("export")(export)


class Which(str, Enum):
    all = "all"
    candidates = "candidates"
    cases = "cases"


STATUS_OF = {"all": None, "candidates": "candidate", "cases": "promoted"}


@app.command("list")
@cli_errors
def list_cases(which: Annotated[Which, typer.Argument()] = Which.all, limit: int = 50) -> None:
    """List candidates and cases, newest first (from the index, brought up to date with the files first)."""
    from bot.core.settings import get_settings
    from bot.corpus import current_index

    settings = get_settings()
    status = STATUS_OF[which.value]
    page = current_index.page(settings.database_url, open_corpus(settings), status=status, limit=limit)
    if page is not None:
        rows, total, problems = page.rows, page.total, page.problems
    else:  # the index is behind the files (or the database needs creating or migrating): the ordinary path
        from bot.corpus.refresh import current_listing
        from bot.store.tables import session_scope

        rt = open_runtime(existing_corpus=True)
        with session_scope(rt.engine) as session:
            indexed, total, problems = current_listing(session, rt.corpus, status=status, limit=limit)
        rows = [current_index.Listed(id=row.id, status=row.status, flag_count=row.flag_count,
                                     flagged_at=row.flagged_at, title=row.title, tags=list(row.tags)) for row in indexed]
    for row in rows:
        tags = f" [{', '.join(row.tags)}]" if row.tags else ""
        typer.echo(f"{row.id}  {row.status:<9}  {row.flag_count} flag(s)  {age(row.flagged_at):>4}  {row.title}{tags}")
    typer.echo(f"{len(rows)} of {total} shown" if total > len(rows) else f"{total} total")
    for problem in problems:
        typer.echo(f"warning: {problem}", err=True)


@app.command("show")
@cli_errors
def show(case_id: str) -> None:
    """Print a case file (any unique prefix of at least 4 characters)."""
    from bot.corpus.casefile import dump_case

    corpus = open_corpus()  # the file is the truth, and reading it needs no database
    case = corpus.get(case_id)
    typer.echo(f"# {corpus.display(corpus.path_for(case.id, case.status))}")
    typer.echo(dump_case(case), nl=False)


@app.command("validate")
@cli_errors
def validate() -> None:
    """Check evalbot.toml and every case file, and every file for secrets; exit 1 listing each problem.

    Case files unchanged (per git) since the last validate keep their verdict and are not read again."""
    from bot.corpus.scan import scan_files
    from bot.corpus.verdicts import validate_cases
    from bot.evals.config import load_eval_config

    corpus = open_corpus()
    problems: list[str] = []
    try:
        load_eval_config(corpus.root)
    except EvalbotError as exc:
        problems.append(str(exc))
    checked = validate_cases(corpus)  # each changed case file read once, validated and scanned, in worker processes
    problems += checked.problems
    secrets = sorted([*checked.secrets, *scan_files(corpus.root, skip=checked.files)], key=lambda f: (f.path, f.line))
    problems += [f"{finding}: a secret (run `evalbot corpus scan`)" for finding in secrets]
    for problem in problems:
        typer.echo(f"error: {problem}", err=True)
    counts = checked.counts
    unchanged = len(checked.files) - checked.read
    typer.echo(f"{counts['promoted']} cases, {counts['candidate']} candidates, {len(problems)} problem(s) in {corpus.root}"
               + (f" ({unchanged} case file(s) unchanged since the last validate, not read again)" if unchanged else ""))
    if problems:
        raise typer.Exit(1)


@app.command("scan")
@cli_errors
def scan(
    folder: Annotated[Path | None, typer.Argument(help="A corpus folder (default: EVALBOT_CORPUS_DIR).")] = None,
    history: Annotated[bool, typer.Option(help="Also scan every commit of the corpus folder's git history.")] = True,
) -> None:
    """Check every corpus file and its git history for secrets; exit 1 naming file, line and kind of each."""
    from bot.corpus.scan import scan_corpus

    if folder is None:
        root = open_corpus().root
    elif folder.is_dir():
        root = folder.resolve()
    else:
        raise ConfigError(f"{folder} is not a folder: give the corpus folder to scan")
    findings = scan_corpus(root, history=history)
    for finding in findings:
        typer.echo(str(finding))
    where = "files and git history" if history else "files"
    typer.echo(f"{len(findings)} secret(s) in the {where} of {root}", err=True)
    if findings:
        raise typer.Exit(1)


@app.command("schema")
def schema() -> None:
    """Print the JSON Schema of a case file."""

    from bot.corpus.schema import case_json_schema

    typer.echo(json.dumps(case_json_schema(), indent=2))


@app.command("promote")
@cli_errors
def promote(
    case_id: str,
    rubric: Annotated[str | None, typer.Option(help="Rubric for the LLM judge.")] = None,
    contains: Annotated[list[str] | None, typer.Option(help="Text the reply must contain (repeatable).")] = None,
    not_contains: Annotated[list[str] | None, typer.Option(help="Text the reply must not contain (repeatable).")] = None,
    regex: Annotated[str | None, typer.Option(help="A regex the reply must match.")] = None,
    title: Annotated[str | None, typer.Option(help="A new title.")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="Tags (repeatable); replaces the current tags.")] = None,
    use_suggested: Annotated[bool, typer.Option(help="Use the expectations drafted at capture.")] = False,
    as_user: Annotated[str | None, typer.Option("--as", help="Author of the commit (default: git user).")] = None,
) -> None:
    """Promote a candidate to a case with expectations."""
    from bot.store.tables import session_scope
    from bot.triage import decisions as triage

    rt = open_runtime(existing_corpus=True)
    raw: list[dict] = []
    if rubric:
        raw.append({"rubric": rubric})
    raw += [{"contains": text} for text in contains or []]
    raw += [{"not_contains": text} for text in not_contains or []]
    if regex:
        raw.append({"regex": regex})
    expect = triage.parse_expectations(raw)
    if use_suggested:
        expect += triage.promotable(rt.corpus, triage.locate(rt.corpus, case_id)).suggested_expect
    if not expect:
        raise InvalidCaseError("give at least one of --rubric, --contains, --not-contains, --regex or --use-suggested")
    with session_scope(rt.engine) as session:
        result = triage.promote(
            corpus=rt.corpus, session=session, ref=case_id, actor=cli_author(as_user), expect=expect, title=title, tags=tag
        )
    typer.echo(f"promoted {result.case.id}: {result.case.title} ({len(result.case.expect)} expectation(s))")
    for warning in result.warnings:
        typer.echo(f"warning: {warning}", err=True)


@app.command("reject")
@cli_errors
def reject(
    case_id: str,
    reason: Annotated[str, typer.Argument(help="Why it is not a case (kept in the commit message).")],
    as_user: Annotated[str | None, typer.Option("--as", help="Author of the commit (default: git user).")] = None,
) -> None:
    """Reject a candidate: its file is removed; the reason stays in git and the database."""
    from bot.store.tables import session_scope
    from bot.triage import decisions as triage

    rt = open_runtime(existing_corpus=True)
    with session_scope(rt.engine) as session:
        rejection = triage.reject(corpus=rt.corpus, session=session, ref=case_id, actor=cli_author(as_user), reason=reason)
    typer.echo(f"rejected {rejection.case_id}: {rejection.title}")


@app.command("edit")
@cli_errors
def edit(
    case_id: str,
    title: Annotated[str | None, typer.Option(help="A new title.")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="Tags (repeatable); replaces the current tags.")] = None,
    no_tags: Annotated[bool, typer.Option("--no-tags", help="Remove every tag.")] = False,
    rubric: Annotated[str | None, typer.Option(help="Rubric for the LLM judge.")] = None,
    contains: Annotated[list[str] | None, typer.Option(help="Text the reply must contain (repeatable).")] = None,
    not_contains: Annotated[list[str] | None, typer.Option(help="Text the reply must not contain (repeatable).")] = None,
    regex: Annotated[str | None, typer.Option(help="A regex the reply must match.")] = None,
    as_user: Annotated[str | None, typer.Option("--as", help="Author of the commit (default: git user).")] = None,
) -> None:
    """Change a case's title, tags or expectations in one commit (any expectation option replaces them all)."""
    from bot.store.tables import session_scope
    from bot.triage import decisions as triage

    rt = open_runtime(existing_corpus=True)
    raw: list[dict] = [{"rubric": rubric}] if rubric else []
    raw += [{"contains": text} for text in contains or []]
    raw += [{"not_contains": text} for text in not_contains or []]
    raw += [{"regex": regex}] if regex else []
    expect = triage.parse_expectations(raw) if raw else None
    tags = [] if no_tags else tag
    if title is None and tags is None and expect is None:
        raise InvalidCaseError("say what to change: --title, --tag/--no-tags, or expectations (--rubric, --contains, …)")
    before = triage.editable(rt.corpus, triage.locate(rt.corpus, case_id))
    with session_scope(rt.engine) as session:
        case = triage.edit(corpus=rt.corpus, session=session, ref=case_id, actor=cli_author(as_user),
                           title=title, tags=tags, expect=expect)
    if case == before:
        typer.echo(f"nothing changed in {case.id}")
        return
    typer.echo(f"edited {case.id}: {case.title}")
    if expect is not None:
        for warning in triage.catches_failure(case, case.expect):
            typer.echo(f"warning: {warning}", err=True)


@app.command("reindex")
@cli_errors
def reindex(
    full: Annotated[bool, typer.Option("--full", help="Rebuild from every file, not only those git says changed.")] = False,
) -> None:
    """Bring the database's case index up to date with the files (`--full` rebuilds it from scratch)."""
    from bot.core.settings import get_settings
    from bot.corpus import current_index

    settings = get_settings()
    current = None if full else current_index.count(settings.database_url, open_corpus(settings))
    if current is not None:  # nothing to parse, known without SQLAlchemy
        (indexed, problems), mode, parsed = current, "unchanged", 0
    else:
        from bot.corpus.refresh import refresh
        from bot.store.tables import session_scope

        rt = open_runtime(existing_corpus=True)
        with session_scope(rt.engine) as session:
            done = refresh(session, rt.corpus, full=full)
        indexed, problems, mode, parsed = done.indexed, done.problems, done.mode, done.parsed
    for problem in problems:
        typer.echo(f"warning: skipped {problem}", err=True)
    how = {"full": "rebuilt from every file", "incremental": "files changed since the last index",
           "unchanged": "nothing changed since the last index"}[mode]
    typer.echo(f"indexed {indexed} case file(s); read {parsed} ({how})")


# ---------------------------------------------------------------- quarantine (issue 17)


@app.command("quarantine")
@cli_errors
def quarantine(
    case_id: str,
    reason: Annotated[str | None, typer.Option(help="Why (kept in the commit message).")] = None,
    as_user: Annotated[str | None, typer.Option("--as", help="Author of the commit (default: git user).")] = None,
) -> None:
    """Mark a flaky case quarantined: it still runs and is reported, but never fails the CI gate."""
    from bot.evals.quarantine import set_quarantine
    from bot.store.tables import session_scope

    rt = open_runtime(existing_corpus=True)
    with session_scope(rt.engine) as session:
        case, changed = set_quarantine(corpus=rt.corpus, session=session, ref=case_id, actor=cli_author(as_user),
                                       on=True, reason=reason)
    typer.echo(f"quarantined {case.id}: {case.title}" if changed else f"{case.id} was already quarantined")


@app.command("unquarantine")
@cli_errors
def unquarantine(
    case_id: str,
    as_user: Annotated[str | None, typer.Option("--as", help="Author of the commit (default: git user).")] = None,
) -> None:
    """Release a quarantined case: its failures count in the CI gate again."""
    from bot.evals.quarantine import set_quarantine
    from bot.store.tables import session_scope

    rt = open_runtime(existing_corpus=True)
    with session_scope(rt.engine) as session:
        case, changed = set_quarantine(corpus=rt.corpus, session=session, ref=case_id, actor=cli_author(as_user), on=False)
    typer.echo(f"released {case.id} from quarantine: {case.title}" if changed else f"{case.id} was not quarantined")

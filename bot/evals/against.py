"""`evalbot eval run --against REF`: the target as configured at another git ref, evaluated in the same run.

`materialize` copies `evalbot.toml` and the prompt files it names, as they were at REF, into a scratch folder and
loads that configuration; the run then asks both targets every case, records the other column in
the run's JSON document (`EvalRun.target["against"]`), and the report and JUnit show both side by side, so a
prompt change can be checked before it ships. Only the configuration and prompts come from REF: the code of a
`python` or `command` target is the working tree's. The other column is not re-run or compared with a baseline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.core.errors import ConfigError, CorpusError, EvalbotError
from bot.corpus.files import Corpus
from bot.evals.config import AnthropicTarget, EvalConfig, load_eval_config
from bot.evals.runner import CaseOutcome

AGAINST_KEY = "against"


@dataclass(frozen=True)
class Materialized:
    """The configuration at a ref, written out under `folder`."""

    ref: str
    commit: str
    folder: Path
    config: EvalConfig

    def corpus_root_for_target(self, corpus_root: Path) -> Path:
        """Where the target reads its files: the scratch folder for a prompt, the working tree for code."""
        return self.folder if isinstance(self.config.target, AnthropicTarget) else corpus_root


def materialize(corpus: Corpus, ref: str, into: Path) -> Materialized:
    """Write `evalbot.toml` and its prompt files as they were at `ref` into `into` and load them (ConfigError)."""
    repo = corpus.repo
    try:
        commit = repo.run("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").strip()
        prefix = corpus.root.resolve().relative_to(repo.top.resolve()).as_posix()
        prefix = "" if prefix == "." else prefix + "/"

        def copy(relative: str) -> None:
            target = into / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(repo.run("show", f"{commit}:{prefix}{relative}"), encoding="utf-8")

        copy("evalbot.toml")
        config = load_eval_config_at(into, copy)
    except CorpusError as exc:
        raise ConfigError(f"--against {ref}: {exc}") from None
    return Materialized(ref, commit, into, config)


def load_eval_config_at(folder: Path, copy: Callable[[str], None]) -> EvalConfig:
    """Load the copied evalbot.toml, fetching the prompt files it names first."""
    import tomllib

    data = tomllib.loads((folder / "evalbot.toml").read_text(encoding="utf-8"))
    prompt = (data.get("target") or {}).get("system_prompt")
    if isinstance(prompt, str) and prompt:
        copy(prompt)
    try:
        return load_eval_config(folder)
    except EvalbotError as exc:
        raise ConfigError(f"evalbot.toml at that ref: {exc}") from None


def summary(outcome: CaseOutcome) -> dict[str, Any]:
    """What the other column keeps of a case's outcome."""
    return {"status": outcome.status, "pass_rate": outcome.pass_rate, "trials": len(outcome.trials),
            "failure": outcome.failure}


def record(materialized: Materialized, label: str, cases: dict[str, dict[str, Any]], changes: list[str]) -> dict[str, Any]:
    """The JSON-ready other column: ref, commit, target label, what differs, and each case's result (`summary`)."""
    return {"ref": materialized.ref, "commit": materialized.commit, "label": label, "changes": changes, "cases": cases}


@dataclass(frozen=True)
class AgainstColumn:
    """The other column of a run made with --against, as compare_runs returns it."""

    ref: str
    commit: str
    label: str | None
    changes: list[str]
    cases: dict[str, dict[str, Any]]

    @property
    def passed(self) -> int:
        return sum(c.get("status") == "pass" for c in self.cases.values())

    @classmethod
    def from_info(cls, data: dict[str, Any] | None) -> AgainstColumn | None:
        if not data:
            return None
        return cls(str(data.get("ref")), str(data.get("commit")), data.get("label"), list(data.get("changes") or []),
                   dict(data.get("cases") or {}))

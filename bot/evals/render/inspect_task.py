"""The corpus as an Inspect AI eval that runs as exported: a `.jsonl` dataset plus a task file beside it
(`inspect eval <name>_task.py`).

The task replays each case with evalbot.toml's system prompt and target model (`max_tokens` too), scores it with
evalbot's deterministic graders (the source of `portable_graders`, embedded, so evalbot need not be installed) and,
for cases with rubrics, with `model_graded_qa` by the judge model.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bot.corpus.schema import Case, expectation_kind, expectation_value
from bot.evals import config as evalconfig
from bot.evals.render import portable_graders
from bot.evals.targets import replay_messages

GRADERS_MARK = "# ---- evalbot's deterministic graders (bot/evals/render/portable_graders.py) ----"
TASK_MARK = "# ---- the Inspect AI task ----"


def inspect_sample(case: Case) -> dict[str, Any]:
    """One Inspect AI sample (the fields of `inspect_ai.dataset.Sample`): the target is the case's rubrics."""
    return {
        "id": case.id,
        "input": replay_messages(case),
        "target": [expectation_value(e) for e in case.expect if expectation_kind(e) == "rubric"],
        "metadata": {"title": case.title, "tags": list(case.tags), "permalink": case.source.permalink,
                     "expect": [e.model_dump(mode="json") for e in case.expect]},
    }


def inspect_dataset(cases: Sequence[Case]) -> str:
    """The cases as an Inspect AI JSONL dataset."""
    return "".join(json.dumps(inspect_sample(case), ensure_ascii=False) + "\n" for case in cases)


def _graders_source() -> str:
    source = Path(portable_graders.__file__).read_text(encoding="utf-8")
    body = source.split('"""', 2)[2]  # without the module docstring
    return body.replace("from __future__ import annotations\n", "").strip() + "\n"


_TASK = '''
from inspect_ai import Task, task
from inspect_ai.dataset import json_dataset
from inspect_ai.model import ChatMessageSystem, GenerateConfig, get_model
from inspect_ai.scorer import CORRECT, INCORRECT, Score, Target, accuracy, model_graded_qa, scorer
from inspect_ai.solver import Generate, TaskState, generate, solver

DATASET = Path(__file__).with_name(DATASET_NAME)


@solver
def evalbot_system_prompt():
    """evalbot.toml's system prompt before the replayed turns (not a template: braces stay as written)."""

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        if SYSTEM_PROMPT:
            state.messages.insert(0, ChatMessageSystem(content=SYSTEM_PROMPT))
        return state

    return solve


@scorer(metrics=[accuracy()])
def evalbot_expectations():
    """CORRECT when every deterministic expectation of the case passes, as evalbot grades it."""

    async def score(state: TaskState, target: Target) -> Score:
        output = state.output.completion
        verdicts = [(e, *grade(e, output)) for e in state.metadata["expect"] if next(iter(e)) in DETERMINISTIC]
        failed = [f"{next(iter(e))}: {why}" for e, ok, why in verdicts if not ok]
        return Score(value=INCORRECT if failed else CORRECT, answer=output,
                     explanation="; ".join(failed) or f"{len(verdicts)} expectation(s) passed")

    return score


@scorer(metrics=[accuracy()])
def evalbot_rubrics():
    """The judge model against each rubric of the case (CORRECT when the case has none)."""
    graders = {}

    async def score(state: TaskState, target: Target) -> Score:
        if not target.target:
            return Score(value=CORRECT, explanation="no rubric")
        results = []
        for rubric in target.target:
            if rubric not in graders:
                judge = get_model(JUDGE_MODEL, config=GenerateConfig(max_tokens=JUDGE_MAX_TOKENS)) if JUDGE_MODEL else None
                graders[rubric] = model_graded_qa(model=judge)
            grader = graders[rubric]
            results.append(await grader(state, Target(rubric)))
        failed = [r for r in results if r.value != CORRECT]
        return Score(value=INCORRECT if failed else CORRECT, explanation="\\n".join(r.explanation or "" for r in results))

    return score


@task
def evalbot_corpus():
    return Task(
        dataset=json_dataset(str(DATASET)),
        solver=[evalbot_system_prompt(), generate()],
        scorer=[evalbot_expectations(), *([evalbot_rubrics()] if HAS_RUBRICS else [])],
        config=GenerateConfig(max_tokens=MAX_TOKENS),
        model=MODEL,
    )
'''


def inspect_task_file(cases: Sequence[Case], *, dataset_name: str, config: evalconfig.EvalConfig | None,
                      system_prompt: str | None) -> str:
    """The Python task file that runs `dataset_name` (a .jsonl beside it) as evalbot would."""
    target = config.target if config is not None else None
    model = f"anthropic/{target.model}" if isinstance(target, evalconfig.AnthropicTarget) else None
    max_tokens = target.max_tokens if isinstance(target, evalconfig.AnthropicTarget) else None
    judge = f"anthropic/{config.judge.model}" if config is not None else None
    has_rubrics = any(expectation_kind(e) == "rubric" for case in cases for e in case.expect)
    header = (
        f'"""Inspect AI task for {len(cases)} evalbot case(s), written by `evalbot corpus export --format inspect`.\n\n'
        f"Run it with `inspect eval {dataset_name.removesuffix('.jsonl')}_task.py` (needs inspect-ai, jsonschema and\n"
        "ANTHROPIC_API_KEY); `--model` runs another model.\n"
        '"""\n\n'
        "from __future__ import annotations\n\nfrom pathlib import Path\n\n"
        f"DATASET_NAME = {dataset_name!r}\n"
        f"SYSTEM_PROMPT = {system_prompt!r}\n"
        f"MODEL = {model!r}  # evalbot.toml [target]"
        + ("" if model else f": kind {target.kind if target else 'none'} has no Inspect model, pass --model") + "\n"
        f"MAX_TOKENS = {max_tokens!r}\n"
        f"JUDGE_MODEL = {judge!r}  # evalbot.toml [judge]\n"
        f"JUDGE_MAX_TOKENS = {config.judge.max_tokens if config is not None else None!r}\n"
        f"HAS_RUBRICS = {has_rubrics!r}\n\n"
    )
    return header + GRADERS_MARK + "\n" + _graders_source() + "\n\n" + TASK_MARK + _TASK

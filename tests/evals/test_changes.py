"""What changed since the baseline (bot/evals/changes.py): snapshots of the evaluated system and their differences."""

from __future__ import annotations

from bot.evals.changes import describe, snapshot
from bot.evals.config import load_eval_config


def test_a_prompt_edit_is_named_with_its_commit_and_diff_stat(corpus_dir):
    config = load_eval_config(corpus_dir)
    before = snapshot(corpus_dir, config, corpus_commit="1111111aaaa")
    prompt = corpus_dir / "prompts" / "system.md"
    lines = prompt.read_text().splitlines()
    prompt.write_text("\n".join(lines[:-1] + ["Always answer in French.", "Never promise refunds.", "Sign as Acme."]) + "\n")
    after = snapshot(corpus_dir, config, corpus_commit="abc1234def")
    assert describe(before, after) == ["system prompt changed in abc1234: +3 −1 lines"]


def test_target_and_judge_settings_and_the_evalbot_version_are_named(corpus_dir):
    config = load_eval_config(corpus_dir)
    before = snapshot(corpus_dir, config, corpus_commit="1111111")
    changed = config.model_copy(update={
        "target": config.target.model_copy(update={"model": "claude-sonnet-4-6", "max_tokens": 512}),
        "judge": config.judge.model_copy(update={"model": "claude-opus-4-5"}),
    })
    after = {**snapshot(corpus_dir, changed, corpus_commit="1111111"), "evalbot": "9.9.9"}
    assert describe(before, after) == [
        "target max_tokens changed: 1024 → 512",
        "target model changed: 'claude-haiku-4-5' → 'claude-sonnet-4-6'",
        "judge model changed: 'claude-sonnet-4-6' → 'claude-opus-4-5'",
        f"evalbot {before['evalbot']} → 9.9.9",
    ]


def test_nothing_changed_suggests_model_drift(corpus_dir):
    config = load_eval_config(corpus_dir)
    same = snapshot(corpus_dir, config, corpus_commit="1111111")
    assert describe(same, same) == ["same config and prompts: model drift?"]
    moved = {**same, "corpus_commit": "2222222ffff"}
    assert describe(same, moved) == ["same config and prompts (corpus moved to 2222222: cases only): model drift?"]


def test_an_unknown_snapshot_says_nothing():
    assert describe(None, {"prompts": {}}) == []

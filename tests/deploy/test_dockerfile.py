"""The Dockerfile's build: the dependency layer depends on pyproject.toml and uv.lock alone, the build context
leaves out what is local, and the runtime stage writes only to its data volume."""

from __future__ import annotations

import shlex

from tests.helpers.dockerfile import runtime_stage
from tests.helpers.paths import REPO


def build_stage_lines() -> list[str]:
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    build = text.split("\nFROM ", 2)[0] if text.startswith("FROM ") else text.split("\nFROM ", 2)[1]
    return [line.strip() for line in build.replace("\\\n", " ").splitlines() if line.strip() and not line.startswith("#")]


def test_the_dependency_layer_is_built_from_the_lock_alone():
    lines = build_stage_lines()
    first_sync = next(i for i, line in enumerate(lines) if line.startswith("RUN uv sync"))
    copied = [shlex.split(line)[1:-1] for line in lines[:first_sync] if line.startswith("COPY ") and "--from" not in line]
    assert sorted(name for sources in copied for name in sources) == ["pyproject.toml", "uv.lock"]
    assert "--no-install-project" in lines[first_sync]


def test_the_build_context_leaves_out_local_state():
    ignored = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines() if not line.startswith("#")}
    assert {".venv", ".git", ".env", "*.db", "deploy/tls"} <= ignored


def test_the_image_writes_only_to_its_data_volume():
    stage = runtime_stage()
    assert stage.env["EVALBOT_DATA_DIR"] in stage.volumes
    assert stage.user not in (None, "root", "0")
    assert "EVALBOT_DATABASE_URL" not in stage.env and "EVALBOT_CORPUS_DIR" not in stage.env  # both derive from it

"""Reading the Dockerfile's runtime stage, and laying out its /app in a temporary folder to run without Docker."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers.paths import REPO


@dataclass
class Stage:
    """The instructions of the Dockerfile's last stage that decide how the container runs."""

    workdir: str = "/"
    env: dict[str, str] = field(default_factory=dict)
    user: str | None = None
    volumes: list[str] = field(default_factory=list)
    expose: list[str] = field(default_factory=list)
    copies: list[tuple[str, str]] = field(default_factory=list)  # (context source, destination), not --from
    healthcheck: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)


def _logical_lines(text: str) -> list[str]:
    lines, current = [], ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(current + stripped)
        current = ""
    return lines


def _expand(value: str, env: dict[str, str]) -> str:
    for name, known in env.items():
        value = value.replace(f"${{{name}}}", known).replace(f"${name}", known)
    return value


def runtime_stage(path: Path = REPO / "Dockerfile") -> Stage:
    """The last stage of the Dockerfile as data (ENV values expanded as Docker does, `$PATH` left for the host)."""
    stage = Stage()
    for line in _logical_lines(path.read_text(encoding="utf-8")):
        word, _, rest = line.partition(" ")
        word, rest = word.upper(), rest.strip()
        if word == "FROM":
            stage = Stage()
        elif word == "WORKDIR":
            stage.workdir = rest
        elif word == "ENV":
            for pair in shlex.split(rest):
                name, _, value = pair.partition("=")
                stage.env[name] = _expand(value, {k: v for k, v in stage.env.items() if k != "PATH"})
        elif word == "USER":
            stage.user = rest
        elif word == "VOLUME":
            stage.volumes = json.loads(rest) if rest.startswith("[") else rest.split()
        elif word == "EXPOSE":
            stage.expose = rest.split()
        elif word == "COPY" and not rest.startswith("--"):
            *sources, dest = shlex.split(rest)
            stage.copies += [(source, dest) for source in sources]
        elif word == "HEALTHCHECK":
            stage.healthcheck = json.loads(rest.split(" CMD ", 1)[1])
        elif word == "CMD":
            stage.cmd = json.loads(rest)
    return stage


def world_reachable(path: Path) -> bool:
    """Every folder above `path` can be entered and `path` read by any user (so an unprivileged user can run it)."""
    path = path.resolve()
    for parent in path.parents:
        if not parent.stat().st_mode & stat.S_IXOTH:
            return False
    return bool(path.stat().st_mode & stat.S_IROTH)


def venv_site_packages() -> Path:
    return Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"


def lay_out_app(app: Path, stage: Stage, interpreter: Path) -> None:
    """Build what the image has in /app: the context files COPY'd into it, and a venv whose site-packages holds
    the `bot` package (installed non-editable in the image) plus this checkout's dependencies; `evalbot` is its
    console script. The venv runs `interpreter`, which must be this Python's version."""
    for source, dest in stage.copies:
        target = app / Path(dest).relative_to(stage.workdir) if dest.startswith(stage.workdir) else None
        if target is None:
            continue
        if (REPO / source).is_dir():
            shutil.copytree(REPO / source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / source, target)
    venv = app / ".venv"
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site = venv / "lib" / version / "site-packages"
    (venv / "bin").mkdir(parents=True)
    site.mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text(f"home = {interpreter.parent}\ninclude-system-site-packages = false\n")
    (venv / "bin" / "python").symlink_to(interpreter)
    shutil.copytree(REPO / "bot", site / "bot", ignore=shutil.ignore_patterns("__pycache__"))
    (site / "dependencies.pth").write_text(f"{venv_site_packages()}\n")
    script = venv / "bin" / "evalbot"
    # What uv writes for `[project.scripts] evalbot = "bot.cli:app"` (the guard matters: the capture worker is spawned).
    script.write_text(f"#!{venv / 'bin' / 'python'}\nimport sys\nfrom bot.cli import app\n"
                      "if __name__ == '__main__':\n    sys.exit(app())\n")
    script.chmod(0o755)


def make_read_only(folder: Path) -> None:
    """Take every write bit off `folder` and what it holds (the image's /app is root-owned)."""
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            target = Path(root) / name
            if not target.is_symlink():
                target.chmod(target.stat().st_mode & ~0o222)
    folder.chmod(folder.stat().st_mode & ~0o222)


def make_writable(folder: Path) -> None:
    for root, dirs, _files in os.walk(folder):
        for name in dirs:
            (Path(root) / name).chmod(0o755)
    folder.chmod(0o755)

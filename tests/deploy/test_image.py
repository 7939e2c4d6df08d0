"""The image's exact command, run without Docker: a read-only /app, a fresh data folder, an unprivileged user.

The Dockerfile's runtime stage is read (WORKDIR, ENV, COPY into /app, CMD, HEALTHCHECK); its /app is laid out in a
temporary folder and made read-only, /data is an empty folder, and the CMD runs with only the three Slack settings
added (plus the fake Slack's URL and a free port). As root the process drops to `nobody`, as the image runs as
`evalbot`; otherwise it runs as the current user, whom the read-only folder stops all the same.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.slack import FakeSlack
from tests.helpers.dockerfile import (
    lay_out_app,
    make_read_only,
    make_writable,
    runtime_stage,
    venv_site_packages,
    world_reachable,
)
from tests.helpers.serving import free_port
from tests.helpers.slackbot import CHANNEL, seed

NOBODY = 65534


def _interpreter_for_nobody() -> Path | None:
    """A Python of this version that an unprivileged user can run (pyenv's under /root is not one)."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (Path(sys.executable), Path(sys.base_prefix) / "bin" / version, Path("/usr/bin") / version):
        if candidate.exists() and world_reachable(candidate):
            return candidate.resolve()
    return None


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        seed(fake)
        yield fake


@pytest.fixture
def box() -> Iterator[Path]:
    # Not tmp_path: pytest's base folder is private to its user, and the unprivileged user must enter this one.
    folder = Path(tempfile.mkdtemp(prefix="evalbot-image-"))
    folder.chmod(0o755)
    yield folder
    make_writable(folder)
    shutil.rmtree(folder, ignore_errors=True)


def _map(value: str, paths: dict[str, Path]) -> str:
    for inside, outside in paths.items():
        value = value.replace(inside, str(outside))
    return value


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError as exc:
        return 0, str(exc)


def test_the_images_command_starts_alone_on_a_fresh_data_folder_and_becomes_ready(slack, box):
    stage = runtime_stage()
    root = os.geteuid() == 0
    interpreter = _interpreter_for_nobody() if root else Path(sys.executable)
    if interpreter is None or (root and not world_reachable(venv_site_packages())):
        pytest.skip("no Python an unprivileged user can run on this machine")
    data_volume = stage.volumes[0]
    app, data, home = box / "app", box / "data", box / "home"
    lay_out_app(app, stage, interpreter)
    make_read_only(app)
    data.mkdir()
    home.mkdir()
    if root:
        os.chown(data, NOBODY, NOBODY)
        os.chown(home, NOBODY, NOBODY)
    paths = {stage.workdir: app, data_volume: data}
    port = free_port()
    (box / "gitconfig").write_text("")  # the image has no git identity of its own: evalbot names its commits
    env = {name: _map(value, paths).replace("$PATH", os.environ["PATH"]) for name, value in stage.env.items()}
    env.update({
        "HOME": str(home), "LANG": "C.UTF-8", "GIT_CONFIG_GLOBAL": str(box / "gitconfig"), "GIT_CONFIG_NOSYSTEM": "1",
        # The three settings the README asks for, and where the fake Slack and a free port are.
        "SLACK_BOT_TOKEN": "xoxb-test-token", "SLACK_APP_TOKEN": "xapp-test-token", "EVALBOT_CHANNEL": CHANNEL,
        "SLACK_API_URL": slack.api_url, "EVALBOT_PORT": str(port),
    })
    assert stage.cmd == ["evalbot", "serve"]
    command = [shutil.which(stage.cmd[0], path=env["PATH"]) or stage.cmd[0], *stage.cmd[1:]]
    assert command[0] == str(app / ".venv" / "bin" / "evalbot")
    log = open(box / "serve.log", "w")
    user = {"user": NOBODY, "group": NOBODY, "extra_groups": []} if root else {}
    proc = subprocess.Popen(command, cwd=_map(stage.workdir, paths), env=env, stdout=log, stderr=subprocess.STDOUT,
                            **user)
    try:
        for _ in range(120):
            assert proc.poll() is None, "the command exited:\n" + (box / "serve.log").read_text()
            try:
                slack.wait_connected(timeout=0.5)
                break
            except TimeoutError:
                continue
        else:
            pytest.fail("no Socket Mode connection in 60 s:\n" + (box / "serve.log").read_text())
        deadline = time.monotonic() + 30
        status, body = _get(port, "/readyz")
        while status != 200 and time.monotonic() < deadline:
            assert proc.poll() is None, "the command exited:\n" + (box / "serve.log").read_text()
            time.sleep(0.2)
            status, body = _get(port, "/readyz")
        assert (status, body) == (200, '{"ok": true, "problems": {}}'), (box / "serve.log").read_text()
        # The HEALTHCHECK's own command (run by Docker inside the container) says healthy.
        probe = [_map(part, paths) for part in stage.healthcheck]
        assert subprocess.run(probe, env=env, timeout=10, **user).returncode == 0
        # First start seeded the example corpus, committed, into the data folder; the database is there too.
        assert sorted(p.name for p in (data / "corpus" / "cases").iterdir()) == sorted(
            p.name for p in (app / "corpus-example" / "cases").iterdir())
        assert (data / "evalbot.db").is_file()
        history = subprocess.run(["git", "-C", str(data / "corpus"), "log", "--format=%an %s"], capture_output=True,
                                 text=True, env={**os.environ, "GIT_CONFIG_GLOBAL": str(box / "gitconfig"),
                                                 "GIT_CONFIG_PARAMETERS": f"'safe.directory={data / 'corpus'}'"})
        assert history.stdout.strip() == "evalbot Example corpus (seeded on first start)", history
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
            log.close()
    assert proc.returncode == 0, (box / "serve.log").read_text()
    assert "Traceback" not in (box / "serve.log").read_text(), (box / "serve.log").read_text()

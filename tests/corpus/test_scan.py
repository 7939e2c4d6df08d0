"""`evalbot corpus scan`: secrets in the corpus files and anywhere in their git history, by file, line and kind.

The secrets are fake and assembled from pieces, so secret scanners have nothing to flag in this file.
"""

from __future__ import annotations

import subprocess

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.corpus.scan import Finding, _added_blocks, scan_corpus, scan_files, scan_history

GITHUB = "ghp_" + "FakeGitHubToken0123456789abcdefghijk"
STRIPE = "sk_" + "live_" + "FakeStripeKey0123456789abcdef"
KEY_BODY = "MIIEowIBAAKCAQEAfakefakefakefakefakefakefakefakefakefakefake0123\nZmFrZSBrZXkgYm9keQ==\n"
RSA_KEY = "-----BEGIN " + "RSA PRIVATE KEY-----\n" + KEY_BODY + "-----END " + "RSA PRIVATE KEY-----\n"

runner = CliRunner()


def git(corpus_dir, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "PATH": "/usr/bin:/bin", "GIT_CONFIG_NOSYSTEM": "1",
           "HOME": str(corpus_dir)}
    return subprocess.run(["git", "-C", str(corpus_dir), *args], check=True, capture_output=True, text=True, env=env).stdout


def commit_all(corpus_dir, message: str) -> str:
    git(corpus_dir, "add", "-A")
    git(corpus_dir, "commit", "-qm", message)
    return git(corpus_dir, "rev-parse", "HEAD").strip()


def case_file(corpus_dir):
    return corpus_dir / "cases" / "tne841s8.yaml"


def test_a_clean_corpus_exits_0(corpus_dir):
    result = runner.invoke(app, ["corpus", "scan"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and "0 secret(s) in the files and git history" in result.stderr


def test_a_secret_planted_three_commits_back_is_found_with_file_line_and_kind(corpus_dir):
    path = case_file(corpus_dir)
    clean = path.read_text(encoding="utf-8")
    lines = clean.splitlines(keepends=True)
    planted = lines[:19] + [f"  content: my token is {GITHUB}, keep it\n"] + lines[20:]
    path.write_text("".join(planted), encoding="utf-8")
    leaked_in = commit_all(corpus_dir, "a case made elsewhere")
    path.write_text(clean, encoding="utf-8")
    commit_all(corpus_dir, "remove the token")
    (corpus_dir / "notes.md").write_text("nothing to see\n", encoding="utf-8")
    commit_all(corpus_dir, "notes")

    result = runner.invoke(app, ["corpus", "scan"])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [f"corpus/cases/tne841s8.yaml:20: github_token (history: commit {leaked_in[:12]})"]
    assert "Traceback" not in result.output and GITHUB not in result.output
    assert runner.invoke(app, ["corpus", "scan", "--no-history"]).exit_code == 0


def test_files_are_scanned_and_validate_reports_them(corpus_dir):
    (corpus_dir / "cases" / "x.md").write_text(f"line one\nexport STRIPE_KEY={STRIPE}\n", encoding="utf-8")
    assert scan_files(corpus_dir) == [Finding("corpus/cases/x.md", 2, "stripe_key")]
    result = runner.invoke(app, ["corpus", "validate"])
    assert result.exit_code == 1
    assert "corpus/cases/x.md:2: stripe_key: a secret (run `evalbot corpus scan`)" in result.stderr
    scanned = runner.invoke(app, ["corpus", "scan", "--no-history"])
    assert scanned.exit_code == 1 and scanned.stdout == "corpus/cases/x.md:2: stripe_key\n"


def test_history_finds_multi_line_keys_and_commit_messages(corpus_dir):
    (corpus_dir / "keys.txt").write_text("first\nsecond\n" + RSA_KEY, encoding="utf-8")
    key_commit = commit_all(corpus_dir, "add keys")
    (corpus_dir / "keys.txt").unlink()
    message_commit = commit_all(corpus_dir, f"drop keys (was {STRIPE})")
    findings = scan_history(corpus_dir)
    assert Finding("corpus/keys.txt", 3, "private_key", key_commit) in findings
    assert Finding("commit message", 1, "stripe_key", message_commit) in findings
    assert len(findings) == 2
    assert scan_corpus(corpus_dir) == findings  # the files are clean now


def test_a_corpus_outside_git_scans_its_files_only(tmp_path):
    folder = tmp_path / "loose"
    folder.mkdir()
    (folder / "a.yaml").write_text(f"title: {GITHUB}\n", encoding="utf-8")
    assert scan_corpus(folder) == [Finding("loose/a.yaml", 1, "github_token")]


@pytest.mark.parametrize(
    ("log", "blocks"),
    [
        pytest.param(
            ["\x00commit c1", "diff --git a/f b/f", "--- a/f", "+++ b/f", "@@ -0,0 +1,3 @@", "+one", "++++ two", "+three"],
            [("c1", "f", 1, ["one", "+++ two", "three"])],
            id="added-line-that-looks-like-a-header",
        ),
        pytest.param(
            ["\x00commit c2", "--- a/f", "+++ b/f", "@@ -3,2 +3 @@", "-old", "-older", "+new", "@@ -9 +8,2 @@", "-x", "+y", "+z"],
            [("c2", "f", 3, ["new"]), ("c2", "f", 8, ["y", "z"])],
            id="replacements",
        ),
        pytest.param(
            ["\x00commit c3", "--- a/f", "+++ /dev/null", "@@ -1,2 +0,0 @@", "-gone", "-too"], [], id="deletion",
        ),
        pytest.param(
            ["\x00commit c4", '+++ "b/odd\\tname"', "@@ -0,0 +1 @@", "+x"], [("c4", "odd\\tname", 1, ["x"])],
            id="quoted-path",
        ),
    ],
)
def test_added_blocks_follow_the_hunk_counts(log, blocks):
    assert list(_added_blocks(log)) == blocks


def test_scan_takes_a_corpus_folder_made_elsewhere(tmp_path):
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "case.yaml").write_text(f"title: fine\nnote: {GITHUB}\n", encoding="utf-8")
    git(other, "init", "-q")
    commit_all(other, "import")
    result = runner.invoke(app, ["corpus", "scan", str(other)])
    assert result.exit_code == 1
    assert result.stdout.splitlines()[0] == "elsewhere/case.yaml:2: github_token"
    assert len(result.stdout.splitlines()) == 2 and "(history: commit " in result.stdout.splitlines()[1]
    missing = runner.invoke(app, ["corpus", "scan", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "is not a folder" in missing.stderr and "Traceback" not in missing.output

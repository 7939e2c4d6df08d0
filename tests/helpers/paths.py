"""Where the repository and its example corpus are, for tests that start `evalbot` or read the shipped files."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
EXAMPLE_CORPUS = REPO / "corpus"

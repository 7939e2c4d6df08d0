"""The newest schema revision, read from the migration files themselves (no alembic, no SQLAlchemy).

Every command opens the database, and importing alembic costs a quarter of a second, so a database already at the
newest revision is recognised by comparing `alembic_version` with the revision no version file builds on.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

VERSIONS = Path(__file__).parent / "versions"

_REVISION = re.compile(r"^(down_revision|revision)\s*(?::[^=]+)?=\s*(None|'[^']*'|\"[^\"]*\")", re.MULTILINE)


@cache
def declared_head() -> str | None:
    """The one revision no other version file names as its `down_revision`, or None if that is not clear-cut."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in VERSIONS.glob("*.py"):
        found: dict[str, str] = {match[1]: match[2] for match in _REVISION.finditer(path.read_text(encoding="utf-8"))}
        if "revision" not in found:
            return None
        revisions.add(found["revision"].strip("'\""))
        if found.get("down_revision", "None") != "None":
            parents.add(found["down_revision"].strip("'\""))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None

"""Triage: maintainers promote a candidate to a case, reject it, or edit a case.

`decisions` (promote, reject, edit, their previews, require_maintainer, parse_expectations): one code path for
the CLI and every Slack surface.
"""

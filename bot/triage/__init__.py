"""Triage: maintainers promote a candidate to a case, reject it, or edit a case.

`decisions` (promote, reject, edit, their previews and state checks — promotable, rejectable, editable —
require_maintainer, parse_expectations): one code path for the CLI and every Slack surface, each a
compare-and-set inside the corpus lock. `history` (who last decided on a case, and when: the words of a
refusal when someone else got there first).
"""

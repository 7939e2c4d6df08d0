"""Rendering runs and cases for people and other tools.

`report` (format_comparison: plain text), `junit` (junit_xml) and `export` (export_cases: promptfoo, Inspect AI,
JSONL).
"""

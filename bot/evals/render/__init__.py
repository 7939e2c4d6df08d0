"""Rendering runs and cases for people and other tools.

`report` (format_comparison: plain text), `junit` (junit_xml) and `export` (export_corpus: promptfoo, Inspect AI,
JSONL), which builds on `promptfoo` (the config and its assertions), `jsregex` (Python regexes as JavaScript),
`inspect_task` (the dataset and task file) and `portable_graders` (evalbot's graders, embedded in that task).
"""

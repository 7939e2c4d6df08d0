"""Corpus: the git-tracked case files and what is derived from them.

`schema` (Case, Turn, Source, the Expectation union), `casefile` (dump_case, parse_case), `ids` (case_id_for,
check_prefix), `files` (Corpus: atomic writes, one commit per change of exactly what it wrote, undo, the
writers lock, case_digest), `gitrepo` (GitRepo, Author, identity_env: commits and rebases that need no git
identity from the machine), `index` (the case_index rows: listing), `refresh` (the index follows git: only what
changed is parsed again), `changes` (what git says changed since a commit), `verdicts` (validate's verdicts,
kept per file: only what changed is read again), `bulk` (many files parsed in worker processes), `similarity`
(near_duplicates), `seed` (prepare_data: the data folder and the example corpus on first start), `scan` (secrets
in the files and their git history: scan_corpus, Finding) and `recovery` (recover: settle the folder after a
crash, at start).
"""

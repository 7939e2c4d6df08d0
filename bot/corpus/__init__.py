"""Corpus: the git-tracked case files and what is derived from them.

`schema` (Case, Turn, Source, the Expectation union), `casefile` (dump_case, parse_case), `ids` (case_id_for,
check_prefix), `files` (Corpus: atomic writes, one commit per change, the writers lock), `gitrepo` (GitRepo,
Author), `index` (the case_index table kept in step with the files: reindex, listing), `similarity`
(near_duplicates) and `recovery` (recover: settle the folder after a crash, at start).
"""

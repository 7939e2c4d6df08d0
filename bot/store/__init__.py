"""Store: the state database.

`tables` (the SQLModel tables, get_engine, session_scope, advisory_lock, migrate), `claims` (claim, release,
refresh, forget_claims: the JobClaim rows that make something happen once across processes), `dedupe`
(forget_old: drop inbox rows past Slack's retry window) and `migrations` (alembic revisions, applied at start).
"""

"""Store: the state database.

`tables` (the SQLModel tables, get_engine, ack_engine, session_scope, advisory_lock, migrate), `writes` (write,
insert_ignore, upsert: one statement that commits as it completes, for the writes near Slack's ack), `claims`
(claim, release, refresh, forget_claims: the JobClaim rows that make something happen once across processes), `dedupe`
(forget_old: drop inbox rows past Slack's retry window) and `migrations` (alembic revisions, applied at start).
"""

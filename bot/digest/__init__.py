"""Digest: what a finished run tells the channel.

`data` (build_digest, load_digest, pending_digest_runs: the digest as plain data) and `chart` (trend_png).
Closing the loop with flaggers: `followups` (what to tell them and when), `outbox` (recorded before sent, sent once),
`people` (flaggers and the weekly line in the digest) and `home` (what App Home shows one person).
"""

"""Digest: what a finished run tells the channel.

`data` (build_digest, load_digest, pending_digest_runs: the digest as plain data) and `chart` (trend_png).
"""

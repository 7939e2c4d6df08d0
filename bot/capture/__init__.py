"""Capture: a flagged conversation becomes a candidate case.

`candidate` (capture, FlagRequest, ThreadSource: the Slack-free capture of a thread), `message` (Message,
SharedFile: the normalised Slack message the edge hands over), `transcripts` (pasted transcripts and attached
message files), `drafting` (make_drafter: Claude drafts a title and a rubric) and `inbox` (the durable flag
inbox: enqueue before the ack, claim under a lease, complete, fail with backoff; `warm` its connections at start).
"""

"""Capture: a flagged conversation becomes a candidate case.

`candidate` (capture, FlagRequest, ThreadSource: the Slack-free capture of a thread), `transcripts` (pasted
transcripts and attached message files), `drafting` (make_drafter: Claude drafts a title and a rubric),
`inbox` (the durable flag inbox: enqueue before the ack, claim under a lease, complete, fail with backoff) and
`catchup` (catch_up: flags made while the bot was not connected, from the channel's history).
"""

"""Capture: a flagged conversation becomes a candidate case.

`candidate` (capture, FlagRequest, ThreadSource: the Slack-free capture of a thread), `message` (Message,
SharedFile: the normalised Slack message the edge hands over), `transcripts` (pasted
transcripts and attached message files) and `drafting` (make_drafter: Claude drafts a title and a rubric).
"""

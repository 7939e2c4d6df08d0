"""Block Kit builders: pure functions from domain data to Slack messages, modals and views.

`capture` (the capture reply and case card), `triage` (help, lists, case detail, outcomes), `modals` (promote,
edit, reject and the reading of what was typed) and `digest` (the digest message and its thread).
`followups` (follow-ups in flag threads) and `home` (the App Home view).
"""

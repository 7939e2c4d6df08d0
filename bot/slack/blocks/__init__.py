"""Block Kit builders: pure functions from domain data to Slack messages, modals and views.

`kit` (Slack's limits, escape, clip after escaping, lengths in UTF-16 units) is what every builder builds with:
`capture` (the capture reply and case card), `triage` (help, lists, case detail, outcomes), `modals` (promote,
edit, reject and the reading of what was typed) and `digest` (the digest message and its thread).
`followups` (follow-ups in flag threads) and `home` (the App Home view).
"""

"""What listeners do around a domain call: capture and answer, triage with permissions, post digests.

`flagging` (handle_flag), `capture_worker` (CaptureWorker: captures in a child process), `triage_ops`
(TriageOps), `permissions` (Maintainers), `digest_post` (publish, post_pending_digests) and `notify` (tell_user).
`followups` (FollowUpSender/FollowUpService: the outbox sent to flag threads, paced).
"""

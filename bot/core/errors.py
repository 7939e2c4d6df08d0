"""Every exception evalbot raises on purpose, in one place; the edges (CLI, Slack) translate them for people.

Every message is written for the person who has to act on it: what went wrong and what to do. The intermediate
bases let an edge catch one class for one kind of answer:

- `ConfigError` (exit 2): the setup is wrong: a setting, evalbot.toml, the database, Slack's tokens.
- `RequestError`: what a person asked cannot be done as asked (a bad case id, a case in the wrong state, no
  permission, a refused capture); the message is shown to them as it is.
- `CallFailed`: a call to a model or to the system under test failed (`TransientError` when worth retrying).
- `StateError`: shared state is busy or gone (a run in progress, a run taken over, a corpus git cannot use).
- `SlackCallError`: Slack refused a call evalbot made on someone's behalf.
"""

from __future__ import annotations


class EvalbotError(Exception):
    """Base of every error evalbot raises deliberately."""

    exit_code = 1


# ---------------------------------------------------------------- setup


class ConfigError(EvalbotError):
    """A setting or evalbot.toml value is missing or malformed."""

    exit_code = 2


class DatabaseUnavailableError(ConfigError):
    """The database cannot be reached or opened (server down, wrong URL, unwritable path)."""


class SlackUnavailableError(ConfigError):
    """Slack refused a token or cannot be reached, so the bot cannot sign in."""


# ---------------------------------------------------------------- what a person asked for


class RequestError(EvalbotError):
    """What a person asked cannot be done as asked; the message tells them why and what to do instead."""


class InvalidCaseError(RequestError):
    """A case file or case data does not match the schema."""


class CaseRefError(RequestError):
    """A case id or prefix a person typed does not name exactly one case."""


class InvalidIdError(CaseRefError):
    """A case id or prefix typed by a user is not acceptable (bad characters, too short, a path)."""


class CaseNotFoundError(CaseRefError):
    """No case matches the id or prefix."""


class AmbiguousIdError(CaseRefError):
    """A prefix matches more than one case."""


class CaseStateError(RequestError):
    """The operation does not apply to the case in its current state (e.g. promoting a promoted case)."""


class PermissionDeniedError(RequestError):
    """The acting user may not do this."""


class AlreadyRejectedError(RequestError):
    """The flagged message belongs to a case that was rejected."""


class CaptureError(RequestError):
    """A conversation could not be captured (Slack refused, message gone, nothing to capture)."""


class UsageError(RequestError):
    """A subcommand was typed without what it needs."""


class RunNotFoundError(RequestError):
    """No run has that id (or no finished run exists yet)."""


# ---------------------------------------------------------------- calls out


class CallFailed(EvalbotError):
    """A call to a model or to the system under test failed for good (after any retries)."""

    def __init__(self, message: str, *, attempts: int = 1):
        super().__init__(message)
        self.attempts = attempts


class TransientError(CallFailed):
    """A call failed in a way worth retrying (rate limit, overload, 5xx, connection, timeout)."""

    def __init__(self, message: str, *, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class SlackCallError(EvalbotError):
    """Slack refused a call evalbot made for someone."""


class SlackRefusedError(SlackCallError):
    """Slack refused a call the user is waiting on (e.g. opening a modal after its trigger expired)."""


class DigestPostError(SlackCallError):
    """Slack refused the digest for good; the run stays pending and is posted at the next start."""


# ---------------------------------------------------------------- shared state


class StateError(EvalbotError):
    """Shared state is busy, taken or unusable right now."""


class CorpusError(StateError):
    """The corpus folder or its git repository is unusable."""


class RebaseStoppedError(CorpusError):
    """Rebasing onto the shared remote stopped (a conflict); it was aborted, and changes are refused until fixed."""


class RunInProgressError(StateError):
    """An eval run is already in progress."""


class RunTakenOverError(StateError):
    """Another process drives (or finished) this batch run."""


# ---------------------------------------------------------------- exports (corpus export)


class ExportRefusedError(RequestError):
    """A case cannot be exported to another eval tool with evalbot's meaning; the message says why."""

"""The exceptions evalbot raises on purpose; the edges (CLI, Slack) translate them for people.

Every message is written for the person who has to act on it: what went wrong and what to do.
"""


class EvalbotError(Exception):
    """Base of every error evalbot raises deliberately."""

    exit_code = 1


class ConfigError(EvalbotError):
    """A setting or evalbot.toml value is missing or malformed."""

    exit_code = 2


class DatabaseUnavailableError(ConfigError):
    """The database cannot be reached or opened (server down, wrong URL, unwritable path)."""


class SlackUnavailableError(ConfigError):
    """Slack refused a token or cannot be reached, so the bot cannot sign in."""


class InvalidCaseError(EvalbotError):
    """A case file or case data does not match the schema."""


class InvalidIdError(EvalbotError):
    """A case id or prefix typed by a user is not acceptable (bad characters, too short, a path)."""


class CaseNotFoundError(EvalbotError):
    """No case matches the id or prefix."""


class AmbiguousIdError(EvalbotError):
    """A prefix matches more than one case."""


class CaseStateError(EvalbotError):
    """The operation does not apply to the case in its current state (e.g. promoting a promoted case)."""


class PermissionDeniedError(EvalbotError):
    """The acting user may not do this."""


class AlreadyRejectedError(EvalbotError):
    """The flagged message belongs to a case that was rejected."""


class CaptureError(EvalbotError):
    """A conversation could not be captured (Slack refused, message gone, nothing to capture)."""


class CorpusError(EvalbotError):
    """The corpus folder or its git repository is unusable."""


class RunInProgressError(EvalbotError):
    """An eval run is already in progress."""

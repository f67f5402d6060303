"""One exception tree: every error the pipeline can explain to an operator in one line.

The Dagster layer turns a ``SisPipelinesError`` into a step failure with that line; anything
else is a bug and keeps its traceback. ``retryable`` says whether trying the same step again
later can help (a SIS that is down) or not (a missing secret, a broken file).
"""

from __future__ import annotations

from .secrets import redact


class SisPipelinesError(Exception):
    """The root: a message that names the tenant (and the collection or record) and says why.

    The message is cleaned of every secret the process holds and bounded in length here, for
    every error: a server's words (which may echo our own Authorization header) often are
    part of it."""

    retryable = False

    def __init__(self, *args: object) -> None:
        super().__init__(*(redact(a) if isinstance(a, str) else a for a in args))


class ConfigurationError(SisPipelinesError):
    """Something the operator sets up is missing or wrong: the tenants file, a secret."""


class MissingSecretError(ConfigurationError):
    """An environment variable the tenants file names is not set."""


class StoredStateError(SisPipelinesError):
    """What a step needs from an earlier step or night is not stored: says which to run first."""


class SourceError(SisPipelinesError):
    """A tenant's SIS, CSV drop or Canvas refused or failed (subclassed per domain)."""

"""One exception tree: every error the pipeline can explain to an operator in one line.

    SisPipelinesError                  a line that names the tenant and says what to do
    ├── UsageError                     a command's mistake (the CLI's exit code 2)
    ├── ConfigurationError             the tenants file, an environment variable
    │   ├── MissingSecretError
    │   └── TenantsFileError           (core/tenants.py)
    ├── StoredStateError               what a step needs is not stored: which step to run
    │   └── UploadUnsettled            (canvas/provision.py)
    ├── HeldElsewhere                  another run holds the tenant-night (core/locks.py)
    ├── CanvasCsvError                 (canvas/package.py)
    └── SourceError                    a SIS, a drop or Canvas refused or failed
        ├── OneRosterError             (oneroster/errors.py; PagingError)
        ├── BundleError                (oneroster/csv_bundle.py)
        ├── CanvasError, SisImportFailed
        └── GradesNotSent              (gpb/passback.py)

The Dagster layer turns one into a step failure with its line, the CLI into one line and exit
code 2; anything else is a bug and keeps its traceback. ``retryable`` is the one retry signal:
whether trying again later can help. For an HTTP answer the status decides it
(``retryable_status``); a failure without one (a timeout, a dropped connection, a cut body)
can be retried; a missing secret or a broken file cannot.
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


def retryable_status(status: int | None) -> bool:
    """Whether a request that got ``status`` may succeed later: throttled (429), timed out
    (408), a server's failure (5xx), or no answer at all (None). A refusal (401, 403, 404,
    422…) stays a refusal."""
    return status is None or status in (408, 425, 429) or status >= 500


class UsageError(SisPipelinesError):
    """An operator's mistake on the command line: one line that says what to do."""


class ConfigurationError(SisPipelinesError):
    """Something the operator sets up is missing or wrong: the tenants file, a secret."""


class MissingSecretError(ConfigurationError):
    """An environment variable the tenants file names is not set."""


class StoredStateError(SisPipelinesError):
    """What a step needs from an earlier step or night is not stored: says which to run first."""


class SourceError(SisPipelinesError):
    """A tenant's SIS, CSV drop or Canvas refused or failed (subclassed per domain).

    With an HTTP ``status``, whether it is ``retryable`` follows from it unless the raiser
    knows better (a 200 whose body was cut is worth another try)."""

    def __init__(self, *args: object, status: int | None = None, retryable: bool | None = None):
        super().__init__(*args)
        self.status = status
        if retryable is not None:
            self.retryable = retryable
        elif status is not None:
            self.retryable = retryable_status(status)

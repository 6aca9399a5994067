"""Typed failures that cross the Temporal boundary.

Each kind is an `ApplicationError` whose `type` is its class name, so a retry policy can list it
(`learnflow.policies.NON_RETRYABLE`) and an operator sees the same name in the UI. Raise the
class; do not build `ApplicationError(type="...")` by hand. The type names are part of recorded
histories: never rename one.
"""

from __future__ import annotations

from typing import Any, ClassVar

from temporalio.exceptions import ApplicationError


class LearnflowError(ApplicationError):
    """Base of the typed kinds: `type` is the class name; non-retryable unless a kind says not."""

    non_retryable_kind: ClassVar[bool] = True

    def __init__(self, message: str, *details: Any) -> None:
        super().__init__(
            message, *details, type=type(self).__name__, non_retryable=self.non_retryable_kind
        )


class UnknownSource(LearnflowError):
    """A catalog source name that no module in `sources/` defines (`sources.get_source`)."""


class UnknownArchiveSource(LearnflowError):
    """An archive source name that is not an archive source (OLX, Canvas, OCW)."""


class MissingBucket(LearnflowError):
    """The configured archive bucket does not exist: retrying cannot help."""


class InvalidPurge(LearnflowError):
    """A purge request whose retention is under one day."""


# HTTP refusals from `learnflow.http.PermanentHttpError` (its class name is its failure type).
PERMANENT_HTTP_ERROR = "PermanentHttpError"

NON_RETRYABLE: tuple[str, ...] = (
    PERMANENT_HTTP_ERROR,
    UnknownSource.__name__,
    UnknownArchiveSource.__name__,
    MissingBucket.__name__,
    InvalidPurge.__name__,
)

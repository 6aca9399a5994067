"""Errors the service returns: a `google.rpc.Status` with `ErrorInfo` on every error (AIP-193)
and `BadRequest` field violations for bad input. Never a stack trace: unexpected exceptions are
logged here and answered INTERNAL with a generic message.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable

import grpc
import structlog
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

log = structlog.get_logger(__name__)

DOMAIN = "search.learnflow"
# The call's request id (set by validation.RequestGuard): every error's ErrorInfo carries it, so
# a caller can quote it and an operator can find the call's log lines.
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)


class ServiceError(Exception):
    """An error with a status code and an AIP-193 reason (UPPER_SNAKE_CASE)."""

    code = code_pb2.INTERNAL
    reason = "INTERNAL"

    def __init__(self, message: str, reason: str | None = None, code: int | None = None):
        super().__init__(message)
        self.message = message
        if reason:
            self.reason = reason
        if code is not None:
            self.code = code

    def details(self) -> list:
        return []

    def status(self) -> status_pb2.Status:
        status = status_pb2.Status(code=self.code, message=self.message)
        rid = request_id_var.get()
        info = error_details_pb2.ErrorInfo(
            reason=self.reason, domain=DOMAIN, metadata={"request_id": rid} if rid else {}
        )
        status.details.add().Pack(info)
        for detail in self.details():
            status.details.add().Pack(detail)
        return status


class InvalidArgument(ServiceError):
    code = code_pb2.INVALID_ARGUMENT
    reason = "INVALID_ARGUMENT"

    # Violations echo the caller's values: bound them so the error always fits gRPC's 8 KB
    # trailer limit (an oversized trailer reaches the client as RESOURCE_EXHAUSTED instead).
    MAX_VIOLATIONS = 10
    MAX_TEXT = 200

    def __init__(self, violations: list[tuple[str, str]]):
        bounded = [
            (f[: self.MAX_TEXT], d if len(d) <= self.MAX_TEXT else d[: self.MAX_TEXT - 1] + "…")
            for f, d in violations[: self.MAX_VIOLATIONS]
        ]
        super().__init__("; ".join(f"{f}: {d}" for f, d in bounded))
        self.violations = bounded

    def details(self) -> list:
        return [
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=f, description=d)
                    for f, d in self.violations
                ]
            )
        ]


class NotFound(ServiceError):
    code = code_pb2.NOT_FOUND
    reason = "RESOURCE_NOT_FOUND"


class BackendUnavailable(ServiceError):
    """A backend failed or ran out of its budget while the client's deadline had not expired:
    UNAVAILABLE, which clients may retry."""

    code = code_pb2.UNAVAILABLE
    reason = "BACKEND_UNAVAILABLE"


class DeadlineExceeded(ServiceError):
    code = code_pb2.DEADLINE_EXCEEDED
    reason = "DEADLINE_EXCEEDED"


async def abort(context: grpc.aio.ServicerContext, error: ServiceError) -> None:
    await context.abort_with_status(rpc_status.to_status(error.status()))


def handles_errors(method: Callable) -> Callable:
    """Map `ServiceError`s to their status; anything else to INTERNAL without internals."""

    @functools.wraps(method)
    async def wrapper(self, request, context):
        try:
            return await method(self, request, context)
        except ServiceError as exc:
            await abort(context, exc)
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception:
            log.exception("rpc.failed", method=method.__name__)
            await abort(context, ServiceError("internal error", "INTERNAL"))

    return wrapper


def handles_stream_errors(method: Callable) -> Callable:
    """`handles_errors` for server-streaming methods (async generators)."""

    @functools.wraps(method)
    async def wrapper(self, request, context):
        try:
            async for item in method(self, request, context):
                yield item
        except ServiceError as exc:
            await abort(context, exc)
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception:
            log.exception("rpc.failed", method=method.__name__)
            await abort(context, ServiceError("internal error", "INTERNAL"))

    return wrapper

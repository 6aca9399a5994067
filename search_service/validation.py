"""One request-validation layer for every SearchService RPC, and the guard that applies it.

`check(request)` walks any request message by its descriptor, so a new field is covered the day
it is added: enum values must be defined (proto3 accepts unknown numbers), timestamps must be
real instants (year 1..9999, nanos 0..999,999,999), repeated fields have a limit each, strings a
length, `sort` is one key with at most one "-", and a request's work is bounded by a cost
budget (filter values, facets, autocomplete types). Method-specific checks (known values,
ranges) stay in `query.py` and the servicer; this layer is what every RPC gets before it runs.

`RequestGuard` is a server interceptor: it wraps each SearchService handler's deserializer so an
undecodable message (truncated, garbage, bad UTF-8 in a string) becomes INVALID_ARGUMENT instead
of grpc's UNKNOWN "Unexpected <class DecodeError>", runs `check`, gives the call a request id
(the caller's `x-request-id`, or a new one) that every log line and every error's ErrorInfo
carries, and turns any exception that escaped the servicer into INTERNAL without internal names.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import structlog
from google.protobuf import descriptor as pb_descriptor
from google.protobuf import message as pb_message

from search_service.errors import InvalidArgument, ServiceError, abort, request_id_var

log = structlog.get_logger(__name__)

PACKAGE = "learn.search.v1"
SERVICE_PREFIX = f"/{PACKAGE}.SearchService/"

# Largest number of values per repeated field, by "<Message>.<field>"; any repeated field not
# listed gets DEFAULT_REPEATED. Documented on the fields in search.proto and in the README.
DEFAULT_REPEATED = 100
REPEATED_LIMITS = {
    "ResourceFilter.id": 1000,
    "ContentFileFilter.id": 1000,
    "ContentFileFilter.resource_id": 1000,
    "ContentFileFilter.run_id": 1000,
    "SearchResourcesRequest.facets": 20,
    "SearchContentFilesRequest.facets": 10,
    "BatchGetResourcesRequest.ids": 100,
    "AutocompleteRequest.resource_types": 20,
}
# Longest string per field (characters); any other string field gets DEFAULT_STRING.
DEFAULT_STRING = 512
STRING_LIMITS = {
    # A learner may paste a paragraph (issue 15: 10 kB of text answers); the engines cap the
    # words they use, so a long query costs no more than a short one.
    "SearchResourcesRequest.query": 16_384,
    "SearchContentFilesRequest.query": 16_384,
    "StreamAnswerRequest.question": 2000,
    "SearchResourcesRequest.page_token": 2048,
    "SearchContentFilesRequest.page_token": 2048,
    "ListChangedResourcesRequest.page_token": 2048,
}
# The work one request may ask for, in units: a filter value costs 1, a facet (one more
# aggregation per request) 50, an autocomplete resource type (one more search) 50. A request
# over the budget is refused before it reaches an engine, so one caller cannot stall the others.
REQUEST_BUDGET = 2000
FACET_COST = 50
AUTOCOMPLETE_TYPE_COST = 50
_FILTER_MESSAGES = {"ResourceFilter", "ContentFileFilter"}

_SORT = re.compile(r"^-?[a-z_]{1,40}$")
# google.protobuf.Timestamp's documented range: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z.
MIN_SECONDS = -62_135_596_800
MAX_SECONDS = 253_402_300_799
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


@dataclass
class _Walk:
    violations: list[tuple[str, str]]
    cost: int = 0


def check(request: pb_message.Message) -> None:
    """INVALID_ARGUMENT (BadRequest field violations) unless `request` passes every generic
    limit; pure, no I/O."""
    walk = _Walk([])
    _check_message(request, "", walk)
    name = request.DESCRIPTOR.name
    if name == "AutocompleteRequest":
        walk.cost += AUTOCOMPLETE_TYPE_COST * len(set(request.resource_types))  # type: ignore[attr-defined]
    if walk.cost > REQUEST_BUDGET:
        walk.violations.append(
            (
                "request",
                f"asks for {walk.cost} units of work, over the budget of {REQUEST_BUDGET} "
                f"(a filter value costs 1, a facet {FACET_COST}, an autocomplete type "
                f"{AUTOCOMPLETE_TYPE_COST})",
            )
        )
    if walk.violations:
        raise InvalidArgument(walk.violations)


def _check_message(msg: pb_message.Message, prefix: str, walk: _Walk) -> None:
    mname = msg.DESCRIPTOR.name
    if mname == "Timestamp" and msg.DESCRIPTOR.full_name == "google.protobuf.Timestamp":
        _check_timestamp(msg, prefix.rstrip("."), walk.violations)
        return
    for field, value in msg.ListFields():
        path = f"{prefix}{field.name}"
        key = f"{mname}.{field.name}"
        repeated = field.is_repeated
        values = list(value) if repeated else [value]
        if repeated:
            limit = REPEATED_LIMITS.get(key, DEFAULT_REPEATED)
            if len(values) > limit:
                walk.violations.append((path, f"at most {limit} values (got {len(values)})"))
                values = values[:limit]  # still check what would be used, bounded
            if mname in _FILTER_MESSAGES:
                walk.cost += len(values)
            if field.name == "facets":
                walk.cost += FACET_COST * len(set(values))
        if field.type == pb_descriptor.FieldDescriptor.TYPE_ENUM:
            defined = field.enum_type.values_by_number
            for v in values:
                if v not in defined:
                    options = ", ".join(str(n) for n in sorted(defined))
                    walk.violations.append((path, f"unknown value {v}; one of {options}"))
                    break
        elif field.type == pb_descriptor.FieldDescriptor.TYPE_STRING:
            limit = STRING_LIMITS.get(key, DEFAULT_STRING)
            if any(len(v) > limit for v in values):
                walk.violations.append((path, f"at most {limit} characters"))
            if field.name == "sort" and value and not _SORT.fullmatch(value):
                walk.violations.append((path, "one sort key, optionally prefixed by one '-'"))
        elif field.type == pb_descriptor.FieldDescriptor.TYPE_MESSAGE:
            for i, v in enumerate(values):
                _check_message(v, f"{path}[{i}]." if repeated else f"{path}.", walk)


def _check_timestamp(ts: Any, path: str, violations: list[tuple[str, str]]) -> None:
    if not MIN_SECONDS <= ts.seconds <= MAX_SECONDS:
        violations.append((path, "must be between years 1 and 9999"))
    if not 0 <= ts.nanos <= 999_999_999:
        violations.append((f"{path}.nanos", "must be between 0 and 999,999,999"))


# -- the guard --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Undecodable:
    """What the wrapped deserializer returns for bytes that are not a valid request."""

    message_type: str


def _deserializer(inner: Callable[[bytes], Any], message_type: str) -> Callable[[bytes], Any]:
    def deserialize(raw: bytes) -> Any:
        try:
            return inner(raw)
        except Exception:
            # DecodeError (truncated, garbage, bad UTF-8 in a string field) and anything else a
            # parser raises: the handler answers INVALID_ARGUMENT. Raising here would reach the
            # client as UNKNOWN with the exception's class name.
            return Undecodable(message_type)

    return deserialize


def request_id(metadata: dict[str, Any]) -> str:
    """The caller's `x-request-id` when it is a short token, else a new one."""
    given = metadata.get("x-request-id")
    if isinstance(given, str) and _REQUEST_ID.fullmatch(given):
        return given
    return uuid.uuid4().hex


def _admit(request: Any) -> None:
    if isinstance(request, Undecodable):
        raise InvalidArgument(
            [("request", f"not a valid {request.message_type} message (truncated or malformed)")]
        )
    check(request)


@contextlib.asynccontextmanager
async def _call(context: grpc.aio.ServicerContext, method: str, rid: str):
    """One call's scope: its request id (for logs and ErrorInfo), and every error answered with
    its status — ServiceErrors as they say, anything unexpected as INTERNAL."""
    token = request_id_var.set(rid)
    try:
        with structlog.contextvars.bound_contextvars(request_id=rid, rpc=method):
            yield
    except ServiceError as exc:
        await abort(context, exc)
    except (asyncio.CancelledError, grpc.aio.AbortError):
        raise
    except Exception:
        log.exception("rpc.internal_error", method=method)
        await abort(context, ServiceError("internal error", "INTERNAL"))
    finally:
        request_id_var.reset(token)


def _guard_unary(behavior: Callable[..., Awaitable[Any]], method: str, rid: str):
    async def guarded(request: Any, context: grpc.aio.ServicerContext) -> Any:
        async with _call(context, method, rid):
            _admit(request)
            return await behavior(request, context)

    return guarded


def _guard_stream(behavior: Callable[..., Any], method: str, rid: str):
    async def guarded(request: Any, context: grpc.aio.ServicerContext) -> Any:
        async with _call(context, method, rid):
            _admit(request)
            async for item in behavior(request, context):
                yield item

    return guarded


class RequestGuard(grpc.aio.ServerInterceptor):
    """Decode errors → INVALID_ARGUMENT, `check` on every request, a request id, and INTERNAL
    (logged with the id) for anything unexpected. Install after the auth interceptor, so an
    unauthenticated caller learns nothing about validation."""

    def __init__(self, prefix: str = SERVICE_PREFIX) -> None:
        self.prefix = prefix

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method_path = handler_call_details.method
        if handler is None or not method_path.startswith(self.prefix):
            return handler
        method = method_path.rsplit("/", 1)[-1]
        rid = request_id(dict(handler_call_details.invocation_metadata or ()))
        message_type = f"{method}Request"
        deserialize = _deserializer(handler.request_deserializer, message_type)
        kw = {
            "request_deserializer": deserialize,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                _guard_unary(handler.unary_unary, method, rid), **kw
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                _guard_stream(handler.unary_stream, method, rid), **kw
            )
        return handler  # the service has no client-streaming methods

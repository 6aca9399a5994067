"""Bearer-JWT authentication for the gRPC service (Keycloak access tokens).

Validation follows reference/performance-reliability.md §13: RS256 pinned (never taken from the
token), the key chosen by `kid` from a JWKS (URL, cached, refetched once on an unknown kid, or a
file), exact issuer, audience containing ours, exp/nbf with a small leeway, and `typ` = Bearer
when present so Keycloak ID tokens are refused. Health and reflection stay open.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import jwt
import structlog

log = structlog.get_logger(__name__)

ALGORITHMS = ["RS256"]
OPEN_METHOD_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
# The verified claims of the current call, for handlers and logs.
current_claims: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "current_claims", default=None
)


class AuthError(Exception):
    pass


@dataclass
class AuthConfig:
    issuer: str
    audience: str
    jwks_url: str = ""
    jwks_file: str = ""
    leeway_seconds: float = 30.0
    jwks_cache_seconds: float = 300.0
    # An unknown kid refetches the JWKS at most this often (a flood of bad kids is not a DoS).
    jwks_min_refetch_seconds: float = 30.0

    def __post_init__(self) -> None:
        if not (self.jwks_url or self.jwks_file):
            raise ValueError("auth needs a JWKS URL or file")
        if not self.issuer or not self.audience:
            raise ValueError("auth needs an issuer and an audience")


@dataclass
class JwtVerifier:
    config: AuthConfig
    _keys: dict[str, Any] = field(default_factory=dict)
    _fetched_at: float = 0.0
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def _load(self) -> None:
        if self.config.jwks_file:
            data = json.loads(await asyncio.to_thread(Path(self.config.jwks_file).read_text))
        else:
            async with httpx.AsyncClient(timeout=5.0) as client:
                resp = await client.get(self.config.jwks_url)
                resp.raise_for_status()
                data = resp.json()
        keys = {}
        for jwk in jwt.PyJWKSet.from_dict(data).keys:
            if jwk.key_id and (jwk.algorithm_name in ALGORITHMS or not jwk.algorithm_name):
                keys[jwk.key_id] = jwk.key
        self._keys = keys
        self._fetched_at = time.monotonic()

    async def _key(self, kid: str) -> Any:
        age = time.monotonic() - self._fetched_at
        if kid in self._keys and age < self.config.jwks_cache_seconds:
            return self._keys[kid]
        async with self._lock:
            age = time.monotonic() - self._fetched_at
            stale = age >= self.config.jwks_cache_seconds
            may_refetch = not self._fetched_at or age >= self.config.jwks_min_refetch_seconds
            if stale or (kid not in self._keys and may_refetch):
                try:
                    await self._load()
                except (httpx.HTTPError, OSError, ValueError, jwt.PyJWTError) as exc:
                    log.warning("auth.jwks_unavailable", error=str(exc))
                    if kid not in self._keys:
                        raise AuthError("signing keys unavailable") from exc
        if kid not in self._keys:
            raise AuthError("unknown signing key")
        return self._keys[kid]

    async def verify(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AuthError("malformed token") from exc
        if header.get("alg") not in ALGORITHMS:
            raise AuthError("token algorithm not allowed")
        key = await self._key(str(header.get("kid") or ""))
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                audience=self.config.audience,
                issuer=self.config.issuer,
                leeway=self.config.leeway_seconds,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise AuthError(f"invalid token: {exc}") from exc
        if claims.get("typ") not in (None, "Bearer"):
            raise AuthError("not an access token")
        return claims


def _deny(handler: grpc.RpcMethodHandler, message: str) -> grpc.RpcMethodHandler:
    async def abort(request: Any, context: grpc.aio.ServicerContext) -> None:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    async def abort_stream(request: Any, context: grpc.aio.ServicerContext):
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)
        yield  # pragma: no cover - makes this an async generator

    kw = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(abort, **kw)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(abort_stream, **kw)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(abort, **kw)
    return grpc.stream_stream_rpc_method_handler(abort_stream, **kw)


class JwtAuthInterceptor(grpc.aio.ServerInterceptor):
    """UNAUTHENTICATED unless the call carries `authorization: Bearer <valid JWT>`."""

    def __init__(
        self, verifier: JwtVerifier, open_prefixes: tuple[str, ...] = OPEN_METHOD_PREFIXES
    ):
        self.verifier = verifier
        self.open_prefixes = open_prefixes

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(self.open_prefixes):
            return handler
        metadata = dict(handler_call_details.invocation_metadata or ())
        value = metadata.get("authorization", "")
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _deny(handler, "missing bearer token")
        try:
            claims = await self.verifier.verify(token.strip())
        except AuthError as exc:
            log.info("auth.denied", method=handler_call_details.method, reason=str(exc))
            return _deny(handler, str(exc))
        current_claims.set(claims)
        return handler

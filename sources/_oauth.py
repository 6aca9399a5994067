"""OAuth2 client-credentials tokens for sources that need them (edX catalog, Sloan Executive Ed).

Both APIs take `grant_type=client_credentials` with `token_type=jwt` and answer a JWT that is sent
as `Authorization: JWT <token>`. Tokens are cached per (token URL, client id) until shortly before
they expire, so a crawl of many pages asks for one token. Secrets and tokens are never logged.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from learnflow.http import PermanentHttpError

if TYPE_CHECKING:
    from learnflow.http import SourceHttp

# Refresh this many seconds before the token says it expires (clock skew, a slow page).
EXPIRY_MARGIN_SECONDS = 60.0
# When the token endpoint does not say how long a token lives.
DEFAULT_TTL_SECONDS = 300.0


class TokenError(PermanentHttpError):
    """The token endpoint answered something that is not a token (not worth retrying)."""


@dataclass
class _Cached:
    token: str
    expires_at: float


@dataclass
class TokenCache:
    """Access tokens by (token URL, client id), valid until `expires_at` on `clock`."""

    clock: Callable[[], float] = time.monotonic
    _tokens: dict[tuple[str, str], _Cached] = field(default_factory=dict)
    _locks: dict[tuple[str, str], asyncio.Lock] = field(default_factory=dict)

    def invalidate(self, token_url: str, client_id: str) -> None:
        self._tokens.pop((token_url, client_id), None)

    def clear(self) -> None:
        self._tokens.clear()

    async def token(
        self,
        http: SourceHttp,
        token_url: str,
        client_id: str,
        client_secret: SecretStr | str,
        *,
        headers: dict[str, str] | None = None,
    ) -> str:
        """A valid token, from the cache or from one POST to the token endpoint."""
        key = (token_url, client_id)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            cached = self._tokens.get(key)
            if cached and cached.expires_at > self.clock():
                return cached.token
            secret = (
                client_secret.get_secret_value()
                if isinstance(client_secret, SecretStr)
                else client_secret
            )
            response = await http.request(
                "POST",
                token_url,
                data={
                    "grant_type": "client_credentials",
                    "client_id": client_id,
                    "client_secret": secret,
                    "token_type": "jwt",
                },
                headers=headers,
            )
            assert response is not None  # not_found_ok is False: a 404 raised
            token, ttl = _read_token(response.content)
            self._tokens[key] = _Cached(token, self.clock() + max(0.0, ttl - EXPIRY_MARGIN_SECONDS))
            return token


def _read_token(body: bytes) -> tuple[str, float]:
    try:
        data: Any = json.loads(body)
    except ValueError as exc:
        raise TokenError("token endpoint answered non-JSON") from exc
    if not isinstance(data, dict) or not isinstance(data.get("access_token"), str):
        raise TokenError("token endpoint answer has no access_token")
    try:
        ttl = float(data.get("expires_in") or DEFAULT_TTL_SECONDS)
    except (TypeError, ValueError):
        ttl = DEFAULT_TTL_SECONDS
    return data["access_token"], ttl


TOKENS = TokenCache()
"""The process-wide cache the extractors use (tests may `TOKENS.clear()`)."""


async def jwt_headers(
    http: SourceHttp,
    token_url: str,
    client_id: str,
    client_secret: SecretStr | str,
    *,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """Headers for an API call: `Authorization: JWT <token>` plus `extra`."""
    token = await TOKENS.token(http, token_url, client_id, client_secret, headers=extra)
    return {**(extra or {}), "Authorization": f"JWT {token}"}

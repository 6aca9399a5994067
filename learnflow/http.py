"""The HTTP client every source uses: timeouts, size caps, host allow-list, retry on 429/5xx.

Retries here are short and in-process (a page that flickers); the activity's RetryPolicy is the
durable retry on top. A non-retryable error (other 4xx, a refused host, an oversized body)
is raised as `PermanentHttpError` so the activity can fail without retrying.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
from collections.abc import AsyncIterator, Mapping
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import structlog

log = structlog.get_logger(__name__)


class SourceHttpError(Exception):
    """Base class: an HTTP problem talking to a source."""


class TransientHttpError(SourceHttpError):
    """Worth retrying: 429, 5xx, timeouts, connection errors."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class PermanentHttpError(SourceHttpError):
    """Not worth retrying: other 4xx, a host outside the allow-list, an oversized body."""


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    import datetime as _dt

    return max(0.0, (when - _dt.datetime.now(_dt.UTC)).total_seconds())


class SourceHttp:
    """An httpx.AsyncClient restricted to a source's hosts."""

    def __init__(
        self,
        allowed_hosts: set[str] | None = None,
        *,
        timeout: float = 30.0,
        max_bytes: int = 50 * 1024 * 1024,
        user_agent: str = "learnflow",
        attempts: int = 4,
        max_backoff: float = 30.0,
        allow_private: bool = False,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        self.allowed_hosts = {h.lower() for h in allowed_hosts} if allowed_hosts else None
        self.max_bytes = max_bytes
        self.attempts = attempts
        self.max_backoff = max_backoff
        # Loopback/private addresses are refused unless the configured host is one (tests, demo).
        self.allow_private = allow_private
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            follow_redirects=False,
            headers={"User-Agent": user_agent},
            transport=transport,
        )

    async def __aenter__(self) -> SourceHttp:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    def allow(self, url: str) -> None:
        """Add the host of a configured URL to the allow-list."""
        host = (urlsplit(url).hostname or "").lower()
        if self.allowed_hosts is None:
            self.allowed_hosts = set()
        self.allowed_hosts.add(host)

    def _check_url(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise PermanentHttpError(f"refused URL scheme {parts.scheme!r}: {url}")
        if parts.username or parts.password or "\\" in url:
            raise PermanentHttpError(f"refused URL with credentials or backslash: {url}")
        host = (parts.hostname or "").lower()
        if self.allowed_hosts is not None and host not in self.allowed_hosts:
            raise PermanentHttpError(f"refused host {host!r}: not among the source's hosts")
        try:
            addr = ipaddress.ip_address(host)
        except ValueError:
            return
        if not self.allow_private and (addr.is_private or addr.is_loopback or addr.is_link_local):
            raise PermanentHttpError(f"refused private address {host}")

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        data: Any = None,
        json: Any = None,
        not_found_ok: bool = False,
    ) -> httpx.Response | None:
        """Send with retries on transient errors; return the response (body read, size-capped)."""
        self._check_url(url)
        last: TransientHttpError | None = None
        for attempt in range(1, self.attempts + 1):
            try:
                response = await self._send(method, url, params, headers, data, json, not_found_ok)
            except TransientHttpError as exc:
                last = exc
                if attempt == self.attempts:
                    break
                delay = exc.retry_after
                if delay is None:
                    delay = min(self.max_backoff, 0.2 * 2**attempt) * (0.5 + random.random() / 2)
                delay = min(delay, self.max_backoff)
                log.info(
                    "http.retry", url=url, attempt=attempt, delay=round(delay, 2), error=str(exc)
                )
                await asyncio.sleep(delay)
                continue
            if response.status_code == 404 and not_found_ok:
                return None
            return response
        assert last is not None
        raise last

    async def _send(
        self, method, url, params, headers, data, json, not_found_ok=False
    ) -> httpx.Response:
        try:
            req = self._client.build_request(
                method, url, params=params, headers=headers, data=data, json=json
            )
            response = await self._client.send(req, stream=True)
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            raise TransientHttpError(f"{type(exc).__name__} for {url}") from exc
        try:
            status = response.status_code
            if status == 429 or status >= 500:
                raise TransientHttpError(
                    f"HTTP {status} from {url}",
                    retry_after=_retry_after_seconds(response.headers.get("Retry-After")),
                )
            if 300 <= status < 400:
                raise PermanentHttpError(f"HTTP {status} redirect from {url} refused")
            if status >= 400 and status != 404:
                raise PermanentHttpError(f"HTTP {status} from {url}")
            if status == 404 and not not_found_ok:
                raise PermanentHttpError(f"HTTP 404 from {url}")
            declared = response.headers.get("Content-Length")
            if declared and int(declared) > self.max_bytes:
                raise PermanentHttpError(f"response of {declared} bytes over the cap from {url}")
            chunks = []
            size = 0
            try:
                async for chunk in response.aiter_raw():
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise PermanentHttpError(f"response over {self.max_bytes} bytes from {url}")
                    chunks.append(chunk)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                raise TransientHttpError(f"{type(exc).__name__} reading {url}") from exc
            body = b"".join(chunks)
            # Decode content-encoding ourselves: we read raw to count real bytes on the wire.
            response._content = _decode(body, response.headers.get("Content-Encoding"))
            return response
        finally:
            await response.aclose()

    async def get_bytes(self, url: str, **kwargs: Any) -> bytes | None:
        response = await self.request("GET", url, **kwargs)
        return None if response is None else response.content

    async def get_json(self, url: str, **kwargs: Any) -> Any:
        import json as _json

        body = await self.get_bytes(url, **kwargs)
        return None if body is None else _json.loads(body)

    async def paginate_next(
        self,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        max_pages: int = 10_000,
    ) -> AsyncIterator[tuple[bytes, str]]:
        """Follow DRF `next` links; a `next` on another host is refused, not followed."""
        import json as _json

        first_host = urlsplit(url).netloc
        next_url: str | None = url
        first = True
        for _ in range(max_pages):
            if not next_url:
                return
            body = await self.get_bytes(next_url, params=params if first else None, headers=headers)
            if body is None:
                raise PermanentHttpError(f"HTTP 404 from {next_url}")
            yield body, next_url
            first = False
            page = _json.loads(body)
            nxt = page.get("next") if isinstance(page, dict) else None
            if nxt and urlsplit(nxt).netloc != first_host:
                raise PermanentHttpError(f"`next` link leaves {first_host}: {nxt}")
            next_url = nxt
        raise PermanentHttpError(f"more than {max_pages} pages from {url}")


def _decode(body: bytes, encoding: str | None) -> bytes:
    if not encoding or encoding == "identity":
        return body
    if encoding == "gzip":
        import gzip

        return gzip.decompress(body)
    if encoding == "deflate":
        import zlib

        return zlib.decompress(body)
    return body

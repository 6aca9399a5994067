"""The HTTP client every source uses: timeouts, size caps, host allow-list, retry on 429/5xx.

Retries here are short and in-process (a page that flickers); the activity's RetryPolicy is the
durable retry on top. A non-retryable error (other 4xx, a refused host, an oversized body)
is raised as `PermanentHttpError` so the activity can fail without retrying.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import ipaddress
import os
import random
import re
import ssl
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import contextmanager
from email.utils import parsedate_to_datetime
from functools import cache
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import structlog

from learnflow import fastjson

log = structlog.get_logger(__name__)

T = TypeVar("T")


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


def _tls_context() -> ssl.SSLContext:
    """One verifying TLS context per process and CA bundle: building one loads the bundle,
    ~40 ms of CPU, which every fetch activity paid for its own client. httpx picks the bundle
    from SSL_CERT_FILE / SSL_CERT_DIR (`learn up --demo` points them at its proxy's CA), else
    certifi's; those variables are read here only as the key of that choice."""
    return _tls_context_for(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))


@cache
def _tls_context_for(cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    return httpx.create_ssl_context()


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
        page_prefetch: int = 0,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        self.allowed_hosts = {h.lower() for h in allowed_hosts} if allowed_hosts else None
        self.max_bytes = max_bytes
        self.attempts = attempts
        self.max_backoff = max_backoff
        # Loopback/private addresses are refused unless the configured host is one (tests, demo).
        self.allow_private = allow_private
        # `paginate` fetches up to this many numbered pages ahead (0: one page at a time).
        self.page_prefetch = page_prefetch
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            follow_redirects=False,
            headers={"User-Agent": user_agent},
            transport=transport,
            verify=_tls_context(),
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
        body = await self.get_bytes(url, **kwargs)
        return None if body is None else loads(body)

    async def paginate(
        self,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        max_pages: int = 10_000,
    ) -> AsyncIterator[JsonPage]:
        """Follow DRF `next` links, yielding each page parsed once; a `next` on another host is
        refused, not followed. With `page_prefetch`, a numbered `next` (`?page=N`, pages of the
        first's size up to its `count`) has the following pages requested ahead, side by side:
        a catalog's pages then arrive in about one page's latency, not one after another. Only
        the `next` chain is ever yielded: a prefetched page whose URL the chain does not reach
        (the catalog moved under the walk) is dropped and the walk goes on one page at a time."""
        first_host = urlsplit(url).netloc
        next_url: str | None = url
        ahead: dict[str, asyncio.Task[bytes | None]] = {}
        last_page: int | None = None
        try:
            for n in range(max_pages):
                if not next_url:
                    return
                task = ahead.pop(next_url, None)
                if task is None:
                    await _cancel(ahead)  # the chain left the prediction: drop it
                    body = await self.get_bytes(
                        next_url, params=params if n == 0 else None, headers=headers
                    )
                else:
                    body = await task
                if body is None:
                    raise PermanentHttpError(f"HTTP 404 from {next_url}")
                page = JsonPage(body, next_url)
                nxt, page_last = page.derive(_drf_links)
                if n == 0:
                    last_page = page_last
                if nxt and urlsplit(nxt).netloc == first_host and last_page and self.page_prefetch:
                    self._prefetch(ahead, nxt, last_page, headers)
                yield page
                if nxt and urlsplit(nxt).netloc != first_host:
                    raise PermanentHttpError(f"`next` link leaves {first_host}: {nxt}")
                next_url = nxt
            raise PermanentHttpError(f"more than {max_pages} pages from {url}")
        finally:
            await _cancel(ahead)

    def _prefetch(
        self,
        ahead: dict[str, asyncio.Task[bytes | None]],
        nxt: str,
        last_page: int,
        headers: Mapping[str, str] | None,
    ) -> None:
        """Request the numbered pages from `nxt` on, up to `page_prefetch` in flight."""
        match = _PAGE_PARAM.search(urlsplit(nxt).query)
        if match is None:
            return
        start = int(match.group(2))
        for page in range(start, min(start + self.page_prefetch, last_page + 1)):
            page_url = _with_page(nxt, page)
            if page_url not in ahead:
                ahead[page_url] = asyncio.create_task(self.get_bytes(page_url, headers=headers))


_UNPARSED: Any = object()


class JsonPage:
    """A JSON page as served (`body`: what the fetch stores), parsed when `data` is first read.

    `derive(fn)` is `fn(data)` remembered by the page's sha256 in this process: what the walk
    and the extractors read from a page (its `next` link, its items' count, their ids) comes
    without parsing a page served again byte for byte, as an unchanged re-run's pages are (a
    2 MB catalog page is ~12 ms of parsing on the worker's event loop, 6 pages a source at 10k
    resources, 51 at 100k). `fn` is a module-level function of the parsed page returning an
    immutable value; a page whose `fn` raises is not remembered."""

    __slots__ = ("_data", "_sha256", "body", "url")

    def __init__(self, body: bytes, url: str, data: Any = _UNPARSED):
        self.body = body
        self.url = url
        self._data = data
        self._sha256: bytes | None = None

    @property
    def data(self) -> Any:
        if self._data is _UNPARSED:
            self._data = loads(self.body)
        return self._data

    @property
    def sha256(self) -> bytes:
        if self._sha256 is None:
            self._sha256 = hashlib.sha256(self.body).digest()
        return self._sha256

    def derive(self, fn: Callable[[Any], T]) -> T:
        key = (fn, self.sha256)
        with _derived_lock:
            if key in _derived:
                _derived.move_to_end(key)
                return _derived[key]
        value = fn(self.data)
        with _derived_lock:
            _derived[key] = value
            while len(_derived) > DERIVED_PAGES_KEPT:
                _derived.popitem(last=False)
        return value


# Facts derived from pages, by (function, page sha256); a few small values per page, ~100
# pages a 100k-resource catalog.
DERIVED_PAGES_KEPT = 4096
_derived: OrderedDict[tuple[Callable[[Any], Any], bytes], Any] = OrderedDict()
_derived_lock = threading.Lock()


def _drf_links(data: Any) -> tuple[str | None, int | None]:
    """A DRF page's `next` link, and the last page number its `count` implies."""
    nxt = data.get("next") if isinstance(data, dict) else None
    return nxt, _last_page(data)


def loads(body: bytes) -> Any:
    """`json.loads` (its values, mostly by orjson: `fastjson`) with the cyclic collector paused.
    A 2 MB catalog page parses into ~10^5 containers; with the collector on, that allocation
    burst sets off full collections of the worker's whole heap (measured: ~0.1 s on every other
    page). Parsed JSON holds no cycles, so pausing loses nothing."""
    with collector_paused():
        return fastjson.loads(body)


# Pauses in flight, process-wide (the collector's switch is the process's, the pauses' threads
# are not): it goes back on when the last one ends, if it was on when the first one began.
_pause_lock = threading.Lock()
_pauses = 0
_resume = False


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off for an allocation burst that makes no cycles (a parsed
    page, a page's models): what it would collect waits for its next run. Pauses overlap (pages
    transformed side by side in threads): the first one to end must not switch the collector
    back on under another's burst (bench.ingest at 100k: 18 full collections of ~0.3 s, over the
    edX programs page's millions of parsed context objects, 14.6 s in the collector in all)."""
    global _pauses, _resume
    with _pause_lock:
        if _pauses == 0:
            _resume = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _pause_lock:
            _pauses -= 1
            if _pauses == 0 and _resume:
                gc.enable()


# `page=N` in a query string (DRF's PageNumberPagination)
_PAGE_PARAM = re.compile(r"(^|&)page=(\d+)(?=&|$)")


def _with_page(url: str, page: int) -> str:
    parts = urlsplit(url)
    query = _PAGE_PARAM.sub(lambda m: f"{m.group(1)}page={page}", parts.query, count=1)
    return parts._replace(query=query).geturl()


def _last_page(first: Any) -> int | None:
    """The last page number a DRF answer implies (its `count` over its first page's size)."""
    if not isinstance(first, dict):
        return None
    count, results = first.get("count"), first.get("results")
    if not isinstance(count, int) or not isinstance(results, list) or not results:
        return None
    return -(-count // len(results))


async def _cancel(tasks: dict[str, asyncio.Task[bytes | None]]) -> None:
    """Cancel prefetches nobody will read; their errors (if any) are the dropped pages'."""
    for task in tasks.values():
        task.cancel()
    await asyncio.gather(*tasks.values(), return_exceptions=True)
    tasks.clear()


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

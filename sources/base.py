"""What every source module provides, and the helpers transforms share.

A source module defines `SOURCE = Source(...)`: an async `extract` that does the I/O and yields raw
pages, and a pure `transform(kind, payload, context)` that turns one raw page into resources (or
feed items) and quarantines what it cannot read. The registry in `sources/__init__.py` finds the
modules by name, so adding a source is adding one file.
"""

from __future__ import annotations

import html
import json
import pickle
import re
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Hashable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import nh3
from dateutil import parser as dateparser

from learnflow.models import (
    ContentFile,
    FeedItem,
    Quarantined,
    Resource,
    TransformOutput,
    ViewEvent,
)

if TYPE_CHECKING:
    import asyncpg

    from learnflow.http import SourceHttp
    from learnflow.settings import Settings

EASTERN = ZoneInfo("US/Eastern")


@dataclass(frozen=True)
class RawPage:
    """One raw payload as the source sent it (bytes are stored as-is in the blob store)."""

    kind: str
    body: bytes
    item_count: int
    url: str | None = None
    # sha256 of `body` when the extractor has it already (`JsonPage.sha256`): the fetch records
    # it (`PageRef.sha256`) without hashing the page again.
    sha256: bytes | None = None


@dataclass
class ExtractContext:
    """What an extractor may touch: the source's HTTP client, settings and the config it reads."""

    http: SourceHttp
    settings: Settings
    options: dict[str, Any] = field(default_factory=dict)
    # Read access to the catalog, for extractors that fetch what the catalog lists (marketing
    # pages); None where no database is at hand (unit tests, `learn transform`).
    pool: asyncpg.Pool | None = None


@dataclass(frozen=True)
class IndexedPage:
    """A context page as its items by key (`Source.index_context`), each item pickled and
    unpickled only when a transform asks for its key. A page of programs reads the few courses
    its programs name, not every course page of the catalog again: edX and MITx Online's
    programs pages each parsed all the course pages (quadratic: bench.ingest at 100k, ~5 CPU-s
    of parsing for 10 programs pages). Built once per page content and worker process
    (activities/ingest_cpu.py keeps them by the page's sha256); pickle, not JSON, so every
    value (a NaN, an integer beyond 64 bits) comes back exactly as the page was parsed."""

    items: Mapping[Hashable, tuple[bytes, ...]]  # key -> its items, in page order
    size: int  # bytes held
    # What the page's own transform derived from its items for the transforms that read it as
    # context, by item key (edX: what a program reads from each course, `ProgramMember`). Filled
    # while this process transforms the page (`transforming`); a process that holds the page but
    # did not transform it has none, and the reading transform derives the values itself.
    # Not counted in `size`: small beside the items (edX at 10k: ~270 B a course against
    # ~1.6 KB of pickled course).
    derived: dict[Hashable, Any] = field(default_factory=dict, compare=False, repr=False)

    def get(self, key: Hashable) -> list[Any]:
        """The items of this key, in page order (none: an empty list)."""
        return [load_item(b) for b in self.items.get(key, ())]


_page_being_transformed: ContextVar[IndexedPage | None] = ContextVar(
    "page_being_transformed", default=None
)


@contextmanager
def transforming(page: IndexedPage | None) -> Iterator[None]:
    """Run a context page's transform with `page`, its indexed form in this process, as the one
    `derived_for_readers` gives to the transform."""
    token = _page_being_transformed.set(page)
    try:
        yield
    finally:
        _page_being_transformed.reset(token)


def derived_for_readers() -> dict[Hashable, Any] | None:
    """Inside `transforming(page)`: the page's `derived`, where its transform leaves what the
    transforms reading it as context would otherwise compute again; None elsewhere (a test,
    `learn transform`, a page nobody reads)."""
    page = _page_being_transformed.get()
    return None if page is None else page.derived


def load_item(data: bytes) -> Any:
    """An item of an `IndexedPage` (pickled in this process by `index_items`, never read in)."""
    return pickle.loads(data)  # noqa: S301 - bytes this process pickled, from a parsed page


def index_items(page: Any, key_of: Callable[[Any], Hashable | None]) -> IndexedPage:
    """A page's items (`items_of`) by `key_of(item)`; items whose key is None are left out.
    Raises as `items_of` does, or TypeError for an unhashable key: the caller then hands the
    transform the parsed page itself, which fails (or not) as it always did."""
    items: dict[Hashable, list[bytes]] = {}
    size = 0
    for item in items_of(page):
        key = key_of(item)
        if key is None:
            continue
        data = pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)
        items.setdefault(key, []).append(data)
        size += len(data)
    return IndexedPage({k: tuple(v) for k, v in items.items()}, size)


Extractor = Callable[[ExtractContext], AsyncIterator[RawPage]]
Transform = Callable[[str, Any, Sequence[Any]], TransformOutput]


@dataclass(frozen=True)
class Source:
    """A source of the seed's ingestion table."""

    name: str
    etl_source: str
    kinds: tuple[str, ...]
    transform: Transform
    extract: Extractor | None = None
    # Kinds whose pages a kind's transform reads as context (e.g. MITx Online programs need courses).
    context_kinds: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # A context page by key (`IndexedPage`), for transforms that look its items up by key; they
    # read a plain parsed page too (tests, `learn transform`). None: context pages go parsed.
    index_context: Callable[[Any], IndexedPage] | None = None
    # Resource types / feed types this source owns: prune only ever touches these.
    resource_types: tuple[str, ...] = ()
    feed_types: tuple[str, ...] = ()
    platform: str | None = None
    hosts: tuple[str, ...] = ()
    credentials_setting: str | None = None
    task_queue: str = "default"
    # Optional check: returns why the source cannot run (missing credentials), or None.
    unavailable: Callable[[Settings], str | None] | None = None
    # The URLs this source is configured to call: their hosts join `hosts` in the allow-list.
    urls: Callable[[Settings], list[str]] | None = None
    description: str = ""
    # The transform compares dates with "now" (a module `clock`): the same raw page can transform
    # differently tomorrow, so a page is only skipped as unchanged within the same UTC day.
    reads_clock: bool = False

    def allowed_hosts(self, settings: Settings) -> set[str]:
        from urllib.parse import urlsplit

        hosts = {h.lower() for h in self.hosts}
        for url in self.urls(settings) if self.urls else []:
            hosts.add((urlsplit(url).hostname or "").lower())
        return hosts

    def transform_payload(
        self, kind: str, payload: Any, context: Sequence[Any] = ()
    ) -> TransformOutput:
        if kind not in self.kinds:
            raise ValueError(
                f"source {self.name!r} has no kind {kind!r}; kinds: {', '.join(self.kinds)}"
            )
        return self.transform(kind, payload, context)


# ----------------------------------------------------------------------------------------------
# helpers for transforms (pure)


def items_of(payload: Any) -> list[Any]:
    """A page is a DRF page (`{"results": [...]}`), a JSON:API page (`{"data": [...]}`) or a list."""
    if isinstance(payload, list):
        return payload
    if isinstance(payload, dict):
        for key in ("results", "data", "items"):
            if isinstance(payload.get(key), list):
                return payload[key]
    raise ValueError("payload is neither a list nor a page with results")


def item_count(payload: Any) -> int:
    """How many items a page holds (`items_of`): for `JsonPage.derive`."""
    return len(items_of(payload))


def transform_each(
    source: str,
    items: Iterable[Any],
    one: Callable[[Any], Resource | FeedItem | Iterable[Resource | FeedItem] | None],
    key_of: Callable[[Any], str | None] = lambda item: None,
) -> TransformOutput:
    """Apply `one` to every item; an item that raises is quarantined with its reason."""
    out = TransformOutput()
    for item in items:
        try:
            produced = one(item)
        except Exception as exc:
            try:
                raw_key = key_of(item)
                key = None if raw_key is None else str(raw_key)[:1000]
            except Exception:
                key = None
            out.quarantined.append(
                Quarantined(
                    source=source,
                    item_key=key,
                    reason=f"{type(exc).__name__}: {exc}",
                    raw=json.dumps(item, default=str)[:1_000_000],
                )
            )
            continue
        if produced is None:
            continue
        for obj in produced if isinstance(produced, list | tuple) else [produced]:
            if isinstance(obj, Resource):
                out.resources.append(obj)
            elif isinstance(obj, FeedItem):
                out.feed_items.append(obj)
            elif isinstance(obj, ContentFile):
                out.content_files.append(obj)
            elif isinstance(obj, ViewEvent):
                out.view_events.append(obj)
    return out


def merge_outputs(outputs: Iterable[TransformOutput]) -> TransformOutput:
    out = TransformOutput()
    for o in outputs:
        out.resources.extend(o.resources)
        out.feed_items.extend(o.feed_items)
        out.content_files.extend(o.content_files)
        out.view_events.extend(o.view_events)
        out.quarantined.extend(o.quarantined)
    return out


# MIT Learn's ALLOWED_HTML_TAGS (main/constants.py): text formatting only, no headings, links,
# images or tables, and no attribute on any tag (ALLOWED_HTML_ATTRIBUTES is empty).
_ALLOWED_TAGS = {
    "b", "blockquote", "br", "caption", "center", "cite", "code", "div", "em", "hr", "i", "li",
    "ol", "p", "pre", "q", "small", "span", "strike", "strong", "sub", "sup", "u", "ul",
}  # fmt: skip
# Podcast show notes keep their links (ALLOWED_HTML_TAGS_WITH_LINKS): <a> with href and title.
_LINK_ATTRIBUTES = {"a": {"href", "title"}}


def clean_html(text: str | None, *, links: bool = False) -> str | None:
    """MIT Learn's `clean_data`: nh3 with its short tag list and no attributes; `links=True`
    (podcasts only, as there) also keeps <a href title>. None stays None (MIT Learn returns ""
    for no text: kept, the models say "absent" with None)."""
    if text is None:
        return None
    if isinstance(text, str) and len(text) <= _CACHED_CHARS:
        return _clean(text, links)
    # uncached: a long text, or one nh3 refuses as before (not as "unhashable" by the cache)
    return _clean.__wrapped__(text, links)


# A course's runs repeat its descriptions (edX: the course's and each run's short and full
# description): 26,765 cleanings of 4,482 texts at 10k bench resources, ~11 µs each. nh3 is a
# pure function of its input, so a small cache returns the same strings; repeats are close
# together (one course), and the cache holds at most 256 texts of up to 32k characters.
_CACHED_CHARS = 32_000


@lru_cache(maxsize=256)
def _clean(text: str, links: bool) -> str:
    return (_LINKS_CLEANER if links else _CLEANER).clean(text).strip()


# nh3.clean(text, tags=..., attributes=...) builds its sanitizer from those sets on every call:
# ~7 of its ~8.6 µs on a course description. A Cleaner is that sanitizer built once (the same
# arguments, the same output: tests/sources/test_clean_html_cache).
_CLEANER = nh3.Cleaner(tags=_ALLOWED_TAGS, attributes={})
_LINKS_CLEANER = nh3.Cleaner(tags=_ALLOWED_TAGS | {"a"}, attributes=_LINK_ATTRIBUTES)
_NO_TAGS_CLEANER = nh3.Cleaner(tags=set())


def strip_tags(text: str | None) -> str | None:
    if text is None:
        return None
    return html.unescape(_NO_TAGS_CLEANER.clean(text)).strip()


def parse_datetime(value: Any, *, assume_tz: ZoneInfo | None = None) -> datetime | None:
    """Parse a date string to an aware UTC datetime; naive values are read in `assume_tz` (UTC).
    ISO 8601 through `datetime.fromisoformat` (C, ~50x faster than dateutil, which took most of
    a catalog transform); anything else, or an ISO-looking text it refuses, through dateutil."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return _as_utc(value, assume_tz)
    text = str(value).strip()
    if _ISO_HEAD.match(text):
        iso = _iso_utc(text, assume_tz)
        if iso is not None:
            return iso
    return _as_utc(dateparser.parse(text), assume_tz)


def _as_utc(dt: datetime, assume_tz: ZoneInfo | None) -> datetime:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=assume_tz or UTC)
    return dt.astimezone(UTC)


@lru_cache(maxsize=1 << 16)
def _iso_utc(text: str, assume_tz: ZoneInfo | None) -> datetime | None:
    """An ISO 8601 text as an aware UTC datetime (None: `fromisoformat` refuses it), cached: a
    catalog repeats its dates (runs, enrollment windows, modification times; bench.ingest's
    10k: 89,590 ISO texts, 1,631 distinct), and a pure parse of an immutable value is shared.
    dateutil's path is not cached: it fills missing parts from today's date."""
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    return _as_utc(dt, assume_tz)


# `YYYY-MM-DD`, optionally followed by `T` or a space and a time: what the APIs send nearly always.
_ISO_HEAD = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]|$)")

_WEEKS = re.compile(r"(\d+)(?:\s*[-–]\s*(\d+))?\s*week", re.IGNORECASE)
_HOURS = re.compile(r"(\d+)(?:\s*[-–]\s*(\d+))?\s*(?:hrs?|hours?)", re.IGNORECASE)


def parse_range(text: str | None, pattern: re.Pattern[str]) -> tuple[int | None, int | None]:
    if not text:
        return None, None
    m = pattern.search(text)
    if not m:
        return None, None
    lo = int(m.group(1))
    hi = int(m.group(2)) if m.group(2) else lo
    return lo, hi


def weeks_range(text: str | None) -> tuple[int | None, int | None]:
    return parse_range(text, _WEEKS)


def hours_range(text: str | None) -> tuple[int | None, int | None]:
    return parse_range(text, _HOURS)


def without_scheme(url: str) -> str:
    return re.sub(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", "", url)


async def noop_extract(_: ExtractContext) -> AsyncIterator[RawPage]:  # pragma: no cover
    return
    yield


def load_json(body: bytes | str) -> Any:
    return json.loads(body)


AsyncCallable = Callable[..., Awaitable[Any]]

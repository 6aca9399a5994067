"""MIT Open Learning events: Drupal JSON:API event nodes → event feed items.

Transport: `GET https://openlearning.mit.edu/jsonapi/node/event?sort=-field_event_date.value`
plus the relationship resources (image media → image file, location, audience, event type).
Field rules follow MIT Learn's `news_events/etl/ol_events.py` (reference/mit-learn.md §1.2):
guid = node id, url = site + `path.alias`, title, summary = content = the sanitised body
(links dropped, as MIT Learn's `clean_data`), image via the 2-hop media → file relationship
(alt/description from the media's `field_media_image` meta), location / audience / event_type
from the taxonomy terms, event_datetime (and end) from `field_event_date`. Only future events
are kept; `clock` is the "now" the transform compares with (tests replace it).

The transform resolves relationships from JSON:API resources found in the page's `included`
member and in any context documents (the CLI passes the recorded relationship responses as
context files). The extractor asks Drupal for a compound document (`include=...`) — one request
per page — and falls back to one GET per relationship (MIT Learn's way) for events whose
relationships did not come back included; what it fetched is added to the page's `included`.

Differences on purpose (reference/mit-learn.md §9): timeouts on every request; relationships in
one request instead of 1 + 5 per event; pages are followed while they still hold future events
(MIT Learn reads the first page only, so the 51st future event was lost).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import nh3
import structlog

from learnflow.http import SourceHttpError
from learnflow.models import FeedItem, FeedSource, FeedType, Image, TransformOutput
from learnflow.schedules import H3, ingest_schedule
from learnflow.settings import SourceSettings
from sources._catalog import source_settings
from sources.base import (
    _ALLOWED_TAGS,
    ExtractContext,
    RawPage,
    Source,
    parse_datetime,
    transform_each,
)

log = structlog.get_logger(__name__)

ETL_SOURCE = "ol_events"
BASE_URL = "https://openlearning.mit.edu"
EVENTS_PATH = "/jsonapi/node/event"
IMAGE_REL = "field_event_image"
MEDIA_FILE_REL = "field_media_image"
TERM_RELS = {
    "location": "field_location_tag",
    "audience": "field_event_audience",
    "event_type": "field_event_category",
}
INCLUDE = ",".join([IMAGE_REL, f"{IMAGE_REL}.{MEDIA_FILE_REL}", *TERM_RELS.values()])


def utcnow() -> datetime:
    return datetime.now(UTC)


# The "now" future events are compared with: tests replace it for deterministic runs.
clock: Callable[[], datetime] = utcnow


class OlEventsSettings(SourceSettings):
    """OL_EVENTS_* settings (no MIT Learn equivalent: it hard-codes the URL)."""

    ol_events_base_url: str = BASE_URL
    ol_events_max_pages: int = 10


def settings_for(settings: Any = None, options: dict[str, Any] | None = None) -> OlEventsSettings:
    return source_settings(OlEventsSettings, settings, options)


def feed_source(base_url: str = BASE_URL) -> FeedSource:
    return FeedSource(
        title="MIT Open Learning Events",
        url=f"{base_url.rstrip('/')}/events",
        feed_type=FeedType.events,
        description="MIT Open Learning's upcoming events",
    )


def clean_no_links(text: str | None) -> str | None:
    """MIT Learn's default `clean_data`: its allow-list has no `<a>` (the link text stays)."""
    if text is None:
        return None
    return nh3.clean(text, tags=_ALLOWED_TAGS - {"a"}).strip()


Index = dict[tuple[str, str], dict]


def _resources(doc: Any) -> list[dict]:
    """The JSON:API resource objects in a document (its data and included) or a bare list."""
    if isinstance(doc, list):
        return [r for r in doc if isinstance(r, dict)]
    if not isinstance(doc, dict):
        return []
    out: list[dict] = []
    data = doc.get("data")
    if isinstance(data, dict):
        out.append(data)
    elif isinstance(data, list):
        out.extend(r for r in data if isinstance(r, dict))
    out.extend(r for r in doc.get("included") or [] if isinstance(r, dict))
    return out


def build_index(docs: Sequence[Any]) -> Index:
    index: Index = {}
    for doc in docs:
        for res in _resources(doc):
            if isinstance(res.get("type"), str) and isinstance(res.get("id"), str):
                index.setdefault((res["type"], res["id"]), res)
    return index


def _d(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


# Relationship documents are context, not this event: malformed parts resolve to nothing.


def _linkage(resource: Any, rel: str) -> list[dict]:
    data = _d(_d(_d(resource).get("relationships")).get(rel)).get("data")
    if isinstance(data, dict):
        return [data]
    if isinstance(data, list):
        return [d for d in data if isinstance(d, dict)]
    return []


def _resolve(index: Index, ref: dict) -> dict | None:
    key = (ref.get("type"), ref.get("id"))
    if not all(isinstance(k, str) for k in key):
        return None
    return index.get(key)  # type: ignore[arg-type]


def _term_names(event: dict, rel: str, index: Index) -> list[str]:
    names = []
    for ref in _linkage(event, rel):
        name = _d(_d(_resolve(index, ref)).get("attributes")).get("name")
        if isinstance(name, str) and name.strip():
            names.append(name.strip())
    return names


def _image(event: dict, index: Index, base_url: str) -> Image | None:
    """event → media (field_event_image) → file (field_media_image): url, alt, title."""
    for media_ref in _linkage(event, IMAGE_REL):
        media = _resolve(index, media_ref)
        for file_ref in _linkage(media, MEDIA_FILE_REL):
            uri = _d(_d(_d(_resolve(index, file_ref)).get("attributes")).get("uri"))
            path = uri.get("url")
            if not isinstance(path, str) or not path:
                continue
            meta = _d(file_ref.get("meta"))
            url = path if path.startswith(("http://", "https://")) else f"{base_url}{path}"
            alt, title = meta.get("alt"), meta.get("title")
            return Image(
                url=url,
                alt=alt if isinstance(alt, str) else None,
                description=title if isinstance(title, str) else None,
            )
    return None


def transform_event(
    event: dict, index: Index, now: datetime, base_url: str = BASE_URL
) -> FeedItem | None:
    """One event node → a FeedItem, or None when the event is not in the future."""
    attrs = event["attributes"]
    dates = attrs.get("field_event_date") or {}
    start = parse_datetime(dates.get("value"))
    if start is None:
        raise ValueError("event has no field_event_date.value")
    if start <= now:
        return None
    guid = event["id"]
    if not isinstance(guid, str) or not guid:
        raise ValueError("event has no id")
    title = attrs["title"]
    if not isinstance(title, str) or not title.strip():
        raise ValueError("event has no title")
    alias = (attrs.get("path") or {}).get("alias")
    body = (attrs.get("body") or {}).get("value")
    content = clean_no_links(body) if isinstance(body, str) else None
    base = base_url.rstrip("/")
    return FeedItem(
        guid=guid,
        feed_type=FeedType.events,
        source=feed_source(base),
        etl_source=ETL_SOURCE,
        title=title.strip(),
        url=f"{base}{alias}" if isinstance(alias, str) and alias else None,
        summary=content,
        content=content,
        image=_image(event, index, base),
        location=_term_names(event, TERM_RELS["location"], index),
        audience=_term_names(event, TERM_RELS["audience"], index),
        event_type=_term_names(event, TERM_RELS["event_type"], index),
        event_datetime=start,
        event_end_datetime=parse_datetime(dates.get("end_value")),
    )


def _events(payload: Any) -> list[Any]:
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
        raise ValueError("OL events payload must be a JSON:API document with a data list")
    return payload["data"]


def transform(kind: str, payload: Any, context: Sequence[Any] = ()) -> TransformOutput:
    """Pure: one JSON:API events page (+ relationship documents as context) → future events."""
    if kind != "events":
        raise ValueError(f"unknown OL events kind {kind!r}")
    events = _events(payload)
    index = build_index([payload, *context])
    now = clock()
    base = settings_for().ol_events_base_url
    return transform_each(
        ETL_SOURCE,
        events,
        lambda e: transform_event(e, index, now, base),
        lambda e: e.get("id") if isinstance(e, dict) else None,
    )


def _start(event: Any) -> datetime | None:
    try:
        return parse_datetime(event["attributes"]["field_event_date"]["value"])
    except (KeyError, TypeError, ValueError, OverflowError):
        return None


def _missing_refs(event: dict, index: Index) -> list[str]:
    """Relationship names whose targets the page did not include."""
    missing = []
    for rel in [IMAGE_REL, *TERM_RELS.values()]:
        refs = _linkage(event, rel)
        if any(_resolve(index, r) is None for r in refs):
            missing.append(rel)
    return missing


def _related_url(resource: dict, rel: str) -> str | None:
    links = ((resource.get("relationships") or {}).get(rel) or {}).get("links") or {}
    href = (links.get("related") or {}).get("href")
    return href if isinstance(href, str) else None


async def _fill_relationships(ctx: ExtractContext, page: dict, base: str) -> int:
    """MIT Learn's per-relationship GETs for events whose relationships were not included."""
    index = build_index([page])
    host = urlsplit(base).netloc
    fetched: list[dict] = []
    gets = 0

    async def get(url: str | None) -> Any:
        nonlocal gets
        if not url or urlsplit(url).netloc != host:
            return None
        gets += 1
        return await ctx.http.get_json(url, not_found_ok=True)

    for event in page.get("data") or []:
        if not isinstance(event, dict):
            continue
        for rel in _missing_refs(event, index):
            doc = await get(_related_url(event, rel))
            found = _resources(doc)
            fetched.extend(found)
            index.update(build_index([doc]))
            if rel == IMAGE_REL:
                for media in found:
                    if any(_resolve(index, r) is None for r in _linkage(media, MEDIA_FILE_REL)):
                        file_doc = await get(_related_url(media, MEDIA_FILE_REL))
                        fetched.extend(_resources(file_doc))
                        index.update(build_index([file_doc]))
    if fetched:
        page["included"] = [*(page.get("included") or []), *fetched]
    return gets


async def extract(ctx: ExtractContext) -> AsyncIterator[RawPage]:
    """Events pages (newest first) with their relationships included, until a page has no
    future event."""
    cfg = settings_for(ctx.settings, ctx.options)
    base = cfg.ol_events_base_url.rstrip("/")
    url: str | None = f"{base}{EVENTS_PATH}"
    params: dict[str, str] | None = {"sort": "-field_event_date.value", "include": INCLUDE}
    now = clock()
    for _ in range(cfg.ol_events_max_pages):
        if not url:
            return
        try:
            page = await ctx.http.get_json(url, params=params)
        except SourceHttpError as exc:
            if params and "include" in params and "400" in str(exc):
                # A Drupal that refuses `include` (jsonapi_extras): fall back to plain pages.
                params = {"sort": "-field_event_date.value"}
                page = await ctx.http.get_json(url, params=params)
            else:
                raise
        events = _events(page)
        gets = await _fill_relationships(ctx, page, base)
        if gets:
            log.info("ol_events.relationship_gets", count=gets)
        body = json.dumps(page).encode()
        yield RawPage(kind="events", body=body, item_count=len(events), url=url)
        future = [e for e in events if (d := _start(e)) is not None and d > now]
        if not future:
            return
        nxt = ((page.get("links") or {}).get("next") or {}).get("href")
        if nxt and urlsplit(nxt).netloc != urlsplit(base).netloc:
            log.warning("ol_events.next_refused", next=nxt)
            return
        url, params = nxt, None


SOURCE = Source(
    name="ol_events",
    etl_source=ETL_SOURCE,
    reads_clock=True,  # `clock` picks the best run / upcoming events
    kinds=("events",),
    transform=transform,
    extract=extract,
    feed_types=("events",),
    hosts=("openlearning.mit.edu",),
    urls=lambda s: [settings_for(s).ol_events_base_url],
    description="MIT Open Learning events (Drupal JSON:API)",
)

# When it runs (`learn schedules sync` creates these; cron in UTC).
SCHEDULES = (ingest_schedule("ol_events", "0 */3 * * *", H3),)

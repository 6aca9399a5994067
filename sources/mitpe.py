"""MIT Professional Education: catalog (courses and programs), news and events from Drupal feeds.

Transport: plain JSON GETs of `/feeds/courses/`, `/feeds/news/`, `/feeds/events/` with
`?page=0,1,...` until a page is `[]`. Field rules follow MIT Learn's `learning_resources/etl/
mitpe.py`, `news_events/etl/mitpe_news.py` and `mitpe_events.py` (reference/mit-learn.md §1.2):
multi-values are `|`-delimited; a catalog record is a course or a program by `resource_type`
(else by a "Certificate of Completion" certificate); runs are zipped from the run id and date
columns (dates US/Eastern) and kept only while enrolment is open; an item without a kept run is
dropped; programs link their courses by title. Past events are dropped. The catalog's pages are
stored as one raw page (items concatenated), so a program links courses listed on any page.

The CLI spells the kinds `mitpe` (= `courses`, the catalog), `mitpe:news`, `mitpe:events`.
"now" comes from the module's `clock`, so tests pin it.

Differences on purpose: every request has a timeout and the page walk has a cap; news authors are
split on the word "and" (MIT Learn splits on the letters, so "Alexandra" breaks in two); empty
instructor names are dropped; event summaries are sanitised like news summaries.
"""

from __future__ import annotations

import html
import json
import re
import warnings
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

from dateutil import parser as dateparser

from learnflow.models import (
    Availability,
    CertificationType,
    FeedItem,
    FeedSource,
    FeedType,
    Format,
    Image,
    Instructor,
    Pace,
    Relationship,
    RelationType,
    Resource,
    ResourceRef,
    ResourceType,
    Run,
    Topic,
    TransformOutput,
)
from learnflow.reference import reference_data
from learnflow.schedules import DAY, H3, ingest_schedule
from learnflow.settings import SourceSettings
from sources._catalog import (
    best_run,
    copy_run_values,
    fetch,
    item_key,
    make_price,
    parse_duration,
    require_dict,
    source_settings,
    text_of,
    transform_delivery,
    utcnow,
    wanted_kinds,
)
from sources.base import (
    EASTERN,
    ExtractContext,
    RawPage,
    Source,
    clean_html,
    merge_outputs,
    transform_each,
)

PLATFORM = "mitpe"
OFFERED_BY = "mitpe"
ETL_SOURCE = "mitpe"
BASE_URL = "https://professional.mit.edu/"
ALL_AUDIENCES = ["Faculty", "MIT Community", "Public", "Students"]
MAX_PAGES = 500

NEWS_SOURCE = FeedSource(
    title="MIT Professional Education News",
    url=urljoin(BASE_URL, "/news"),
    feed_type=FeedType.news,
    description="News and updates from MIT Professional Education.",
)
EVENTS_SOURCE = FeedSource(
    title="MIT Professional Education Events",
    url=urljoin(BASE_URL, "/events"),
    feed_type=FeedType.events,
    description="MIT Professional Education events.",
)

clock: Callable[[], datetime] = utcnow


class MitpeSettings(SourceSettings):
    """MITPE_BASE_URL as in MIT Learn (whose default is the production site)."""

    mitpe_base_url: str = BASE_URL


# ----------------------------------------------------------------------------------------------
# catalog (pure)


def _split(value: Any) -> list[str]:
    if value in (None, ""):
        return []
    if not isinstance(value, str):
        raise TypeError(f"expected a '|'-delimited string, got {type(value).__name__}")
    return value.split("|")


def clean_title(title: Any) -> str:
    return html.unescape(text_of(title, "title").strip())


def _date(value: str) -> datetime | None:
    """`%Y-%m-%d` in US/Eastern → UTC (midnight Eastern)."""
    if not value:
        return None
    return datetime.strptime(value.strip(), "%Y-%m-%d").replace(tzinfo=EASTERN).astimezone(UTC)


def _resource_type(item: dict) -> ResourceType:
    declared = item.get("resource_type")
    if declared:
        return ResourceType(str(declared).lower())
    if "Certificate of Completion" in _split(item.get("course_certificate")):
        return ResourceType.course
    return ResourceType.program


def _location(item: dict) -> str | None:
    if item.get("learning_format") in ("In Person", "On Campus", "Blended"):
        return item.get("location") or None
    return None


def _instructors(item: dict) -> list[Instructor]:
    names = [*_split(item.get("lead_instructors")), *_split(item.get("instructors"))]
    return [Instructor(full_name=html.unescape(n).strip()) for n in names if n.strip()]


def _runs(item: dict, now: datetime) -> list[Run]:
    """Runs zipped from the `|` columns; kept while enrolment (or the run) has not ended."""
    title = clean_title(item.get("title"))
    description = clean_html(item.get("description"))
    duration, min_weeks, max_weeks = parse_duration(item.get("duration"))
    price = re.sub(r"[^0-9.]", "", item.get("price") or "")  # "$1,870" → "1870"
    prices = [make_price(price)] if price else []  # "Contact us": no price, not an error
    rows = zip(
        _split(item.get("run__readable_id")),
        _split(item.get("start_date")),
        _split(item.get("end_date")),
        _split(item.get("enrollment_end_date")),
        strict=False,
    )
    runs = []
    for run_id, start, end, enrollment_end in rows:
        end_dt, enroll_end_dt = _date(end), _date(enrollment_end)
        if not run_id or (
            (end_dt or enroll_end_dt) is not None and now > (enroll_end_dt or end_dt)
        ):
            continue
        runs.append(
            Run(
                run_id=run_id,
                title=title,
                description=description,
                start_date=_date(start),
                end_date=end_dt,
                enrollment_end=enroll_end_dt,
                published=True,
                prices=prices,
                url=urljoin(BASE_URL, item.get("url") or ""),
                instructors=_instructors(item),
                format=[Format.asynchronous],
                pace=[Pace.instructor_paced],
                availability=Availability.dated,
                delivery=transform_delivery(item.get("learning_format")),
                location=_location(item),
                duration=duration,
                min_weeks=min_weeks,
                max_weeks=max_weeks,
            )
        )
    return runs


def _credits(value: Any) -> str | None:
    return value if isinstance(value, str) and re.fullmatch(r"\d+(\.\d+)?", value.strip()) else None


def transform_item(item: dict, now: datetime, courses_by_title: dict[str, str]) -> Resource | None:
    """One catalog record → a course or program, or None when no run is still open."""
    item = require_dict(item, "catalog record")
    resource_type = _resource_type(item)
    if resource_type not in (ResourceType.course, ResourceType.program):
        raise ValueError(f"unexpected MITPE resource_type {item.get('resource_type')!r}")
    runs = _runs(item, now)
    if not runs:
        return None
    title = clean_title(item.get("title"))
    relationships = []
    if resource_type == ResourceType.program:
        for title_ in _split(item.get("courses")):
            course_id = courses_by_title.get(clean_title(title_)) if title_.strip() else None
            if course_id:
                relationships.append(
                    Relationship(
                        relation_type=RelationType.program_courses,
                        child=ResourceRef(
                            platform=PLATFORM,
                            readable_id=course_id,
                            resource_type=ResourceType.course,
                        ),
                        position=len(relationships),
                    )
                )
    topics = reference_data().map_topics(
        [html.unescape(t) for t in _split(item.get("topics"))], OFFERED_BY
    )
    image = (
        Image(url=urljoin(BASE_URL, item["image__src"]), alt=item.get("image__alt"))
        if item.get("image__src")
        else None
    )
    resource = Resource(
        readable_id=text_of(item.get("uuid"), "uuid"),
        platform=PLATFORM,
        resource_type=resource_type,
        etl_source=ETL_SOURCE,
        offered_by=OFFERED_BY,
        title=title,
        description=clean_html(item.get("description")),
        url=urljoin(BASE_URL, text_of(item.get("url"), "url")),
        image=image,
        published=True,
        professional=True,
        certification=True,
        certification_type=CertificationType.professional,
        resource_category="Course" if resource_type == ResourceType.course else "Program",
        topics=[Topic(name=t) for t in topics],
        runs=runs,
        delivery=transform_delivery(item.get("learning_format")),
        format=[Format.asynchronous],
        pace=[Pace.instructor_paced],
        availability=Availability.dated,
        continuing_ed_credits=_credits(item.get("continuing_ed_credits")),
        relationships=relationships,
        details={"node_id": item.get("node_id")},
    )
    return copy_run_values(resource, best_run(runs, now))


def _courses_by_title(pages: Sequence[Any], now: datetime) -> dict[str, str]:
    """Title → uuid of every course (on any page) that has an open run, as MIT Learn matches."""
    out: dict[str, str] = {}
    for page in pages:
        for item in page if isinstance(page, list) else []:
            try:
                if _resource_type(item) == ResourceType.course and _runs(item, now):
                    out.setdefault(clean_title(item.get("title")), item["uuid"])
            except Exception:  # noqa: S112 - unreadable records are quarantined later
                continue
    return out


# ----------------------------------------------------------------------------------------------
# news and events (pure)


def _news_date(value: Any) -> datetime | None:
    """A date (time optional) read in US/Eastern, as MIT Learn's parse_date; unparsable → None."""
    if not value or not isinstance(value, str):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unknown tz names (EDT) are ignored: Eastern is assumed
        try:
            parsed = dateparser.parse(value)
        except (ValueError, OverflowError):
            return None
    return parsed.replace(tzinfo=EASTERN).astimezone(UTC)


def parse_authors(authors: Any) -> list[str]:
    text = (authors or "").strip()
    for splitter in (r"\s+and\s+", r"\s*\|\s*"):
        parts = re.split(splitter, text)
        if len(parts) > 1:
            return [p.strip() for p in parts if p.strip()]
    return [text] if text else []


def _feed_image(item: dict) -> Image | None:
    if not item.get("image"):
        return None
    alt = html.unescape(item.get("title") or "")
    return Image(url=urljoin(BASE_URL, item["image"]), alt=alt, description=alt)


def transform_news_item(item: dict) -> FeedItem:
    item = require_dict(item, "news item")
    summary = clean_html(html.unescape(item.get("summary") or ""))
    return FeedItem(
        guid=text_of(item.get("id"), "id"),
        feed_type=FeedType.news,
        source=NEWS_SOURCE,
        etl_source=ETL_SOURCE,
        title=html.unescape(text_of(item.get("title"), "title")),
        url=urljoin(BASE_URL, text_of(item.get("url"), "url")),
        summary=summary,
        content=summary,
        image=_feed_image(item),
        authors=parse_authors(item.get("author")),
        topics=[],
        publish_date=_news_date(item.get("date")),
    )


def transform_event_item(item: dict, now: datetime) -> FeedItem | None:
    """One event, or None when it is over (start and end both past)."""
    item = require_dict(item, "event")
    times = str(item.get("time_range") or "").split("-")
    start = _news_date(f"{item.get('start_date')} {times[0]}") or _news_date(item.get("start_date"))
    end = _news_date(f"{item.get('end_date')} {times[1] if len(times) > 1 else ''}") or _news_date(
        item.get("end_date")
    )
    if (not start or start < now) and (not end or end < now):
        return None
    summary = clean_html(html.unescape(item.get("summary") or ""))
    return FeedItem(
        guid=text_of(item.get("id"), "id"),
        feed_type=FeedType.events,
        source=EVENTS_SOURCE,
        etl_source=ETL_SOURCE,
        title=html.unescape(text_of(item.get("title"), "title")),
        url=urljoin(BASE_URL, text_of(item.get("url"), "url")),
        summary=summary,
        content=summary,
        image=_feed_image(item),
        audience=list(ALL_AUDIENCES),
        location=[],
        event_type=[],
        event_datetime=start,
        event_end_datetime=end,
    )


def _page(payload: Any) -> list[Any]:
    if not isinstance(payload, list):
        raise ValueError("an MITPE feed page is a JSON list")
    return payload


def _key(item: Any) -> str | None:
    return item_key(item, "uuid", "id")


def transform(kind: str, payload: Any, context: Sequence[Any] = ()) -> TransformOutput:
    """Pure: one feed page → resources (`courses`) or feed items (`news`, `events`)."""
    now = clock()
    items = _page(payload)
    if kind == "courses":
        titles = _courses_by_title([payload, *context], now)
        return transform_each(ETL_SOURCE, items, lambda i: transform_item(i, now, titles), _key)
    if kind == "news":
        out = transform_each(ETL_SOURCE, items, transform_news_item, _key)
        out.feed_items.sort(key=lambda f: f.publish_date or datetime.min.replace(tzinfo=UTC))
        return out
    if kind == "events":
        return transform_each(ETL_SOURCE, items, lambda i: transform_event_item(i, now), _key)
    raise ValueError(f"unknown MITPE kind {kind!r}")


def transform_pages(kind: str, pages: Sequence[Any]) -> TransformOutput:
    """Every page of one feed at once (each page sees the others as context)."""
    return merge_outputs(
        transform(kind, page, [p for j, p in enumerate(pages) if j != i])
        for i, page in enumerate(pages)
    )


# ----------------------------------------------------------------------------------------------
# extract (I/O)

FEEDS = (("courses", "/feeds/courses/"), ("news", "/feeds/news/"), ("events", "/feeds/events/"))


async def _walk(ctx: ExtractContext, url: str) -> AsyncIterator[tuple[bytes, list[Any], str]]:
    """`?page=0,1,...` until an empty list (the empty page is not yielded)."""
    for page in range(MAX_PAGES):
        body = await fetch(ctx.http, url, params={"page": page})
        items = _page(json.loads(body))
        if not items:
            return
        yield body, items, f"{url}?page={page}"
    raise ValueError(f"MITPE feed {url} has more than {MAX_PAGES} pages")


async def extract(ctx: ExtractContext) -> AsyncIterator[RawPage]:
    """Each feed page by page. The catalog's pages are stored as ONE raw page (their items
    concatenated, in order) so that a program links courses listed on any page; news and
    events pages are stored as sent."""
    cfg = source_settings(MitpeSettings, ctx.settings, ctx.options)
    wanted = wanted_kinds(ctx.options, [k for k, _ in FEEDS])
    for kind, path in FEEDS:
        if kind not in wanted:
            continue
        url = urljoin(cfg.mitpe_base_url, path)
        if kind == "courses":
            catalog: list[Any] = []
            async for _body, items, _url in _walk(ctx, url):
                catalog.extend(items)
            body = json.dumps(catalog, ensure_ascii=False).encode()
            yield RawPage(kind=kind, body=body, item_count=len(catalog), url=url)
            continue
        async for body, items, page_url in _walk(ctx, url):
            yield RawPage(kind=kind, body=body, item_count=len(items), url=page_url)


SOURCE = Source(
    name="mitpe",
    etl_source=ETL_SOURCE,
    reads_clock=True,  # `clock` picks the best run / upcoming events
    kinds=("courses", "news", "events"),
    transform=transform,
    extract=extract,
    urls=lambda settings: [source_settings(MitpeSettings, settings).mitpe_base_url],
    resource_types=("course", "program"),
    feed_types=("news", "events"),
    platform=PLATFORM,
    hosts=("professional.mit.edu",),
    description="MIT Professional Education: catalog, news and events (Drupal feeds)",
)

# When it runs (`learn schedules sync` creates these; cron in UTC).
SCHEDULES = (
    ingest_schedule("mitpe", "0 21 * * *", DAY, options={"kinds": "courses"}),
    ingest_schedule(
        "mitpe", "0 */3 * * *", H3, options={"kinds": "news,events"}, suffix="-news-events"
    ),
)

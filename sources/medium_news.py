"""MIT Open Learning on Medium: the RSS feed → news feed items.

Transport: `GET https://medium.com/feed/open-learning` (RSS), parsed with feedparser from the
bytes we fetched. Field rules follow MIT Learn's `news_events/etl/medium_mit_news.py`
(reference/mit-learn.md §1.2): the FeedSource is the feed's title / subtitle / image; an item's
guid = entry `id`, title, url = `link`, summary = tags stripped, content = the first
`content.value` sanitised (links dropped, as MIT Learn's `clean_data`), image = the first
`<figure><img>` of the content (alt as alt and description), authors, topics = sorted tag terms,
publish_date = `published`.

Differences on purpose (reference/mit-learn.md §9): the feed is fetched by our HTTP client with a
timeout and size cap (MIT Learn let feedparser fetch the URL itself).
"""

from __future__ import annotations

import calendar
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import feedparser
import nh3
from bs4 import BeautifulSoup

from learnflow.models import FeedItem, FeedSource, FeedType, Image, TransformOutput
from learnflow.schedules import H3, ingest_schedule
from learnflow.settings import SourceSettings
from sources._catalog import source_settings
from sources.base import _ALLOWED_TAGS, ExtractContext, RawPage, Source, strip_tags, transform_each

ETL_SOURCE = "medium_news"
FEED_URL = "https://medium.com/feed/open-learning"


class MediumSettings(SourceSettings):
    """MEDIUM_MIT_NEWS_URL (MIT Learn hard-codes it)."""

    medium_mit_news_url: str = FEED_URL


def settings_for(settings: Any = None, options: dict[str, Any] | None = None) -> MediumSettings:
    return source_settings(MediumSettings, settings, options)


def clean_no_links(text: str | None) -> str | None:
    if text is None:
        return None
    return nh3.clean(text, tags=_ALLOWED_TAGS - {"a"}).strip()


def parse_feed(payload: Any) -> Any:
    """RSS bytes (or text) → a feedparser result; anything that is not a feed is a ValueError."""
    if isinstance(payload, str):
        payload = payload.encode()
    if not isinstance(payload, bytes | bytearray):
        raise ValueError("a Medium news page is the RSS document's bytes")
    parsed = feedparser.parse(bytes(payload))
    if not parsed.get("version") and not parsed.get("entries"):
        raise ValueError(f"not an RSS/Atom feed: {parsed.get('bozo_exception') or 'no entries'}")
    return parsed


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def feed_source(feed: Any, url: str) -> FeedSource:
    image = feed.get("image") or {}
    image_url = _str(image.get("href") or image.get("url")) if isinstance(image, dict) else None
    title = _str(image.get("title")) if isinstance(image, dict) else None
    return FeedSource(
        title=_str(feed.get("title")) or "MIT Open Learning - Medium",
        url=url,
        feed_type=FeedType.news,
        description=_str(feed.get("subtitle")),
        image=Image(url=image_url, alt=title, description=title) if image_url else None,
    )


def first_figure_image(content: str) -> Image | None:
    """The first `<figure>`'s leading `<img>` (MIT Learn's rule), else None."""
    figure = BeautifulSoup(content, "html.parser").find("figure")
    first = next((c for c in figure.children if getattr(c, "name", None)), None) if figure else None
    if first is None or first.name != "img" or not _str(first.get("src")):
        return None
    img = first
    alt = img.get("alt")
    alt = alt if isinstance(alt, str) else None
    return Image(url=img["src"], alt=alt, description=alt or "")


def _published(entry: Any) -> datetime | None:
    parsed = entry.get("published_parsed") or entry.get("updated_parsed")
    if parsed is None:
        return None
    return datetime.fromtimestamp(calendar.timegm(parsed), UTC)


def transform_entry(entry: Any, source: FeedSource) -> FeedItem:
    guid = _str(entry.get("id")) or _str(entry.get("link"))
    if not guid:
        raise ValueError("entry has neither id nor link")
    title = _str(entry.get("title"))
    if not title:
        raise ValueError("entry has no title")
    contents = entry.get("content") or [{}]
    content = contents[0].get("value") if isinstance(contents[0], dict) else None
    content = content if isinstance(content, str) else ""
    summary = entry.get("summary")
    return FeedItem(
        guid=guid,
        feed_type=FeedType.news,
        source=source,
        etl_source=ETL_SOURCE,
        title=title.strip(),
        url=_str(entry.get("link")),
        summary=strip_tags(summary) if isinstance(summary, str) else None,
        content=clean_no_links(content),
        image=first_figure_image(content) if content else None,
        authors=[a["name"] for a in entry.get("authors") or [] if _str((a or {}).get("name"))],
        topics=sorted(t["term"] for t in entry.get("tags") or [] if _str((t or {}).get("term"))),
        publish_date=_published(entry),
    )


def transform(kind: str, payload: Any, context: Sequence[Any] = ()) -> TransformOutput:
    """Pure: the RSS bytes → news items (the first context string, if any, is the feed URL)."""
    if kind != "news":
        raise ValueError(f"unknown Medium news kind {kind!r}")
    parsed = parse_feed(payload)
    url = (
        next((c for c in context if isinstance(c, str)), None) or settings_for().medium_mit_news_url
    )
    source = feed_source(parsed.get("feed") or {}, url)
    return transform_each(
        ETL_SOURCE,
        parsed.get("entries") or [],
        lambda e: transform_entry(e, source),
        lambda e: e.get("id"),
    )


async def extract(ctx: ExtractContext) -> AsyncIterator[RawPage]:
    url = settings_for(ctx.settings, ctx.options).medium_mit_news_url
    body = await ctx.http.get_bytes(url)
    if body is None:
        raise ValueError(f"Medium feed not found: {url}")
    parsed = parse_feed(body)
    yield RawPage(kind="news", body=body, item_count=len(parsed.get("entries") or []), url=url)


SOURCE = Source(
    name="medium_news",
    etl_source=ETL_SOURCE,
    kinds=("news",),
    transform=transform,
    extract=extract,
    feed_types=("news",),
    hosts=("medium.com",),
    urls=lambda s: [settings_for(s).medium_mit_news_url],
    description="MIT Open Learning news on Medium (RSS)",
)

# When it runs (`learn schedules sync` creates these; cron in UTC).
SCHEDULES = (ingest_schedule("medium_news", "0 */3 * * *", H3),)

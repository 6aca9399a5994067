"""MIT Climate Portal articles (explainers and "Ask MIT Climate") → document resources.

Transport: two public JSON feeds, each a plain list of articles, no auth, no pagination
(`https://climate.mit.edu/feeds/explainers`, `.../feeds/ask-mit-climate`). Field rules follow MIT
Learn's `learning_resources/etl/mit_climate.py` (reference/mit-learn.md §1.2): readable_id =
`uuid`, title html-unescaped, url = site + `url`, image `image_src`/`image_alt`, description =
`summary`, full_description = summary + footnotes + byline, topics "|"-separated (URL-quoted
names) mapped through the `climate` offeror crosswalk, `created` read in US/Eastern.
Platform and offered_by `climate`, resource_type document, resource_category "Article".

Differences on purpose (reference/mit-learn.md §9): requests have timeouts; an article that
vanished from both feeds is really unpublished by the guarded prune (this source owns
`document` resources of etl_source `mit_climate`) — MIT Learn only deindexed it and left
`published=True`; a `created` with an explicit offset keeps it (MIT Learn overwrote any zone
with US/Eastern, so "12:00Z" became 16:00 UTC); naive values are still read as US/Eastern.
"""

from __future__ import annotations

import html
import json
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urljoin

from dateutil import parser as dateparser

from learnflow.models import Image, Resource, ResourceType, Topic, TransformOutput
from learnflow.reference import reference_data
from learnflow.schedules import DAY, ingest_schedule
from learnflow.settings import SourceSettings
from sources._catalog import source_settings
from sources.base import (
    EASTERN,
    ExtractContext,
    RawPage,
    Source,
    clean_html,
    transform_each,
)

ETL_SOURCE = "mit_climate"
PLATFORM = "climate"
OFFERED_BY = "climate"
BASE_URL = "https://climate.mit.edu"


class ClimateSettings(SourceSettings):
    """MIT Learn's MIT_CLIMATE_* settings, with the production URLs as defaults."""

    mit_climate_base_url: str = BASE_URL
    mit_climate_explainers_api_url: str = f"{BASE_URL}/feeds/explainers"
    ask_mit_climate_api_url: str = f"{BASE_URL}/feeds/ask-mit-climate"

    @property
    def feed_urls(self) -> list[str]:
        return [self.mit_climate_explainers_api_url, self.ask_mit_climate_api_url]


def settings_for(settings: Any = None, options: dict[str, Any] | None = None) -> ClimateSettings:
    return source_settings(ClimateSettings, settings, options)


def created_at(value: Any) -> datetime | None:
    """`created` → aware UTC; a naive value is US/Eastern wall time (MIT Learn's reading)."""
    if value in (None, ""):
        return None
    dt = dateparser.parse(str(value))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=EASTERN)
    return dt.astimezone(UTC)


def topics_of(raw: Any) -> list[Topic]:
    if raw in (None, ""):
        return []
    if not isinstance(raw, str):
        raise ValueError(f"topics must be a '|'-separated string, got {type(raw).__name__}")
    names = [unquote(t).strip() for t in raw.split("|") if t.strip()]
    return [Topic(name=n) for n in reference_data().map_topics(names, OFFERED_BY)]


def _text(article: dict, key: str) -> str:
    value = article.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{key} must be text, got {type(value).__name__}")
    return value


def transform_article(article: dict, base_url: str = BASE_URL) -> Resource:
    uuid = article["uuid"]
    if not isinstance(uuid, str) or not uuid.strip():
        raise ValueError("article has no uuid")
    title = html.unescape(_text(article, "title")).strip()
    if not title:
        raise ValueError("article has no title")
    path = _text(article, "url")
    if not path:
        raise ValueError("article has no url")
    summary = _text(article, "summary")
    full = "\n".join([summary, _text(article, "footnotes"), _text(article, "byline")])
    image_src = _text(article, "image_src")
    created = created_at(article.get("created"))
    base = base_url.rstrip("/")
    return Resource(
        readable_id=uuid.strip(),
        platform=PLATFORM,
        resource_type=ResourceType.document,
        etl_source=ETL_SOURCE,
        offered_by=OFFERED_BY,
        title=title,
        description=clean_html(summary) or None,
        full_description=clean_html(full) or None,
        url=urljoin(f"{base}/", path),
        image=Image(url=urljoin(f"{base}/", image_src), alt=_text(article, "image_alt") or None)
        if image_src
        else None,
        topics=topics_of(article.get("topics")),
        resource_category="Article",
        last_modified=created,
        published=True,
        details={"created_on": created.isoformat() if created else None},
    )


def transform(kind: str, payload: Any, context: Sequence[Any] = ()) -> TransformOutput:
    """Pure: one feed (a JSON list of articles) → document resources."""
    if kind != "articles":
        raise ValueError(f"unknown MIT Climate kind {kind!r}")
    if not isinstance(payload, list):
        raise ValueError("an MIT Climate feed is a JSON list of articles")
    base = settings_for().mit_climate_base_url
    return transform_each(
        ETL_SOURCE,
        payload,
        lambda a: transform_article(a, base),
        lambda a: a.get("uuid") if isinstance(a, dict) else None,
    )


async def extract(ctx: ExtractContext) -> AsyncIterator[RawPage]:
    """Both feeds, one page each."""
    cfg = settings_for(ctx.settings, ctx.options)
    for url in cfg.feed_urls:
        body = await ctx.http.get_bytes(url)
        if body is None:
            raise ValueError(f"MIT Climate feed not found: {url}")
        items = json.loads(body)
        if not isinstance(items, list):
            raise ValueError(f"MIT Climate feed {url} is not a JSON list")
        yield RawPage(kind="articles", body=body, item_count=len(items), url=url)


SOURCE = Source(
    name="mit_climate",
    etl_source=ETL_SOURCE,
    kinds=("articles",),
    transform=transform,
    extract=extract,
    resource_types=("document",),
    platform=PLATFORM,
    hosts=("climate.mit.edu",),
    urls=lambda s: settings_for(s).feed_urls,
    description="MIT Climate Portal articles (explainers, Ask MIT Climate)",
)

# When it runs (`learn schedules sync` creates these; cron in UTC).
SCHEDULES = (ingest_schedule("mit_climate", "30 5 * * *", DAY),)

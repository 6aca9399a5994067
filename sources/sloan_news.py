"""MIT Sloan Executive Education news (blog) and webinars from its Salesforce community site.

Transport: GET the page (`/s/blog`, `/s/webinars`) and scrape the Aura framework id (`fwuid`)
and the community app id from its HTML, then a Salesforce Aura form-urlencoded POST to
`/s/sfsites/aura?...` calling `CMSContentController.fetchTopicPage` (pageSize 20, page 0 only,
as MIT Learn). The answer is `{"actions": [{"state": "SUCCESS", "returnValue": {"content":
[...]}}]}`. Field rules follow MIT Learn's `news_events/etl/sloan_exec_news.py` and its removed
webinars ETL (reference/mit-learn.md §1.2).

MIT Learn took these off its schedule on 2025-09-05 (#2493): the schedule is created paused
(`SCHEDULE_PAUSED`); run it by hand or unpause it.

Differences on purpose (reference/mit-learn.md §9): MIT Learn's Aura requests have no timeout —
here every request has one; a page without the Aura ids, or an Aura action that failed, is an
error with a reason instead of an IndexError; the form body is encoded properly rather than by
string replacement.
"""

from __future__ import annotations

import html
import json
import re
import warnings
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

from dateutil import parser as dateparser

from learnflow.models import FeedItem, FeedSource, FeedType, Image, TransformOutput
from learnflow.schedules import H3, ingest_schedule
from learnflow.settings import SourceSettings
from sources._catalog import (
    fetch,
    item_key,
    require_dict,
    source_settings,
    text_of,
    wanted_kinds,
)
from sources.base import (
    EASTERN,
    ExtractContext,
    RawPage,
    Source,
    clean_html,
    parse_datetime,
    transform_each,
)

ETL_SOURCE = "sloan_news"
BASE_URL = "https://exec.mit.edu/"
TITLE = "MIT Sloan Executive Education"
ALL_AUDIENCES = ["Faculty", "MIT Community", "Public", "Students"]
SCHEDULE_PAUSED = True
AURA_PATH = "/s/sfsites/aura?r=15&other.CMSContent.fetchTopicPage=1"

NEWS_SOURCE = FeedSource(
    title=TITLE, url=urljoin(BASE_URL, "/s/blog"), feed_type=FeedType.news, description=TITLE
)
WEBINARS_SOURCE = FeedSource(
    title=f"{TITLE} - Webinars",
    url=urljoin(BASE_URL, "/s/webinars"),
    feed_type=FeedType.events,
    description=f"{TITLE} - Webinars",
)


@dataclass(frozen=True)
class AuraQuery:
    """What one kind asks the CMS for."""

    page: str
    content_type: str
    topic: str
    component: str


AURA_QUERIES = {
    "news": AuraQuery("/s/blog", "Blog_Post", "", "markup://c:CMS_BlogPostList"),
    # No recorded request exists for webinars: the content type and topic are those of the
    # recorded webinar item (Card_Display_Item under the topic "Upcoming Webinars").
    "webinars": AuraQuery(
        "/s/webinars", "Card_Display_Item", "Upcoming Webinars", "markup://c:CMS_CardDisplayList"
    ),
}


class SloanNewsSettings(SourceSettings):
    sloan_exec_base_url: str = BASE_URL


# ----------------------------------------------------------------------------------------------
# transform (pure)


def aura_items(payload: Any) -> list[Any]:
    """The CMS items of an Aura answer (every action's `returnValue.content`).

    A list of CMS items, or one item (as recorded in sloan_webinars_output.json), is read as is.
    """
    if isinstance(payload, list):
        return payload
    if isinstance(payload, dict) and isinstance(payload.get("contentNodes"), dict):
        return [payload]
    if not isinstance(payload, dict) or not isinstance(payload.get("actions"), list):
        raise ValueError("not a Salesforce Aura answer: no `actions` list")
    items: list[Any] = []
    for action in payload["actions"]:
        value = action.get("returnValue") if isinstance(action, dict) else None
        if isinstance(value, dict):
            content = value.get("content")
            if not isinstance(content, list):
                raise ValueError("Aura returnValue has no `content` list")
            items.extend(content)
    return items


def _node(item: dict, name: str) -> dict:
    nodes = item.get("contentNodes") or {}
    if not isinstance(nodes, dict):
        raise TypeError("contentNodes is not an object")
    node = nodes.get(name) or {}
    return node if isinstance(node, dict) else {}


def _text(node: dict) -> str | None:
    value = node.get("value")
    return html.unescape(value) if isinstance(value, str) else None


def _image(node: dict) -> Image | None:
    if not node.get("url"):
        return None
    return Image(
        url=urljoin(BASE_URL, node["url"]),
        alt=node.get("altText") or None,
        description=node.get("title") or None,
    )


def transform_news_item(item: dict) -> FeedItem:
    item = require_dict(item, "blog post")
    content_id = text_of(item.get("managedContentId"), "managedContentId")
    author = _text(_node(item, "Quote_Author"))
    topics = (item.get("associations") or {}).get("topics") or []
    return FeedItem(
        guid=content_id,
        feed_type=FeedType.news,
        source=NEWS_SOURCE,
        etl_source=ETL_SOURCE,
        title=html.unescape(text_of(item.get("title"), "title")),
        url=urljoin(BASE_URL, f"/s/blog-post/{item.get('contentUrlName')}-{content_id}"),
        summary=clean_html(_text(_node(item, "Summary"))),
        content=clean_html(_text(_node(item, "First_Section_Content"))),
        image=_image(_node(item, "Featured_Image")),
        authors=[author] if author else [],
        topics=[html.unescape(t["name"]) for t in topics if isinstance(t, dict) and t.get("name")],
        publish_date=parse_datetime(item.get("publishedDate")),
    )


_RANGE = re.compile(r"\s+[-\u2013]\s+|\s*[-\u2013]\s*(?=[A-Za-z])")


def webinar_dates(text: str | None) -> tuple[datetime | None, datetime | None]:
    """`"January - December 2024"`, `"June 5, 2025 1:00 PM"` → start, end (US/Eastern → UTC)."""
    if not text or not text.strip():
        return None, None
    parts = [p.strip() for p in _RANGE.split(text.strip(), maxsplit=1) if p.strip()]
    years = re.findall(r"\b(\d{4})\b", text)
    if not parts or not years:
        return None, None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            # each side fills what it leaves out from the other: "June 5 - 6, 2025"
            start = dateparser.parse(parts[0], default=datetime(int(years[0]), 1, 1))
            end = dateparser.parse(parts[1], default=start) if len(parts) > 1 else None
        except (ValueError, OverflowError):
            return None, None
    if end is not None and end < start:
        end = start

    def utc(dt: datetime) -> datetime:
        return dt.replace(tzinfo=EASTERN).astimezone(UTC)

    return utc(start), (utc(end) if end else None)


def transform_webinar_item(item: dict) -> FeedItem:
    item = require_dict(item, "webinar")
    start, end = webinar_dates(_text(_node(item, "Image_Text")))
    description = clean_html(_text(_node(item, "Description")))
    card = _node(item, "Card_Image")
    return FeedItem(
        guid=text_of(item.get("contentKey"), "contentKey"),
        feed_type=FeedType.events,
        source=WEBINARS_SOURCE,
        etl_source=ETL_SOURCE,
        title=html.unescape(text_of(item.get("title"), "title")),
        url=_text(_node(item, "CTA_Button_URL")),
        summary=description,
        content=description,
        image=_image(card),
        location=["Online"],
        audience=list(ALL_AUDIENCES),
        event_type=["Webinar"],
        event_datetime=start,
        event_end_datetime=end,
    )


def _key(item: Any) -> str | None:
    return item_key(item, "managedContentId", "contentKey")


def transform(kind: str, payload: Any, context: Sequence[Any] = ()) -> TransformOutput:
    """Pure: one Aura answer → news items (`news`) or webinar events (`webinars`)."""
    if kind == "news":
        return transform_each(ETL_SOURCE, aura_items(payload), transform_news_item, _key)
    if kind == "webinars":
        return transform_each(ETL_SOURCE, aura_items(payload), transform_webinar_item, _key)
    raise ValueError(f"unknown Sloan news kind {kind!r}")


# ----------------------------------------------------------------------------------------------
# extract (I/O)

_FWUID = (re.compile(r"fwuid%22%3A%22([^%]+)%22"), re.compile(r'"fwuid"\s*:\s*"([^"]+)"'))
_APP_ID = (
    re.compile(r"siteforce%3AcommunityApp%22%3A%22([^%]+)%"),
    re.compile(r'"APPLICATION@markup://siteforce:communityApp"\s*:\s*"([^"]+)"'),
)


def _first(patterns: Sequence[re.Pattern[str]], text: str) -> str | None:
    for pattern in patterns:
        m = pattern.search(text)
        if m:
            return m.group(1)
    return None


def aura_form(query: AuraQuery, fwuid: str, app_id: str) -> dict[str, str]:
    """The form fields of a `fetchTopicPage` Aura call."""
    message = {
        "actions": [
            {
                "id": "111;a",
                "descriptor": "apex://CMSContentController/ACTION$fetchTopicPage",
                "callingDescriptor": query.component,
                "params": {
                    "contentType": query.content_type,
                    "topicName": query.topic,
                    "pageSize": 20,
                    "pageNumber": 0,
                    "sortFields": ["DateTime1"],
                    "AscDesc": "DESC",
                },
            }
        ]
    }
    context = {
        "mode": "PROD",
        "fwuid": fwuid,
        "app": "siteforce:communityApp",
        "loaded": {
            "APPLICATION@markup://siteforce:communityApp": app_id,
            "COMPONENT@markup://instrumentation:o11ySecondaryLoader": "",
        },
        "dn": [],
        "globals": {},
        "uad": False,
    }
    return {
        "message": json.dumps(message, separators=(",", ":")),
        "aura.context": json.dumps(context, separators=(",", ":")),
        "aura.pageURI": query.page,
        "aura.token": "null",
    }


async def fetch_aura(ctx: ExtractContext, base_url: str, kind: str) -> tuple[bytes, str]:
    query = AURA_QUERIES[kind]
    page = (await fetch(ctx.http, urljoin(base_url, query.page))).decode("utf-8", "replace")
    fwuid, app_id = _first(_FWUID, page), _first(_APP_ID, page)
    if not fwuid or not app_id:
        raise ValueError(f"no Aura fwuid/app id in {query.page}: the page layout changed")
    url = urljoin(base_url, AURA_PATH)
    response = await ctx.http.request("POST", url, data=aura_form(query, fwuid, app_id))
    assert response is not None
    body = response.content
    answer = json.loads(body)
    failed = [
        a.get("state")
        for a in (answer.get("actions") or [] if isinstance(answer, dict) else [])
        if isinstance(a, dict) and a.get("state") not in (None, "SUCCESS")
    ]
    if failed or not isinstance(answer, dict) or "actions" not in answer:
        raise ValueError(f"Aura call for {kind} failed: {failed or 'no actions'}")
    return body, url


async def extract(ctx: ExtractContext) -> AsyncIterator[RawPage]:
    """The blog's first page of posts, then the webinars' (each: scrape page, POST Aura)."""
    cfg = source_settings(SloanNewsSettings, ctx.settings, ctx.options)
    for kind in wanted_kinds(ctx.options, list(AURA_QUERIES)):
        body, url = await fetch_aura(ctx, cfg.sloan_exec_base_url, kind)
        yield RawPage(kind=kind, body=body, item_count=len(aura_items(json.loads(body))), url=url)


SOURCE = Source(
    name="sloan_news",
    etl_source=ETL_SOURCE,
    kinds=("news", "webinars"),
    transform=transform,
    extract=extract,
    feed_types=("news", "events"),
    hosts=("exec.mit.edu",),
    urls=lambda settings: [source_settings(SloanNewsSettings, settings).sloan_exec_base_url],
    description="MIT Sloan Exec Ed blog and webinars (Salesforce Aura); schedule paused",
)

# When it runs (`learn schedules sync` creates these; cron in UTC).
SCHEDULES = (
    # MIT Learn removed it from its beat schedule (2025-09-05); kept, created paused.
    ingest_schedule("sloan_news", "0 */3 * * *", H3, paused=True, note="paused as in MIT Learn"),
)

"""Sloan Exec Ed news and webinars: Aura answers, quarantine, the scrape-then-POST extract.

The webinar item is the recorded one (sloan_webinars_output.json). No blog answer is recorded, so
`built_aura_news_answer()` builds one in the documented format (reference/mit-learn.md §1.2:
managedContentId, contentUrlName, publishedDate, contentNodes.Summary / First_Section_Content /
Featured_Image / Quote_Author, associations.topics) and `built_community_page()` the page whose
HTML carries the Aura framework id and app id, URL-encoded as Salesforce community pages do.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, quote

import pytest
from hypothesis import HealthCheck, given, settings

from devstack.harness.fixture_server import FixtureServer, Request, Response
from learnflow.http import SourceHttp
from learnflow.models import TransformOutput
from learnflow.settings import get_settings
from sources import sloan_news
from sources.base import ExtractContext
from tests.helpers.corruption import corrupted
from tests.helpers.fixtures import SHARED

FIXTURES = SHARED / "fixtures" / "mitlearn" / "test_json"
WEBINAR = json.loads((FIXTURES / "sloan_webinars_output.json").read_text())


def aura_answer(items: list[Any], state: str = "SUCCESS") -> dict:
    return {
        "actions": [
            {"id": "111;a", "state": state, "returnValue": {"content": items, "pageNumber": 0}}
        ],
        "context": {"mode": "PROD", "fwuid": "FWUID-1"},
    }


def built_news_item(n: int, **overrides: Any) -> dict:
    item = {
        "managedContentId": f"20Y6g000000BLOG{n}",
        "contentUrlName": f"leading-with-ai-{n}",
        "publishedDate": f"2024-0{n}-15T14:30:00.000Z",
        "title": f"Leading with AI &amp; data, part {n}",
        "type": "Blog_Post",
        "contentNodes": {
            "Summary": {"nodeType": "Text", "value": "Executives &amp; <b>AI</b>"},
            "First_Section_Content": {
                "nodeType": "RichText",
                "value": "&lt;p&gt;Body&lt;/p&gt;&lt;script&gt;x()&lt;/script&gt;",
            },
            "Featured_Image": {
                "url": f"/cms/delivery/media/MCIMG{n}",
                "altText": "A speaker",
                "title": "Keynote",
            },
            "Quote_Author": {"nodeType": "Text", "value": "Jane Doe"},
        },
        "associations": {"topics": [{"id": "0TO1", "name": "Leadership"}, {"name": "AI &amp; ML"}]},
    }
    item.update(overrides)
    return item


def built_aura_news_answer() -> dict:
    return aura_answer([built_news_item(1), built_news_item(2)])


def built_community_page(fwuid: str = "FWUID-1", app_id: str = "APPID-42") -> bytes:
    context = {
        "mode": "PROD",
        "app": "siteforce:communityApp",
        "fwuid": fwuid,
        "loaded": {"APPLICATION@markup://siteforce:communityApp": app_id},
    }
    encoded = quote(json.dumps(context, separators=(",", ":")), safe="")
    return f'<html><script src="/s/sfsites/l/{encoded}/app.js"></script></html>'.encode()


def test_news_fields():
    out = sloan_news.transform("news", built_aura_news_answer())
    assert not out.quarantined
    first, second = out.feed_items
    assert first.guid == "20Y6g000000BLOG1" and first.feed_type == "news"
    assert first.etl_source == "sloan_news" and first.source.url == "https://exec.mit.edu/s/blog"
    assert first.title == "Leading with AI & data, part 1"
    assert first.url == "https://exec.mit.edu/s/blog-post/leading-with-ai-1-20Y6g000000BLOG1"
    assert first.summary == "Executives &amp; <b>AI</b>"
    assert first.content == "<p>Body</p>"  # sanitised: the script is gone
    assert first.image.url == "https://exec.mit.edu/cms/delivery/media/MCIMG1"
    assert (first.image.alt, first.image.description) == ("A speaker", "Keynote")
    assert first.authors == ["Jane Doe"]
    assert first.topics == ["Leadership", "AI & ML"]
    assert first.publish_date == datetime(2024, 1, 15, 14, 30, tzinfo=UTC)
    assert second.publish_date == datetime(2024, 2, 15, 14, 30, tzinfo=UTC)


def test_bare_items_are_read_too():
    assert len(sloan_news.transform("webinars", WEBINAR).feed_items) == 1
    assert len(sloan_news.transform("news", [built_news_item(1)]).feed_items) == 1


def test_webinar_fields_from_the_recorded_item():
    out = sloan_news.transform("webinars", aura_answer([WEBINAR]))
    assert not out.quarantined
    (webinar,) = out.feed_items
    assert webinar.guid == "MC23XAW2E77RAXJJI5OB3PGSETCI"  # contentKey
    assert webinar.feed_type == "events" and webinar.title == "Save the Date Webinar"
    assert webinar.url == "https://exec.mit.edu/s/webinar-post/save-the-date-20Y6g000000VETQEA4"
    assert webinar.summary == "Take a sneak peek at what we've got planned..."
    assert (
        webinar.image.url == "https://exec.mit.edu/cms/delivery/media/MC5WOBGPJSGBH55HH6UH74G3HM6Q"
    )
    assert webinar.image.alt == "Coming Soon"
    assert webinar.location == ["Online"] and webinar.event_type == ["Webinar"]
    assert webinar.audience == ["Faculty", "MIT Community", "Public", "Students"]
    # Image_Text "January - December 2024", read in US/Eastern
    assert webinar.event_datetime == datetime(2024, 1, 1, 5, tzinfo=UTC)
    assert webinar.event_end_datetime == datetime(2024, 12, 1, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("June 5, 2025", datetime(2025, 6, 5, 4, tzinfo=UTC), None),
        (
            "Jan 10 2025 1:00 PM - 2:00 PM",
            datetime(2025, 1, 10, 18, tzinfo=UTC),
            datetime(2025, 1, 10, 19, tzinfo=UTC),
        ),
        ("Coming soon", None, None),
        ("", None, None),
    ],
)
def test_webinar_dates(text, start, end):
    assert sloan_news.webinar_dates(text) == (start, end)


def test_bad_items_are_quarantined_the_rest_load():
    broken = built_news_item(3, title=None)
    out = sloan_news.transform("news", aura_answer([built_news_item(1), broken]))
    assert [f.guid for f in out.feed_items] == ["20Y6g000000BLOG1"]
    (bad,) = out.quarantined
    assert bad.item_key == "20Y6g000000BLOG3" and "title" in bad.reason
    no_key = {**WEBINAR, "contentKey": None}
    out = sloan_news.transform("webinars", aura_answer([no_key, WEBINAR]))
    assert len(out.feed_items) == 1 and len(out.quarantined) == 1


def test_wrong_shape_raises_value_error():
    with pytest.raises(ValueError):
        sloan_news.transform("news", {"message": "no actions"})
    with pytest.raises(ValueError):
        sloan_news.transform("news", {"actions": [{"returnValue": {"content": "x"}}]})
    with pytest.raises(ValueError):
        sloan_news.transform("events", built_aura_news_answer())


NEWS_ITEM = built_news_item(1)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(news=corrupted(NEWS_ITEM), webinar=corrupted(WEBINAR))
def test_corrupted_items_only_quarantine(news, webinar):
    for kind, item, good in (("news", news, NEWS_ITEM), ("webinars", webinar, WEBINAR)):
        out = sloan_news.transform(kind, aura_answer([item, good]))
        assert isinstance(out, TransformOutput)
        assert len(out.feed_items) + len(out.quarantined) == 2


@settings(max_examples=60, deadline=None)
@given(answer=corrupted(aura_answer([WEBINAR])))
def test_corrupted_answers_raise_only_value_error(answer):
    try:
        out = sloan_news.transform("webinars", answer)
    except ValueError:
        return
    assert isinstance(out, TransformOutput)


def _http() -> SourceHttp:
    return SourceHttp(allowed_hosts={"127.0.0.1"}, allow_private=True, max_backoff=0.01)


async def test_extract_scrapes_ids_then_posts_aura_form():
    posted: list[dict] = []

    def aura(req: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs(req.body.decode()).items()}
        assert req.headers["content-type"].startswith("application/x-www-form-urlencoded")
        assert req.query["other.CMSContent.fetchTopicPage"] == ["1"]
        posted.append(form)
        params = json.loads(form["message"])["actions"][0]["params"]
        if params["contentType"] == "Blog_Post":
            return Response.json(built_aura_news_answer())
        return Response.json(aura_answer([WEBINAR]))

    with FixtureServer() as server:
        server.route(
            "/s/blog", Response(200, built_community_page(), {"Content-Type": "text/html"})
        )
        server.route(
            "/s/webinars", Response(200, built_community_page(), {"Content-Type": "text/html"})
        )
        server.route("/s/sfsites/aura", aura, method="POST")
        server.inject("/s/sfsites/aura", Response(503), method="POST")
        async with _http() as http:
            ctx = ExtractContext(
                http=http,
                settings=get_settings(),
                options={"sloan_exec_base_url": server.base_url},
            )
            pages = [p async for p in sloan_news.extract(ctx)]
        assert server.hits("/s/sfsites/aura") == 3  # the 503, then one POST per kind
    assert [(p.kind, p.item_count) for p in pages] == [("news", 2), ("webinars", 1)]
    context = json.loads(posted[0]["aura.context"])
    assert context["fwuid"] == "FWUID-1"
    assert context["loaded"]["APPLICATION@markup://siteforce:communityApp"] == "APPID-42"
    assert posted[0]["aura.pageURI"] == "/s/blog" and posted[1]["aura.pageURI"] == "/s/webinars"
    params = json.loads(posted[0]["message"])["actions"][0]["params"]
    assert (params["pageSize"], params["pageNumber"]) == (20, 0)
    assert len(sloan_news.transform("news", json.loads(pages[0].body)).feed_items) == 2


async def test_extract_fails_clearly_without_aura_ids_or_on_a_failed_action():
    with FixtureServer() as server:
        server.route("/s/blog", Response(200, b"<html>maintenance</html>"))
        async with _http() as http:
            ctx = ExtractContext(
                http=http,
                settings=get_settings(),
                options={"sloan_exec_base_url": server.base_url, "kinds": ["news"]},
            )
            with pytest.raises(ValueError, match="fwuid"):
                _ = [p async for p in sloan_news.extract(ctx)]
            server.route("/s/blog", Response(200, built_community_page()))
            server.route(
                "/s/sfsites/aura", Response.json(aura_answer([], state="ERROR")), method="POST"
            )
            with pytest.raises(ValueError, match="ERROR"):
                _ = [p async for p in sloan_news.extract(ctx)]


def test_schedule_is_created_paused():
    assert sloan_news.SCHEDULE_PAUSED is True
    assert sloan_news.SOURCE.feed_types == ("news", "events")

"""MIT Climate articles. No payload is recorded: `built_climate_feed()` builds a feed in the
documented format (reference/mit-learn.md §1.2: a JSON list of articles with uuid, title, url,
image_src, image_alt, summary, footnotes, byline, "|"-separated topics, created)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devstack.harness.fixture_server import FixtureServer, Response
from learnflow.http import SourceHttp
from learnflow.models import TransformOutput
from learnflow.settings import get_settings
from sources import mit_climate
from sources.base import ExtractContext
from tests.helpers.corruption import JUNK, corrupted


def built_climate_article(n: int = 1, **overrides: Any) -> dict:
    article = {
        "uuid": f"a1b2c3d4-000{n}",
        "title": "How do solar panels work &amp; what&#039;s next?",
        "url": f"/explainers/solar-{n}",
        "image_src": f"/sites/default/files/solar-{n}.jpg",
        "image_alt": "Solar panels on a roof",
        "summary": "<p>Solar panels turn <b>light</b> into electricity.</p><script>x()</script>",
        "footnotes": "<p>1. Source: MIT Energy Initiative</p>",
        "byline": "By Jane Doe",
        "topics": "Energy|Climate%20Science|Not%20A%20Topic",
        "created": "2023-10-01T12:00:00",
    }
    article.update(overrides)
    return article


def built_climate_feed() -> list[dict]:
    return [built_climate_article(1), built_climate_article(2, topics="", created=None)]


ARTICLE = built_climate_article()


def test_article_fields():
    out = mit_climate.transform("articles", built_climate_feed())
    assert not out.quarantined
    first, second = out.resources
    assert (first.readable_id, first.platform, first.offered_by, first.etl_source) == (
        "a1b2c3d4-0001",
        "climate",
        "climate",
        "mit_climate",
    )
    assert first.resource_type == "document" and first.resource_category == "Article"
    assert first.title == "How do solar panels work & what's next?"
    assert first.url == "https://climate.mit.edu/explainers/solar-1"
    assert first.image.url == "https://climate.mit.edu/sites/default/files/solar-1.jpg"
    assert first.image.alt == "Solar panels on a roof"
    assert first.description == "<p>Solar panels turn <b>light</b> into electricity.</p>"
    assert first.full_description == (
        "<p>Solar panels turn <b>light</b> into electricity.</p>\n"
        "<p>1. Source: MIT Energy Initiative</p>\nBy Jane Doe"
    )
    # "|"-separated, URL-quoted; crosswalked with parents; unknown names dropped
    assert [t.name for t in first.topics] == [
        "Energy",
        "Energy, Climate & Sustainability",
        "Climate Science",
    ]
    # naive `created` is US/Eastern wall time (EDT in October)
    assert first.last_modified == datetime(2023, 10, 1, 16, tzinfo=UTC)
    assert first.details["created_on"] == "2023-10-01T16:00:00+00:00"
    assert first.published and first.runs == []
    assert second.topics == [] and second.last_modified is None


def test_explicit_offset_is_kept():
    (res,) = mit_climate.transform(
        "articles", [built_climate_article(created="2023-10-01T12:00:00Z")]
    ).resources
    assert res.last_modified == datetime(2023, 10, 1, 12, tzinfo=UTC)


def test_bad_article_is_quarantined_the_rest_load():
    feed = [
        built_climate_article(1, uuid=None),
        built_climate_article(2),
        built_climate_article(3, topics=["Energy"]),
        built_climate_article(4, created="yesterday-ish"),
    ]
    out = mit_climate.transform("articles", feed)
    assert [r.readable_id for r in out.resources] == ["a1b2c3d4-0002"]
    assert {q.item_key for q in out.quarantined} == {None, "a1b2c3d4-0003", "a1b2c3d4-0004"}
    assert all(q.reason for q in out.quarantined)


def test_wrong_shape_raises_value_error():
    for kind, payload in (("articles", {"data": []}), ("articles", b"<html>"), ("docs", [])):
        with pytest.raises(ValueError):
            mit_climate.transform(kind, payload)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(article=corrupted(ARTICLE, max_depth=0))
def test_corrupted_articles_only_quarantine(article):
    good = built_climate_article(9)
    out = mit_climate.transform("articles", [article, good])
    assert isinstance(out, TransformOutput)
    assert "a1b2c3d4-0009" in {r.readable_id for r in out.resources}
    assert len(out.resources) + len(out.quarantined) == 2


@settings(max_examples=40, deadline=None)
@given(payload=st.one_of(JUNK, st.dictionaries(st.text(max_size=3), JUNK, max_size=3)))
def test_wrong_payloads_raise_only_value_error(payload):
    try:
        out = mit_climate.transform("articles", payload)
    except ValueError:
        return
    assert isinstance(out, TransformOutput)


async def test_extract_reads_both_feeds_with_retry():
    with FixtureServer() as server:
        server.route("/feeds/explainers", Response.json(built_climate_feed()))
        server.route("/feeds/ask-mit-climate", Response.json([built_climate_article(3)]))
        server.inject("/feeds/ask-mit-climate", Response(503), Response(500))
        base = server.base_url
        async with SourceHttp(
            allowed_hosts={"127.0.0.1"}, allow_private=True, max_backoff=0.01
        ) as http:
            ctx = ExtractContext(
                http=http,
                settings=get_settings(),
                options={
                    "mit_climate_explainers_api_url": f"{base}/feeds/explainers",
                    "ask_mit_climate_api_url": f"{base}/feeds/ask-mit-climate",
                },
            )
            pages = [p async for p in mit_climate.extract(ctx)]
        assert server.hits("/feeds/ask-mit-climate") == 3
    assert [(p.kind, p.item_count) for p in pages] == [("articles", 2), ("articles", 1)]
    out = mit_climate.transform("articles", json.loads(pages[1].body))
    assert [r.readable_id for r in out.resources] == ["a1b2c3d4-0003"]


def test_source_owns_documents_so_prune_really_unpublishes():
    assert mit_climate.SOURCE.resource_types == ("document",)
    assert mit_climate.SOURCE.etl_source == "mit_climate"
    assert {"climate.mit.edu"} <= mit_climate.SOURCE.allowed_hosts(get_settings())

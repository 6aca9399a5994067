"""Medium MIT news: the recorded RSS feed, quarantine, corrupted items, and the extract."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from xml.sax.saxutils import escape

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devstack.harness.fixture_server import FixtureServer, Response
from learnflow.http import SourceHttp
from learnflow.models import TransformOutput
from learnflow.settings import get_settings
from sources import medium_news
from sources.base import ExtractContext
from tests.helpers.fixtures import MITLEARN

RSS_FILE = MITLEARN / "test_html" / "test_medium_mit_news.rss"
RSS = RSS_FILE.read_bytes()
TEXT = RSS.decode()
ITEMS = re.findall(r"<item>.*?</item>", TEXT, flags=re.S)
HEAD, TAIL = TEXT[: TEXT.index("<item>")], TEXT[TEXT.rindex("</item>") + len("</item>") :]


def feed_with(*items: str) -> bytes:
    return (HEAD + "\n".join(items) + TAIL).encode()


def test_feed_fields_from_the_recorded_feed():
    out = medium_news.transform("news", RSS)
    assert not out.quarantined
    assert len(out.feed_items) == 3
    first, second, third = out.feed_items
    source = first.source
    assert source.title == "MIT Open Learning - Medium" and source.feed_type == "news"
    assert source.url == "https://medium.com/feed/open-learning"
    assert source.description.startswith("News, ideas, and thought leadership")
    assert source.image.url == "https://cdn-images-1.medium.com/proxy/1*TGH72Nnw24QL3iV9IOm4VA.png"
    assert first.guid == "https://medium.com/p/a685e2b89c6a" and first.etl_source == "medium_news"
    assert first.title.startswith("Meet 8 MIT women faculty")
    assert first.url == "https://medium.com/open-learning/meet-8-mit-women-faculty"
    assert first.authors == ["MIT Open Learning"]
    assert first.topics == [
        "education",
        "mit",
        "ol-news",
        "online-learning",
        "womens-history-month",
    ]
    assert first.publish_date == datetime(2024, 3, 15, 13, 42, 36, tzinfo=UTC)
    assert first.summary == "Celebrating Women’s History Month with MIT women’s truncated"
    # clean_data keeps no headings: the <h4> goes, its text stays
    assert first.content == "Celebrating Women’s History Month with MIT women’s truncated"
    assert first.image is None  # no <figure>
    assert second.image.url == (
        "https://cdn-images-1.medium.com/max/1024/1*fZ0QAJIgsO3tYVCT5tESwA.jpeg"
    )
    assert second.image.alt == second.image.description == "Orange and blue books"
    assert "<figure>" not in second.content and "<a " not in second.content
    assert third.topics == sorted(third.topics)


def test_feed_url_may_come_as_context():
    out = medium_news.transform("news", RSS, ["https://medium.com/feed/other"])
    assert out.feed_items[0].source.url == "https://medium.com/feed/other"


def test_bad_item_is_quarantined_the_rest_load():
    no_title = re.sub(r"<title>.*?</title>", "<title></title>", ITEMS[1], flags=re.S)
    no_id = re.sub(r"<(guid|link)[^>]*>.*?</\1>", "", ITEMS[2], flags=re.S)
    out = medium_news.transform("news", feed_with(ITEMS[0], no_title, no_id))
    assert [i.guid for i in out.feed_items] == ["https://medium.com/p/a685e2b89c6a"]
    assert len(out.quarantined) == 2
    assert {q.item_key for q in out.quarantined} == {"https://medium.com/p/b9508faf3144", None}
    assert all("title" in q.reason or "id" in q.reason for q in out.quarantined)


def test_wrong_shape_raises_value_error():
    for payload in (b"<html><body>maintenance</body></html>", b"", {"items": []}, b"\x00\xff"):
        with pytest.raises(ValueError):
            medium_news.transform("news", payload)
    with pytest.raises(ValueError):
        medium_news.transform("events", RSS)


CHILDREN = re.findall(r"<(\w+:?\w*)[^>]*>.*?</\1>", ITEMS[1], flags=re.S)
JUNK_TEXT = st.text(max_size=8)


@st.composite
def corrupted_item(draw) -> str:
    """The second real item with some child elements dropped or their text replaced."""
    item = ITEMS[1]
    for tag in draw(st.lists(st.sampled_from(sorted(set(CHILDREN))), min_size=1, max_size=4)):
        pattern = re.compile(rf"<{tag}([^>]*)>.*?</{tag}>", flags=re.S)
        if draw(st.booleans()):
            item = pattern.sub("", item, count=1)
        else:
            junk = escape(draw(JUNK_TEXT))
            item = pattern.sub(
                lambda m, j=junk, t=tag: f"<{t}{m.group(1)}>{j}</{t}>", item, count=1
            )
    return item


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(item=corrupted_item())
def test_corrupted_items_only_quarantine(item):
    out = medium_news.transform("news", feed_with(ITEMS[0], item))
    assert isinstance(out, TransformOutput)
    assert "https://medium.com/p/a685e2b89c6a" in {i.guid for i in out.feed_items}


@settings(max_examples=60, deadline=None)
@given(cut=st.integers(min_value=0, max_value=len(RSS)))
def test_truncated_feeds_raise_only_value_error(cut):
    try:
        out = medium_news.transform("news", RSS[:cut])
    except ValueError:
        return
    assert isinstance(out, TransformOutput)


async def test_extract_gets_the_feed_after_a_429():
    with FixtureServer() as server:
        server.route(
            "/feed/open-learning", Response(200, RSS, {"Content-Type": "application/rss+xml"})
        )
        server.inject("/feed/open-learning", Response(429, headers={"Retry-After": "0"}))
        url = f"{server.base_url}/feed/open-learning"
        async with SourceHttp(
            allowed_hosts={"127.0.0.1"}, allow_private=True, max_backoff=0.01
        ) as http:
            ctx = ExtractContext(
                http=http, settings=get_settings(), options={"medium_mit_news_url": url}
            )
            (page,) = [p async for p in medium_news.extract(ctx)]
        assert server.hits("/feed/open-learning") == 2
    assert (page.kind, page.item_count, page.body) == ("news", 3, RSS)


def test_source_registration():
    assert medium_news.SOURCE.feed_types == ("news",)
    assert medium_news.SOURCE.kinds == ("news",)
    assert "medium.com" in medium_news.SOURCE.allowed_hosts(get_settings())

"""OL events: the recorded JSON:API page and relationships against the recorded expected item,
future-only filtering with an injected clock, quarantine, and the extract's two paths (compound
document; per-relationship GETs when Drupal does not include them)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from devstack.harness.fixture_server import FixtureServer, Request, Response
from learnflow.http import SourceHttp
from learnflow.models import Image, TransformOutput
from learnflow.settings import get_settings
from sources import ol_events
from sources.base import ExtractContext
from tests.helpers.corruption import corrupted
from tests.helpers.fixtures import TEST_JSON


def load(name: str) -> Any:
    return json.loads((TEST_JSON / f"{name}.json").read_text())


PAGE = load("ol_events")
EXPECTED = load("ol_events_output")
RELATED = {
    "img_text": load("ol_events_img_text"),
    "img_src": load("ol_events_img_src"),
    "location": load("ol_events_location"),
    "audience": load("ol_events_audience"),
    "topics": load("ol_events_topics"),
}
CONTEXT = list(RELATED.values())
EVENT = PAGE["data"][0]
BEFORE = datetime(2024, 3, 20, tzinfo=UTC)


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch):
    monkeypatch.setattr(ol_events, "clock", lambda: BEFORE)


def test_matches_the_recorded_expected_item():
    out = ol_events.transform("events", PAGE, CONTEXT)
    assert not out.quarantined
    (item,) = out.feed_items
    assert item.guid == EXPECTED["guid"]
    assert item.url == EXPECTED["url"]
    assert item.title == EXPECTED["title"]
    assert item.image.model_dump() == EXPECTED["image"]
    assert item.summary == EXPECTED["summary"] and item.content == EXPECTED["content"]
    detail = EXPECTED["detail"]
    assert item.location == detail["location"]
    assert item.audience == detail["audience"]
    assert item.event_type == detail["event_type"]
    assert item.event_datetime == datetime.fromisoformat(detail["event_datetime"])
    assert item.event_end_datetime == datetime(2124, 4, 30, 16, tzinfo=UTC)
    assert item.feed_type == "events" and item.etl_source == "ol_events"
    assert item.source.url == "https://openlearning.mit.edu/events"


def test_included_member_works_like_context():
    compound = {**PAGE, "included": [r for doc in CONTEXT for r in ol_events._resources(doc)]}
    (item,) = ol_events.transform("events", compound).feed_items
    assert (
        item.image.url == EXPECTED["image"]["url"]
        and item.audience == EXPECTED["detail"]["audience"]
    )


def test_missing_relationships_leave_fields_empty():
    (item,) = ol_events.transform("events", PAGE).feed_items
    assert item.image is None and item.location == [] and item.audience == []


def test_past_events_are_dropped(monkeypatch):
    monkeypatch.setattr(ol_events, "clock", lambda: datetime(2124, 4, 30, 15, tzinfo=UTC))
    assert ol_events.transform("events", PAGE, CONTEXT).feed_items == []
    monkeypatch.setattr(ol_events, "clock", lambda: datetime(2124, 4, 30, 14, 59, tzinfo=UTC))
    assert len(ol_events.transform("events", PAGE, CONTEXT).feed_items) == 1


def test_bad_event_is_quarantined_the_rest_load():
    broken = copy.deepcopy(EVENT)
    broken["id"] = "broken-1"
    broken["attributes"]["field_event_date"] = {"value": "not a date"}
    no_title = copy.deepcopy(EVENT)
    no_title["id"] = "broken-2"
    no_title["attributes"]["title"] = None
    out = ol_events.transform("events", {**PAGE, "data": [broken, EVENT, no_title]}, CONTEXT)
    assert [i.guid for i in out.feed_items] == [EVENT["id"]]
    assert {q.item_key for q in out.quarantined} == {"broken-1", "broken-2"}
    assert all(q.reason and q.source == "ol_events" for q in out.quarantined)


def test_wrong_shape_raises_value_error():
    for kind, payload in (("events", {"errors": []}), ("events", []), ("news", PAGE)):
        with pytest.raises(ValueError):
            ol_events.transform(kind, payload)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=corrupted(EVENT), media=corrupted(RELATED["img_text"]))
def test_corrupted_events_only_quarantine(event, media):
    good = {**EVENT, "id": "good"}
    context = [media, *CONTEXT[1:]]
    out = ol_events.transform("events", {**PAGE, "data": [event, good]}, context)
    assert isinstance(out, TransformOutput)
    assert "good" in {i.guid for i in out.feed_items}


@settings(max_examples=60, deadline=None)
@given(page=corrupted(PAGE))
def test_corrupted_pages_raise_only_value_error(page):
    try:
        out = ol_events.transform("events", page, CONTEXT)
    except ValueError:
        return
    assert isinstance(out, TransformOutput)


def _rebase(doc: Any, base: str) -> Any:
    return json.loads(json.dumps(doc).replace("https://openlearning.mit.edu", base))


def _http() -> SourceHttp:
    return SourceHttp(allowed_hosts={"127.0.0.1"}, allow_private=True, max_backoff=0.01)


async def test_extract_compound_document_in_one_request():
    with FixtureServer() as server:
        base = server.base_url
        compound = _rebase(
            {**PAGE, "included": [r for d in CONTEXT for r in ol_events._resources(d)]}, base
        )
        compound["links"].pop("next")
        queries: list[dict] = []

        def events(req: Request) -> Response:
            queries.append(req.query)
            return Response.json(compound)

        server.route(ol_events.EVENTS_PATH, events)
        server.inject(ol_events.EVENTS_PATH, Response(429, headers={"Retry-After": "0"}))
        async with _http() as http:
            ctx = ExtractContext(
                http=http, settings=get_settings(), options={"ol_events_base_url": base}
            )
            pages = [p async for p in ol_events.extract(ctx)]
        assert server.hits(ol_events.EVENTS_PATH) == 2  # the 429, then the page
        assert len(server.requests) == 2  # no per-relationship GETs
    assert queries[0]["include"] == [ol_events.INCLUDE]
    assert queries[0]["sort"] == ["-field_event_date.value"]
    (page,) = pages
    (item,) = ol_events.transform("events", json.loads(page.body)).feed_items
    assert item.image == Image(**EXPECTED["image"])  # the public site's URL (transform setting)


async def test_extract_falls_back_to_relationship_gets_and_stops_at_past_events():
    with FixtureServer() as server:
        base = server.base_url
        page1 = _rebase(PAGE, base)
        event_path = f"/jsonapi/node/event/{EVENT['id']}"
        media_path = f"/jsonapi/media/event_image/{RELATED['img_text']['data']['id']}"
        img_text = _rebase(RELATED["img_text"], base)
        img_text["data"]["relationships"]["field_media_image"]["links"] = {
            "related": {"href": f"{base}{media_path}/field_media_image"}
        }
        past = copy.deepcopy(page1)
        past["data"][0]["id"] = "past"
        past["data"][0]["attributes"]["field_event_date"]["value"] = "2020-01-01T10:00:00-05:00"
        past["data"][0]["relationships"] = {}
        past["links"] = {}

        def events(req: Request) -> Response:
            return Response.json(past if req.q("page[offset]") == "50" else page1)

        server.route(ol_events.EVENTS_PATH, events)
        server.route(f"{event_path}/field_event_image", Response.json(img_text))
        server.route(f"{media_path}/field_media_image", Response.json(RELATED["img_src"]))
        server.route(f"{event_path}/field_location_tag", Response.json(RELATED["location"]))
        server.route(f"{event_path}/field_event_audience", Response.json(RELATED["audience"]))
        server.route(f"{event_path}/field_event_category", Response.json(RELATED["topics"]))
        async with _http() as http:
            ctx = ExtractContext(
                http=http, settings=get_settings(), options={"ol_events_base_url": base}
            )
            pages = [p async for p in ol_events.extract(ctx)]
        assert server.hits(f"{media_path}/field_media_image") == 1
        assert server.hits(ol_events.EVENTS_PATH) == 2  # page 2 holds only past events: stop
    first = ol_events.transform("events", json.loads(pages[0].body))
    (item,) = first.feed_items
    assert item.audience == EXPECTED["detail"]["audience"] and item.location == ["Online"]
    assert item.image.alt == "students raising their hands"
    assert ol_events.transform("events", json.loads(pages[1].body)).feed_items == []

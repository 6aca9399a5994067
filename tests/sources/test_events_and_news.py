"""OL events and Sloan webinars against MIT Learn's news_events ETL on the recorded payloads.

OL events: MIT Learn's own expected item (`ol_events_output.json`, recorded beside the input)
is the expectation; the event is listed while it has not ended (frozen clocks)."""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime

import pytest

from sources import ol_events, sloan_news
from tests.conftest import TEST_JSON

# The fidelity suite (issue 16): checked against MIT Learn's ETL, not against learnflow's output.
pytestmark = [pytest.mark.fidelity]


def _load(name: str):
    return json.loads((TEST_JSON / f"{name}.json").read_bytes())


PAGE = _load("ol_events")
CONTEXT = [
    _load(f"ol_events_{n}") for n in ("img_text", "img_src", "location", "audience", "topics")
]
EXPECTED = _load("ol_events_output")


def test_ol_event_matches_mit_learns_expected_item(monkeypatch):
    monkeypatch.setattr(ol_events, "clock", lambda: datetime(2024, 3, 20, tzinfo=UTC))
    (item,) = ol_events.transform("events", PAGE, CONTEXT).feed_items
    assert (item.guid, item.url, item.title) == (
        EXPECTED["guid"],
        EXPECTED["url"],
        EXPECTED["title"],
    )
    assert (item.summary, item.content) == (EXPECTED["summary"], EXPECTED["content"])
    assert item.image.model_dump() == EXPECTED["image"]
    detail = EXPECTED["detail"]
    assert (item.location, item.audience, item.event_type) == (
        detail["location"],
        detail["audience"],
        detail["event_type"],
    )
    assert item.event_datetime == datetime.fromisoformat(detail["event_datetime"])


def test_ol_event_is_dropped_once_it_has_ended(monkeypatch):
    monkeypatch.setattr(ol_events, "clock", lambda: datetime(2125, 1, 1, tzinfo=UTC))
    assert ol_events.transform("events", PAGE, CONTEXT).feed_items == []


def test_sloan_webinar_fields():
    raw = _load("sloan_webinars_output")
    (webinar,) = sloan_news.transform("webinars", [raw]).feed_items
    nodes = raw["contentNodes"]
    assert webinar.guid == raw["contentKey"]
    assert webinar.url == nodes["CTA_Button_URL"]["value"]
    assert webinar.summary == html.unescape(nodes["Description"]["value"])
    assert webinar.feed_type == "events"

"""MIT Professional Education: catalog, news, events (past ones dropped), page-walk extract."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from devstack.harness.fixture_server import FixtureServer, Request, Response
from learnflow.http import SourceHttp
from learnflow.models import TransformOutput
from learnflow.settings import get_settings
from sources import mitpe
from sources.base import ExtractContext
from tests.helpers.corruption import JUNK, corrupted
from tests.helpers.fixtures import SHARED

FIXTURES = SHARED / "fixtures" / "mitlearn" / "test_json"
NOW = datetime(2024, 1, 1, tzinfo=UTC)


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def catalog_pages() -> list[list[dict]]:
    return [load(f"mitpe/professional_ed_resources_{i}.json") for i in range(3)]


@pytest.fixture(autouse=True)
def pinned_clock(monkeypatch):
    monkeypatch.setattr(mitpe, "clock", lambda: NOW)


def test_kinds_default_to_the_catalog():
    assert mitpe.SOURCE.kinds[0] == "courses"
    assert set(mitpe.SOURCE.kinds) == {"courses", "news", "events"}


def test_catalog_fields_and_program_courses_across_pages():
    out = mitpe.transform_pages("courses", catalog_pages())
    assert not out.quarantined
    by_id = {r.readable_id: r for r in out.resources}
    assert len(by_id) == 3
    program = by_id["790a82a4-8967-4b77-9342-4f6be5809abd"]
    assert program.resource_type == "program"
    assert program.title == "Manufatura Inteligente: Produção na Indústria 4.0 (Portuguese)"
    assert program.url == (
        "https://professional.mit.edu/course-catalog/"
        "manufatura-inteligente-producao-na-industria-40-portuguese"
    )
    assert program.image.url == (
        "https://professional.mit.edu/sites/default/files/2020-08/Smart%20Manufacturing.jpg"
    )
    assert program.image.alt == "Smart Manufacturing Header Image"
    assert (program.platform, program.offered_by, program.etl_source) == ("mitpe", "mitpe", "mitpe")
    assert program.professional and program.certification_type == "professional"
    assert {"Business Analytics", "Machine Learning"} <= {t.name for t in program.topics}
    (run,) = program.runs
    assert run.run_id == "7192023070620230914"
    # %Y-%m-%d read at midnight US/Eastern
    assert run.start_date == datetime(2123, 7, 6, 4, tzinfo=UTC)
    assert run.enrollment_end == datetime(2123, 7, 6, 4, tzinfo=UTC)
    assert [p.amount for p in run.prices] == [Decimal("1870.00")]
    assert [i.full_name for i in run.instructors] == ["Brian Anthony"]  # empty lead dropped
    assert run.pace == ["instructor_paced"] and run.availability == "dated"
    assert (program.min_weeks, program.max_weeks) == (6, 10)  # "6 to 10 Weeks"
    assert program.prices[0].amount == Decimal("1870.00")
    assert program.continuing_ed_credits == Decimal("8")
    # courses linked by title, the second one from page 1
    assert [r.child.readable_id for r in program.relationships] == [
        "a44c8b47-552c-45f9-b91b-854172201889",
        "e3be75f6-f7c9-432b-9c24-70c7132e1583",
    ]
    on_campus = by_id["e3be75f6-f7c9-432b-9c24-70c7132e1583"]
    assert on_campus.resource_type == "course"
    assert on_campus.delivery == ["in_person"] and on_campus.location == "On Campus"
    # three start dates but one run id: runs are zipped, as in MIT Learn
    assert [r.run_id for r in on_campus.runs] == ["4172023071720230719"]
    assert on_campus.prices[0].amount == Decimal("3600.00")


def test_a_single_page_links_only_the_courses_it_can_see():
    out = mitpe.transform("courses", catalog_pages()[0])
    program = next(r for r in out.resources if r.resource_type == "program")
    assert [r.child.readable_id for r in program.relationships] == [
        "a44c8b47-552c-45f9-b91b-854172201889"
    ]


def test_items_whose_runs_closed_are_dropped(monkeypatch):
    monkeypatch.setattr(mitpe, "clock", lambda: datetime(2124, 1, 1, tzinfo=UTC))
    out = mitpe.transform_pages("courses", catalog_pages())
    assert out.resources == [] and out.quarantined == []


def test_news_fields_sorted_by_date():
    out = mitpe.transform("news", load("mitpe_news.json"))
    assert not out.quarantined
    assert [f.publish_date.date().isoformat() for f in out.feed_items] == [
        "2020-12-04",
        "2021-03-20",
        "2023-03-16",
        "2024-06-23",
    ]
    first = out.feed_items[0]
    assert first.guid == "b0b59947-6c26-4b4d-a222-6650cca7beae"
    assert first.feed_type == "news" and first.source.title == "MIT Professional Education News"
    assert first.title == "Powering Product Innovation: Q&A with MIT's Erdin Beshimov"
    assert first.url == (
        "https://professional.mit.edu/news/articles/powering-product-innovation-qa-mits-erdin-beshimov"
    )
    assert first.image.url == "https://professional.mit.edu/sites/default/files/2023-04/171108.jpg"
    assert first.authors == ["Ms. Asha Rivers", "Dr. Steven B. Goldman"]
    assert first.publish_date == datetime(2020, 12, 4, 5, tzinfo=UTC)  # midnight Eastern
    assert out.feed_items[1].authors == ["Kate S. Petersen", "School of Engineering"]
    assert out.feed_items[3].authors == []


def test_events_in_the_past_are_dropped():
    out = mitpe.transform("events", load("mitpe_events.json"))
    assert not out.quarantined
    (event,) = out.feed_items  # only "EmTech II" (2024-08-14) is after 2024-01-01
    assert event.guid == "39bbc887-54ee-493d-8cd5-3287565817de"
    assert event.feed_type == "events" and event.source.url == "https://professional.mit.edu/events"
    assert event.event_datetime == datetime(2024, 8, 14, 13, tzinfo=UTC)  # 9:00 AM EDT
    assert event.event_end_datetime == datetime(2024, 8, 15, 21, tzinfo=UTC)  # 5:00 PM EDT
    assert event.summary.startswith("MIT Technology Review's flagship event")
    assert event.audience == ["Faculty", "MIT Community", "Public", "Students"]


def test_events_with_unparsable_times_use_the_date(monkeypatch):
    monkeypatch.setattr(mitpe, "clock", lambda: datetime(2023, 1, 1, tzinfo=UTC))
    out = mitpe.transform("events", load("mitpe_events.json"))
    by_title = {f.title: f for f in out.feed_items}
    assert len(out.feed_items) == 5  # only the 1923 event is over
    on_demand = by_title[
        "OnDemand Open House: Professional Certificate Program Design & Manufacturing"
    ]
    assert on_demand.event_datetime == datetime(2023, 5, 12, 4, tzinfo=UTC)


def test_bad_items_are_quarantined_the_rest_load():
    pages = catalog_pages()
    pages[1][0]["start_date"] = "next spring"
    out = mitpe.transform_pages("courses", pages)
    assert {r.readable_id for r in out.resources} == {
        "790a82a4-8967-4b77-9342-4f6be5809abd",
        "a44c8b47-552c-45f9-b91b-854172201889",
    }
    (bad,) = out.quarantined
    assert bad.item_key == "e3be75f6-f7c9-432b-9c24-70c7132e1583" and "next spring" in bad.reason
    news = load("mitpe_news.json")
    news[2]["title"] = None
    out = mitpe.transform("news", news)
    assert len(out.feed_items) == 3 and out.quarantined[0].item_key == news[2]["id"]


def test_wrong_shape_raises_value_error():
    for kind in ("courses", "news", "events"):
        with pytest.raises(ValueError):
            mitpe.transform(kind, {"items": []})


RECORD = catalog_pages()[0][0]
NEWS = load("mitpe_news.json")[0]
EVENT = load("mitpe_events.json")[1]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    record=corrupted(RECORD, max_depth=0, max_fields=5),
    news=corrupted(NEWS, max_depth=0, max_fields=5),
    event=corrupted(EVENT, max_depth=0, max_fields=5),
)
def test_corrupted_items_only_quarantine(record, news, event):
    for kind, item, good in (
        ("courses", record, RECORD),
        ("news", news, NEWS),
        ("events", event, EVENT),
    ):
        out = mitpe.transform(kind, [item, good], [[item, good]])
        assert isinstance(out, TransformOutput)
        assert len(out.resources) + len(out.feed_items) >= 1


@settings(max_examples=40, deadline=None)
@given(page=JUNK)
def test_wrong_shaped_pages_raise_only_value_error(page):
    try:
        out = mitpe.transform("events", page)
    except ValueError:
        return
    assert isinstance(out, TransformOutput)


async def test_extract_walks_pages_until_empty_and_retries_429():
    files = {
        "/feeds/courses/": [f"mitpe/professional_ed_resources_{i}.json" for i in range(3)],
        "/feeds/news/": ["mitpe_news.json"],
        "/feeds/events/": ["mitpe_events.json"],
    }

    def feed(req: Request) -> Response:
        page = int(req.q("page") or 0)
        names = files[req.path]
        return Response.file(FIXTURES / names[page]) if page < len(names) else Response.json([])

    with FixtureServer() as server:
        for path in files:
            server.route(path, feed)
        server.inject("/feeds/courses/", Response(429, b"", {"Retry-After": "0"}))
        async with SourceHttp(
            allowed_hosts={"127.0.0.1"}, allow_private=True, max_backoff=0.01
        ) as http:
            ctx = ExtractContext(
                http=http, settings=get_settings(), options={"mitpe_base_url": server.base_url}
            )
            pages = [p async for p in mitpe.extract(ctx)]
        pages_seen = [r.q("page") for r in server.requests if r.path == "/feeds/courses/"]
        assert pages_seen == ["0", "0", "1", "2"]  # the 429, then until the empty page 2
    # the catalog's pages are stored as one raw page; news and events page by page
    assert [(p.kind, p.item_count) for p in pages] == [("courses", 3), ("news", 4), ("events", 6)]
    assert pages[0].url.endswith("/feeds/courses/") and pages[1].url.endswith("/feeds/news/?page=0")
    out = mitpe.transform("courses", json.loads(pages[0].body))
    program = next(r for r in out.resources if r.resource_type == "program")
    assert len(out.resources) == 3 and len(program.relationships) == 2


async def test_extract_kinds_option_as_the_schedules_pass_it():
    with FixtureServer() as server:
        server.route("/feeds/news/", lambda r: Response.json([] if r.q("page") != "0" else [NEWS]))
        server.route("/feeds/events/", lambda r: Response.json([]))
        async with SourceHttp(
            allowed_hosts={"127.0.0.1"}, allow_private=True, max_backoff=0.01
        ) as http:
            options = {"mitpe_base_url": server.base_url, "kinds": "news,events"}
            ctx = ExtractContext(http=http, settings=get_settings(), options=options)
            pages = [p async for p in mitpe.extract(ctx)]
            assert [p.kind for p in pages] == ["news"]
            assert server.hits("/feeds/courses/") == 0 and server.hits("/feeds/events/") == 1
            ctx.options["kinds"] = "podcasts"
            with pytest.raises(ValueError, match="unknown kinds"):
                _ = [p async for p in mitpe.extract(ctx)]

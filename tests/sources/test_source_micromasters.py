"""MicroMasters programs. No payload is recorded: `built_catalog()` builds one in the documented
format (reference/mit-learn.md §1.2 "MicroMasters (historical)": id, title, programpage_url,
thumbnail_url, courses[edx_key, position_in_program, course_runs[edx_course_key]], instructors,
topics, total_price, start_date, end_date, enrollment_start)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings

from devstack.harness.fixture_server import FixtureServer, Response
from learnflow.http import SourceHttp
from learnflow.models import TransformOutput
from learnflow.settings import get_settings
from sources import micromasters
from sources.base import ExtractContext
from tests.helpers.corruption import JUNK, corrupted


def built_catalog() -> list[dict]:
    return [
        {
            "id": 1,
            "title": "Statistics and Data Science",
            "programpage_url": "https://micromasters.mit.edu/ds/",
            "thumbnail_url": "https://micromasters.mit.edu/static/images/ds.jpg",
            "courses": [
                {
                    "edx_key": "MITx+18.6501x",
                    "position_in_program": 2,
                    "course_runs": [{"edx_course_key": None}, {"edx_course_key": ""}],
                },
                {
                    "edx_key": "MITx+6.431x",
                    "position_in_program": 1,
                    "course_runs": [{"edx_course_key": "course-v1:MITx+6.431x+2T2024"}],
                },
            ],
            "instructors": [{"name": "John Tsitsiklis"}, {"name": "Philippe Rigollet"}],
            "topics": [{"name": "Data Science"}, {"name": "Mathematics"}],
            "total_price": "1500.00",
            "start_date": None,
            "end_date": "2025-05-30T00:00:00Z",
            "enrollment_start": "2024-01-10T15:00:00Z",
        },
        {
            "id": 2,
            "title": "Data, Economics, and Design of Policy",
            "programpage_url": "https://micromasters.mit.edu/dedp/",
            "thumbnail_url": None,
            "courses": [],
            "instructors": [],
            "topics": [],
            "total_price": "1000.00",
            "start_date": None,
            "end_date": None,
            "enrollment_start": None,
        },
        {
            "id": 3,
            "title": "Finance",
            "programpage_url": "https://micromasters.mit.edu/finance/",
            "thumbnail_url": None,
            "courses": [{"edx_key": "MITx+15.415.1x", "position_in_program": 1, "course_runs": []}],
            "instructors": [{"name": "Andrew Lo"}],
            "topics": [],
            "total_price": "1350",
            "start_date": "2024-09-01T00:00:00Z",
            "end_date": None,
            "enrollment_start": None,
        },
    ]


def test_programs_fields():
    out = micromasters.transform("programs", built_catalog())
    assert not out.quarantined
    # /dedp/ is skipped; /finance/ is not /fin/
    assert [r.readable_id for r in out.resources] == [
        "micromasters-program-1",
        "micromasters-program-3",
    ]
    program = out.resources[0]
    assert (program.platform, program.offered_by, program.etl_source) == (
        "edx",
        "mitx",
        "micromasters",
    )
    assert program.resource_type == "program" and program.title == "Statistics and Data Science"
    assert program.url == "https://micromasters.mit.edu/ds/"
    assert program.image.url == "https://micromasters.mit.edu/static/images/ds.jpg"
    assert program.certification and program.certification_type == "micromasters"
    assert program.availability == "dated" and program.format == ["asynchronous"]
    assert "Data Science" in [t.name for t in program.topics]
    # courses by edx_key, in position_in_program order, linked as edX courses
    assert [(r.child.platform, r.child.readable_id, r.position) for r in program.relationships] == [
        ("edx", "MITx+6.431x", 0),
        ("edx", "MITx+18.6501x", 1),
    ]
    assert program.details["course_runs"] == {
        "MITx+6.431x": ["course-v1:MITx+6.431x+2T2024"],
        "MITx+18.6501x": [],
    }
    (run,) = program.runs
    assert run.run_id == "micromasters-program-1"
    assert [p.amount for p in run.prices] == [Decimal("1500.00")]
    assert [i.full_name for i in run.instructors] == ["John Tsitsiklis", "Philippe Rigollet"]
    # no start date: the enrollment start stands in
    assert run.start_date == datetime(2024, 1, 10, 15, tzinfo=UTC)
    assert run.end_date == datetime(2025, 5, 30, tzinfo=UTC)
    assert program.prices == run.prices
    assert out.resources[1].runs[0].start_date == datetime(2024, 9, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("url", "skipped"),
    [
        ("http://example.com/program/1/url", False),
        ("http://example.com/dedp/program/1/url", True),
        ("http://example.com/scm/program/1/url", True),
        ("http://example.com/fin/program/1/url", True),
        ("http://example.com/finis/program/1/url", False),
        ("http://example.com/pom/program/1/url", True),
        ("http://example.com/pomelo/program/1/url", False),
        (None, True),
    ],
)
def test_skipped_urls(url, skipped):
    program = {**built_catalog()[0], "programpage_url": url}
    assert (micromasters.transform("programs", [program]).resources == []) is skipped


def test_bad_program_is_quarantined_the_rest_load():
    catalog = built_catalog()
    catalog[0]["total_price"] = "ask"
    catalog[2]["courses"][0].pop("position_in_program")
    catalog.append({**built_catalog()[0], "id": 9})
    out = micromasters.transform("programs", catalog)
    assert [r.readable_id for r in out.resources] == ["micromasters-program-9"]
    assert {q.item_key for q in out.quarantined} == {
        "micromasters-program-1",
        "micromasters-program-3",
    }


def test_wrong_shape_raises_value_error():
    with pytest.raises(ValueError):
        micromasters.transform("programs", {"programs": "x"})
    with pytest.raises(ValueError):
        micromasters.transform("courses", [])


GOOD = built_catalog()[0]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program=corrupted(GOOD))
def test_corrupted_items_only_quarantine(program):
    out = micromasters.transform("programs", [program, {**GOOD, "id": 99}])
    assert isinstance(out, TransformOutput)
    assert "micromasters-program-99" in [r.readable_id for r in out.resources]


@settings(max_examples=40, deadline=None)
@given(page=JUNK)
def test_wrong_shaped_pages_raise_only_value_error(page):
    try:
        out = micromasters.transform("programs", page)
    except ValueError:
        return
    assert isinstance(out, TransformOutput)


async def test_extract_one_get_with_retry():
    with FixtureServer() as server:
        server.route("/api/v0/catalog/", Response.json(built_catalog()))
        server.inject("/api/v0/catalog/", Response(502))
        url = f"{server.base_url}/api/v0/catalog/"
        async with SourceHttp(
            allowed_hosts={"127.0.0.1"}, allow_private=True, max_backoff=0.01
        ) as http:
            ctx = ExtractContext(
                http=http, settings=get_settings(), options={"micromasters_catalog_api_url": url}
            )
            (page,) = [p async for p in micromasters.extract(ctx)]
        assert server.hits("/api/v0/catalog/") == 2
    assert (page.kind, page.item_count, page.url) == ("programs", 3, url)
    assert len(micromasters.transform("programs", json.loads(page.body)).resources) == 2


def test_unavailable_without_catalog_url(monkeypatch):
    monkeypatch.delenv("MICROMASTERS_CATALOG_API_URL", raising=False)
    assert "MICROMASTERS_CATALOG_API_URL" in micromasters.SOURCE.unavailable(SimpleNamespace())
    ready = SimpleNamespace(micromasters_catalog_api_url="https://micromasters.mit.edu/api/")
    assert micromasters.SOURCE.unavailable(ready) is None

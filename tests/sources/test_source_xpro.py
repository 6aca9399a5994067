"""xPRO catalog source: transforms on the recorded pages, quarantine, a retrying extract."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from devstack.harness.fixture_server import FixtureServer, Response
from learnflow.http import SourceHttp
from learnflow.models import TransformOutput
from learnflow.settings import get_settings
from sources import xpro
from sources.base import ExtractContext
from tests.helpers.corruption import JUNK, corrupted
from tests.helpers.fixtures import SHARED

FIXTURES = SHARED / "fixtures" / "mitlearn" / "test_json"
NOW = datetime(2025, 1, 1, tzinfo=UTC)


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture(autouse=True)
def pinned_clock(monkeypatch):
    monkeypatch.setattr(xpro, "clock", lambda: NOW)


def test_courses_fields():
    out = xpro.transform("courses", load("xpro_courses.json"))
    assert not out.quarantined
    assert [r.readable_id for r in out.resources] == [
        "course-v1:xPRO+LASERx4",
        "course-v1:xPRO+LASERx3",
    ]
    course = out.resources[0]
    assert (course.platform, course.etl_source, course.offered_by, course.resource_type) == (
        "xpro",
        "xpro",
        "xpro",
        "course",
    )
    assert course.title == "Discovering and Implementing Your Leadership Strengths"
    assert course.url == "https://xpro.mit.edu/courses/course-v1:xPRO+LASERx4/"
    assert course.image.url.endswith("NEW-LP-Course-4_New.jpg")
    assert course.description == "<p>A three-week online course for technical professionals</p>"
    assert course.published and course.professional
    assert course.certification and course.certification_type == "professional"
    assert course.continuing_ed_credits == Decimal("1.25")
    assert course.delivery == ["online"] and course.availability == "dated"
    # "Business:Leadership & Organizations": last ':' segment, crosswalked for xpro
    assert "Organizations & Leadership" in [t.name for t in course.topics]
    assert [r.run_id for r in course.runs] == [
        "course-v1:xPRO+LASERx4+R16",
        "course-v1:xPRO+LASERx4+R17",
        "course-v1:xPRO+LASERx4+R18",
    ]
    first = course.runs[0]
    assert first.published and [p.amount for p in first.prices] == [Decimal("999.00")]
    assert first.start_date == datetime(2025, 2, 10, 5, tzinfo=UTC)
    assert first.enrollment_end == datetime(2025, 2, 17, 23, 59, tzinfo=UTC)
    assert [i.full_name for i in first.instructors] == ["David Niño"]
    assert first.pace == ["self_paced"] and first.format == ["asynchronous"]
    assert (
        course.runs[1].url
        == "https://courses.xpro.mit.edu/courses/course-v1:xPRO+LASERx4+R17/course/"
    )
    assert (course.duration, course.min_weeks, course.max_weeks) == ("3 Weeks", 3, 3)
    assert (course.min_weekly_hours, course.max_weekly_hours) == (5, 5)
    assert [p.amount for p in course.prices] == [Decimal("999.00")]  # best run's price
    assert course.course_numbers[0].value == "course-v1:xPRO+LASERx4"
    assert (out.resources[1].min_weeks, out.resources[1].max_weeks) == (3, 4)


def test_programs_fields():
    out = xpro.transform("programs", load("xpro_programs.json"))
    assert not out.quarantined
    program = out.resources[0]
    assert program.readable_id == "program-v1:xPRO+QCR" and program.resource_type == "program"
    assert program.title == "Quantum Computing Realities"
    assert program.url == "https://xpro.mit.edu/programs/program-v1:xPRO+QCR/"
    assert program.published is True
    assert program.continuing_ed_credits == Decimal("4.5")
    (run,) = program.runs
    assert run.run_id == "program-v1:xPRO+QCR"
    assert [p.amount for p in run.prices] == [Decimal("2419.00")]
    assert run.start_date == datetime(2024, 9, 30, 5, tzinfo=UTC)
    assert [i.full_name for i in run.instructors][:2] == ["Isaac Chuang", "William Oliver"]
    assert [(r.child.platform, r.child.readable_id, r.position) for r in program.relationships] == [
        ("xpro", "course-v1:xPRO+QCRx1", 0),
        ("xpro", "course-v1:xPRO+QCRx2", 1),
    ]
    laser = out.resources[1]
    assert len(laser.relationships) == 4 and laser.prices[0].amount == Decimal("3519.00")


def test_unpriced_items_are_unpublished_and_partner_platforms_mapped():
    courses = load("xpro_courses.json")
    for run in courses[0]["courseruns"]:
        run["current_price"] = None
    courses[1]["platform"] = "Emeritus"
    out = xpro.transform("courses", courses)
    assert out.resources[0].published is False
    assert all(not r.published and r.prices == [] for r in out.resources[0].runs)
    assert out.resources[1].platform == "emeritus"


def test_bad_items_are_quarantined_the_rest_load():
    courses = load("xpro_courses.json")
    courses[0]["platform"] = "Coursera"
    courses.append({"readable_id": "course-v1:xPRO+BROKEN", "courseruns": "oops"})
    out = xpro.transform("courses", courses)
    assert [r.readable_id for r in out.resources] == ["course-v1:xPRO+LASERx3"]
    reasons = {q.item_key: q.reason for q in out.quarantined}
    assert "unknown xPRO platform 'Coursera'" in reasons["course-v1:xPRO+LASERx4"]
    assert "course-v1:xPRO+BROKEN" in reasons


def test_wrong_shape_raises_value_error():
    with pytest.raises(ValueError):
        xpro.transform("courses", {"detail": "not found"})
    with pytest.raises(ValueError):
        xpro.transform("videos", [])


COURSE = load("xpro_courses.json")[0]
PROGRAM = load("xpro_programs.json")[0]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(course=corrupted(COURSE), program=corrupted(PROGRAM))
def test_corrupted_items_only_quarantine(course, program):
    for kind, item, good in (("courses", course, COURSE), ("programs", program, PROGRAM)):
        out = xpro.transform(kind, [item, good])
        assert isinstance(out, TransformOutput)
        assert len(out.resources) + len(out.quarantined) == 2


@settings(max_examples=40, deadline=None)
@given(page=JUNK)
def test_wrong_shaped_pages_raise_only_value_error(page):
    try:
        out = xpro.transform("programs", page)
    except ValueError:
        return
    assert isinstance(out, TransformOutput)


async def test_extract_retries_500_and_429():
    with FixtureServer() as server:
        server.route("/api/courses/", Response.file(FIXTURES / "xpro_courses.json"))
        server.route("/api/programs/", Response.file(FIXTURES / "xpro_programs.json"))
        server.inject("/api/courses/", Response(500))
        server.inject("/api/programs/", Response(429, b"", {"Retry-After": "0"}))
        options = {
            "xpro_courses_api_url": f"{server.base_url}/api/courses/",
            "xpro_catalog_api_url": f"{server.base_url}/api/programs/",
        }
        async with SourceHttp(
            allowed_hosts={"127.0.0.1"}, allow_private=True, max_backoff=0.01
        ) as http:
            ctx = ExtractContext(http=http, settings=get_settings(), options=options)
            pages = [p async for p in xpro.extract(ctx)]
        assert [(p.kind, p.item_count) for p in pages] == [("courses", 2), ("programs", 2)]
        assert server.hits("/api/courses/") == 2 and server.hits("/api/programs/") == 2
    assert pages[0].body == (FIXTURES / "xpro_courses.json").read_bytes()
    assert len(xpro.transform(pages[1].kind, json.loads(pages[1].body)).resources) == 2


async def test_extract_404_is_an_error():
    with FixtureServer() as server:
        options = {
            "xpro_courses_api_url": f"{server.base_url}/api/courses/",
            "xpro_catalog_api_url": f"{server.base_url}/api/programs/",
        }
        async with SourceHttp(
            allowed_hosts={"127.0.0.1"}, allow_private=True, max_backoff=0.01
        ) as http:
            ctx = ExtractContext(http=http, settings=get_settings(), options=options)
            with pytest.raises(Exception, match="404"):
                _ = [p async for p in xpro.extract(ctx)]

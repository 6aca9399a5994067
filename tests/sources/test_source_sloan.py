"""Sloan Executive Education: courses with their offerings as context, quarantine, JWT extract."""

from __future__ import annotations

import copy
import json
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs

import pytest
from hypothesis import HealthCheck, given, settings

from devstack.harness.fixture_server import FixtureServer, Request, Response
from learnflow.http import SourceHttp
from learnflow.models import TransformOutput
from learnflow.settings import get_settings
from sources import sloan
from sources._oauth import TOKENS
from sources.base import ExtractContext
from tests.helpers.corruption import JUNK, corrupted
from tests.helpers.fixtures import SHARED

FIXTURES = SHARED / "fixtures" / "mitlearn" / "test_json"
NOW = datetime(2024, 9, 1, tzinfo=UTC)


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


COURSES = load("test_sloan_courses.json")
RUNS = load("test_sloan_runs.json")


@pytest.fixture(autouse=True)
def pinned_clock(monkeypatch):
    monkeypatch.setattr(sloan, "clock", lambda: NOW)


def test_courses_with_runs_as_context():
    out = sloan.transform("courses", COURSES, [RUNS])
    assert not out.quarantined
    # 99 courses, 8 without any offering are skipped (all have a URL)
    assert len(out.resources) == 91
    assert sum(len(r.runs) for r in out.resources) == 134
    course = next(r for r in out.resources if r.readable_id == "a056g00000URaaQAAT")
    assert (course.platform, course.offered_by, course.etl_source) == ("see", "see", "see")
    assert course.title == "Accelerating Digital Transformation with Algorithmic Business Thinking"
    assert course.url.endswith("/a056g00000URaaQAAT.html")
    assert course.image.url.endswith("/images/ABT.jpg") and course.image.alt == course.title
    assert course.professional and course.certification_type == "professional"
    # "Business: Digital Business/IT" → last ':' segment, crosswalked for see
    assert "Digital Business & IT" in [t.name for t in course.topics]
    assert course.delivery == ["in_person", "online"]
    assert course.last_modified == datetime(2024, 8, 12, 21, 17, 5, tzinfo=UTC)
    online, campus = course.runs
    assert online.run_id == "ABT 9-25-2024"
    assert online.start_date == datetime(2024, 9, 25, 4, tzinfo=UTC)  # midnight US/Eastern
    assert [p.amount for p in online.prices] == [Decimal("2900.00")]
    assert online.format == ["asynchronous"] and online.location is None
    assert (online.min_weeks, online.max_weeks) == (6, 6)
    assert (online.min_weekly_hours, online.max_weekly_hours) == (6, 8)
    assert campus.delivery == ["in_person"] and campus.format == ["synchronous"]
    assert campus.location == "Cambridge, MA"
    assert (campus.duration, campus.min_weeks) == ("2 days", 1)  # days → weeks (5-day weeks)
    # the best run (enrollable, earliest) gives the course its price
    assert [p.amount for p in course.prices] == [Decimal("2900.00")]


def test_delivery_availability_and_currency_rules():
    out = sloan.transform("courses", COURSES, [RUNS])
    assert Counter(r.availability for r in out.resources) == {"dated": 86, "anytime": 5}
    on_demand = [r for r in out.resources if r.availability == "anytime"]
    assert all(r.pace == ["self_paced"] for r in on_demand)
    blended = [r for r in out.resources if r.delivery == ["hybrid"]]
    assert len(blended) == 3
    assert all(run.format == ["synchronous", "asynchronous"] for r in blended for run in r.runs)
    assert all(r.format == ["asynchronous", "synchronous"] for r in blended)
    swiss = next(r for r in out.resources if r.readable_id == "a056g00000URaMqAAL")
    assert ("12500.00", "CHF") in {
        (str(p.amount), p.currency) for run in swiss.runs for p in run.prices
    }
    first = next(r for r in out.resources if r.readable_id == "a056g00000URaaQAAT")
    assert first.continuing_ed_credits == Decimal("2.0")  # from the course's first offering


def test_runs_kind_is_context_only():
    assert sloan.transform("runs", RUNS) == TransformOutput()
    assert sloan.SOURCE.kinds[0] == "courses"
    assert sloan.SOURCE.context_kinds == {"courses": ("runs",)}


def test_courses_without_url_or_runs_are_skipped():
    with_runs = {r["Course_Id"] for r in RUNS}
    courses = copy.deepcopy([c for c in COURSES if c["Course_Id"] in with_runs][:2])
    courses[0]["URL"] = None
    out = sloan.transform("courses", courses, [RUNS])
    assert [r.readable_id for r in out.resources] == [courses[1]["Course_Id"]]
    assert sloan.transform("courses", COURSES[:3], []).resources == []


def test_bad_course_is_quarantined_the_rest_load():
    runs = copy.deepcopy(RUNS)
    bad_id = "a056g00000URaaQAAT"
    next(r for r in runs if r["Course_Id"] == bad_id)["Price"] = "call us"
    out = sloan.transform("courses", COURSES, [runs])
    assert len(out.resources) == 90
    (bad,) = out.quarantined
    assert bad.source == "see" and bad.item_key == bad_id and "call us" in bad.reason


def test_wrong_shape_raises_value_error():
    with pytest.raises(ValueError):
        sloan.transform("courses", "not json", [RUNS])
    with pytest.raises(ValueError):
        sloan.transform("offerings", COURSES)


GOOD = next(c for c in COURSES if c["Course_Id"] == "a056g00000URaaQAAT")
GOOD_RUN = next(r for r in RUNS if r["Course_Id"] == GOOD["Course_Id"])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    course=corrupted(GOOD, max_depth=0, max_fields=5),
    run=corrupted(GOOD_RUN, max_depth=0, max_fields=5),
)
def test_corrupted_items_only_quarantine(course, run):
    run = (
        {**run, "Course_Id": course.get("Course_Id")}
        if isinstance(course.get("Course_Id"), str)
        else run
    )
    out = sloan.transform(
        "courses",
        [course, {**GOOD, "Course_Id": "other"}],
        [[run, {**GOOD_RUN, "Course_Id": "other"}]],
    )
    assert isinstance(out, TransformOutput)
    assert "other" in [r.readable_id for r in out.resources]


@settings(max_examples=40, deadline=None)
@given(page=JUNK)
def test_wrong_shaped_pages_raise_only_value_error(page):
    try:
        out = sloan.transform("courses", page, [RUNS])
    except ValueError:
        return
    assert isinstance(out, TransformOutput)


async def test_extract_token_then_courses_and_offerings():
    TOKENS.clear()
    with FixtureServer() as server:

        def token(req: Request) -> Response:
            form = parse_qs(req.body.decode())
            assert form["token_type"] == ["jwt"] and form["grant_type"] == ["client_credentials"]
            return Response.json({"access_token": "see-token", "expires_in": 600})

        def guarded(name: str):
            def handler(req: Request) -> Response:
                if req.headers.get("authorization") != "JWT see-token":
                    return Response.json({"detail": "no"}, status=401)
                return Response.file(FIXTURES / name)

            return handler

        server.route("/oauth/token", token, method="POST")
        server.route("/api/courses", guarded("test_sloan_courses.json"))
        server.route("/api/course-offerings", guarded("test_sloan_runs.json"))
        server.inject("/api/courses", Response(500))
        options = {
            "see_api_url": f"{server.base_url}/api/",
            "see_api_access_token_url": f"{server.base_url}/oauth/token",
            "see_api_client_id": "see-id",
            "see_api_client_secret": "see-secret",
        }
        async with SourceHttp(
            allowed_hosts={"127.0.0.1"}, allow_private=True, max_backoff=0.01
        ) as http:
            ctx = ExtractContext(http=http, settings=get_settings(), options=options)
            pages = [p async for p in sloan.extract(ctx)]
        assert server.hits("/oauth/token") == 1 and server.hits("/api/courses") == 2
    assert [(p.kind, p.item_count) for p in pages] == [("courses", 99), ("runs", 137)]
    out = sloan.transform("courses", json.loads(pages[0].body), [json.loads(pages[1].body)])
    assert len(out.resources) == 91


def test_configured_hosts_join_the_allow_list(monkeypatch):
    monkeypatch.delenv("SEE_API_ACCESS_TOKEN_URL", raising=False)
    cfg = SimpleNamespace(see_api_url="https://see-api.example.org/v1/")
    assert sloan.SOURCE.allowed_hosts(cfg) == {"see-api.example.org"}


def test_unavailable_names_the_missing_settings(monkeypatch):
    for name in (
        "SEE_API_URL",
        "SEE_API_ACCESS_TOKEN_URL",
        "SEE_API_CLIENT_ID",
        "SEE_API_CLIENT_SECRET",
    ):
        monkeypatch.delenv(name, raising=False)
    reason = sloan.SOURCE.unavailable(SimpleNamespace(see_api_url="https://see.example/api/"))
    assert reason and "SEE_API_CLIENT_SECRET" in reason and "SEE_API_URL" not in reason

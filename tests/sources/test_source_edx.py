"""edX catalog source: transforms on the recorded catalog pages, quarantine, OAuth2 JWT extract."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs

import pytest
from hypothesis import HealthCheck, given, settings
from pydantic import SecretStr

from devstack.harness.fixture_server import FixtureServer, Request, Response
from learnflow.http import SourceHttp
from learnflow.models import TransformOutput
from learnflow.settings import get_settings
from sources import edx
from sources._oauth import TOKENS, TokenCache
from sources.base import ExtractContext
from tests.helpers.corruption import JUNK, corrupted
from tests.helpers.fixtures import SHARED

FIXTURES = SHARED / "fixtures" / "mitlearn" / "test_json"
NOW = datetime(2024, 1, 1, tzinfo=UTC)


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture(autouse=True)
def pinned_clock(monkeypatch):
    monkeypatch.setattr(edx, "clock", lambda: NOW)


# ----------------------------------------------------------------------------------------------
# courses


def test_courses_page_fields():
    out = edx.transform("courses", load("test_mitx_course.json"))
    assert not out.quarantined
    assert [r.readable_id for r in out.resources] == ["MITx+15.071x", "MITx+8.370.3x_review"]
    course = out.resources[0]
    assert (course.platform, course.resource_type, course.etl_source, course.offered_by) == (
        "edx",
        "course",
        "mit_edx",
        "mitx",
    )
    assert course.title == "The Analytics Edge"
    # the course's marketing URL is not on edx.org: MIT Learn falls back to the alt URL
    assert course.url == "https://courses.edx.org/MITx+15.071x/course/"
    assert course.image.url.endswith("747c9c2f216e.small.jpg")
    assert course.image.description == "Image description"
    assert course.last_modified == datetime(2019, 1, 11, 18, 7, 29, 593570, tzinfo=UTC)
    assert [d.department_id for d in course.departments] == ["15"]
    assert course.course_numbers[0].value == "MITx+15.071x"
    assert course.course_numbers[0].department.name == "Management"
    assert "Data Science" in [t.name for t in course.topics]
    # its only run is "published" but not marked enrollable: not published (MIT Learn's rule)
    assert course.published is False
    assert course.certification is False and course.prices == []
    (run,) = course.runs
    assert run.run_id == "course-v1:MITx+15.071x+1T2019"
    assert run.published is False
    assert (run.year, run.semester) == (2019, "spring")
    assert run.level == ["intermediate"] and run.languages == ["en-us"]
    assert run.start_date == datetime(2019, 2, 20, 15, tzinfo=UTC)
    assert run.end_date == datetime(2019, 5, 22, 23, 30, tzinfo=UTC)
    assert [p.amount for p in run.prices] == [Decimal("0.00"), Decimal("150.00")]
    assert [i.full_name for i in run.instructors] == ["Dimitris Bertsimas", "Allison O'Hair"]
    assert run.pace == ["instructor_paced"] and run.status == "Starting Soon"
    assert (run.duration, run.min_weeks, run.max_weeks) == ("13 weeks", 13, 13)
    assert (run.time_commitment, run.min_weekly_hours, run.max_weekly_hours) == (
        "10-15 hours/week",
        10,
        15,
    )
    # no published run: MIT Learn's best_run is None, so nothing is copied from a run
    assert course.duration is None and course.time_commitment is None

    review = out.resources[1]
    # marketing URL on edx.org: kept, query string dropped
    assert review.url == "https://www.edx.org/course/quantum-information-science-i-part-3-review"
    assert review.runs[0].availability == "anytime"  # archived runs can start any time
    assert review.availability is None  # no published run: nothing copied from a run
    assert (review.runs[0].min_weekly_hours, review.runs[0].max_weekly_hours) == (5, 7)
    assert review.pace == ["self_paced"]


def test_enrollable_run_publishes_and_certifies():
    page = load("test_mitx_course.json")
    page["results"][0]["course_runs"][0]["is_enrollable"] = True
    course = edx.transform("courses", page).resources[0]
    assert course.published is True
    assert course.certification is True and course.certification_type == "completion"
    assert [p.amount for p in course.prices] == [Decimal("0.00"), Decimal("150.00")]
    assert course.availability == "dated" and course.pace == ["instructor_paced"]


def test_non_mit_courses_are_filtered_not_quarantined():
    out = edx.transform("courses", load("test_non_mitx_course.json"))
    assert out.resources == [] and out.quarantined == []


def test_deleted_titles_and_runless_courses_are_skipped():
    page = load("test_mitx_course.json")
    page["results"][0]["title"] = "[delete] The Analytics Edge"
    page["results"][1]["course_runs"] = []
    assert edx.transform("courses", page).resources == []


# ----------------------------------------------------------------------------------------------
# programs


def test_programs_fields():
    out = edx.transform("programs", load("test_mitx_programs.json"))
    assert not out.quarantined
    # IUx MicroMasters (retired) and DelftX XSeries are not MIT's
    (program,) = out.resources
    assert program.readable_id == "927093e3-46ba-4f44-a861-0f8c7aec4f74"
    assert program.resource_type == "program" and program.etl_source == "mit_edx"
    assert program.title == "Circuits and Electronics"
    assert program.url == "https://www.edx.org/xseries/mitx-circuits-and-electronics"
    assert program.image.url.endswith("94e7a300643d.medium.png")
    assert program.published is True
    assert program.certification_type == "completion"
    assert [(r.relation_type, r.child.readable_id, r.position) for r in program.relationships] == [
        ("PROGRAM_COURSES", "MITx+6.002.1x", 0),
        ("PROGRAM_COURSES", "MITx+6.002.2x", 1),
        ("PROGRAM_COURSES", "MITx+6.002.3x", 2),
    ]
    assert all(r.child.platform == "edx" for r in program.relationships)
    (run,) = program.runs
    assert run.run_id == program.readable_id and run.published
    # the cheapest paid seat of each course's first published run, summed: 3 x 189
    assert [p.amount for p in run.prices] == [Decimal("567.00")]
    assert program.prices == run.prices
    assert run.start_date == datetime(2019, 6, 20, 15, tzinfo=UTC)
    assert run.end_date == datetime(2025, 5, 26, 15, tzinfo=UTC)
    assert program.availability == "anytime" and program.pace == ["self_paced"]
    # effort, topics and instructors come from the run's published courses: none given here
    assert (program.min_weeks, program.max_weeks, program.topics) == (None, None, [])


# ----------------------------------------------------------------------------------------------
# quarantine and page shape


def test_bad_course_is_quarantined_the_rest_load():
    page = load("test_mitx_course.json")
    page["results"][1]["course_runs"][0]["seats"] = [{"price": "free", "currency": "USD"}]
    out = edx.transform("courses", page)
    assert [r.readable_id for r in out.resources] == ["MITx+15.071x"]
    (bad,) = out.quarantined
    assert bad.source == "mit_edx" and bad.item_key == "MITx+8.370.3x_review"
    assert "price" in bad.reason
    assert json.loads(bad.raw)["key"] == "MITx+8.370.3x_review"


def test_wrong_shaped_page_and_unknown_kind_raise_value_error():
    with pytest.raises(ValueError):
        edx.transform("courses", {"detail": "nope"})
    with pytest.raises(ValueError):
        edx.SOURCE.transform_payload("videos", [])


COURSE = load("test_mitx_course.json")["results"][0]
PROGRAM = load("test_mitx_programs.json")[0]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(course=corrupted(COURSE), program=corrupted(PROGRAM))
def test_corrupted_items_only_quarantine(course, program):
    for kind, item, good in (("courses", course, COURSE), ("programs", program, PROGRAM)):
        out = edx.transform(kind, {"next": None, "results": [item, good]})
        assert isinstance(out, TransformOutput)
        assert len(out.resources) + len(out.quarantined) >= 1


@settings(max_examples=40, deadline=None)
@given(page=JUNK)
def test_wrong_shaped_pages_raise_only_value_error(page):
    try:
        out = edx.transform("courses", page)
    except ValueError:
        return
    assert isinstance(out, TransformOutput)


# ----------------------------------------------------------------------------------------------
# extract: OAuth2 JWT, `next` pages, a 500 retried


def _http() -> SourceHttp:
    return SourceHttp(allowed_hosts={"127.0.0.1"}, allow_private=True, max_backoff=0.01)


async def test_extract_gets_one_jwt_and_follows_next_pages():
    TOKENS.clear()
    courses = load("test_mitx_course.json")
    second = load("test_non_mitx_course.json")
    with FixtureServer() as server:
        base = server.base_url

        def token(req: Request) -> Response:
            form = parse_qs(req.body.decode())
            assert form["grant_type"] == ["client_credentials"]
            assert form["token_type"] == ["jwt"]
            assert form["client_id"] == ["learn-id"] and form["client_secret"] == ["s3cret"]
            return Response.json({"access_token": "tok-1", "expires_in": 3600})

        def catalog(req: Request) -> Response:
            if req.headers.get("authorization") != "JWT tok-1":
                return Response.json({"detail": "unauthorized"}, status=401)
            if req.q("page") == "2":
                return Response.json({**second, "next": None})
            return Response.json({**courses, "next": f"{base}/api/v1/catalogs/10/courses/?page=2"})

        server.route("/oauth2/v1/access_token", token, method="POST")
        server.route("/api/v1/catalogs/10/courses/", catalog)
        server.route("/api/v1/programs/", Response.file(FIXTURES / "test_mitx_programs.json"))
        server.inject("/api/v1/programs/", Response(500))
        options = {
            "edx_api_client_id": "learn-id",
            "edx_api_client_secret": "s3cret",
            "edx_api_access_token_url": f"{base}/oauth2/v1/access_token",
            "edx_api_url": f"{base}/api/v1/catalogs/10/courses/",
            "edx_programs_api_url": f"{base}/api/v1/programs/",
        }
        async with _http() as http:
            ctx = ExtractContext(http=http, settings=get_settings(), options=options)
            pages = [p async for p in edx.extract(ctx)]
        assert [(p.kind, p.item_count) for p in pages] == [
            ("courses", 2),
            ("courses", 1),
            ("programs", 3),
        ]
        assert pages[1].url.endswith("?page=2")
        assert server.hits("/oauth2/v1/access_token") == 1  # one token for every page
        assert server.hits("/api/v1/programs/") == 2  # the 500, then the page
        api_calls = [r for r in server.requests if r.path.startswith("/api/")]
        assert all(r.headers["authorization"] == "JWT tok-1" for r in api_calls)
    out = edx.transform("courses", json.loads(pages[0].body))
    assert len(out.resources) == 2


async def test_token_cache_refreshes_after_expiry():
    now = [1000.0]
    cache = TokenCache(clock=lambda: now[0])
    issued = iter(["tok-a", "tok-b"])
    with FixtureServer() as server:
        server.route(
            "/token",
            lambda _req: Response.json({"access_token": next(issued), "expires_in": 120}),
            method="POST",
        )
        url = f"{server.base_url}/token"
        async with _http() as http:
            assert await cache.token(http, url, "id", SecretStr("x")) == "tok-a"
            now[0] += 30
            assert await cache.token(http, url, "id", SecretStr("x")) == "tok-a"
            now[0] += 60  # 120 s token, refreshed 60 s early
            assert await cache.token(http, url, "id", SecretStr("x")) == "tok-b"
        assert server.hits("/token") == 2


def test_unavailable_without_credentials(monkeypatch):
    for name in ("EDX_API_CLIENT_ID", "EDX_API_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    reason = edx.SOURCE.unavailable(SimpleNamespace())
    assert reason and "EDX_API_CLIENT_ID" in reason
    ready = SimpleNamespace(edx_api_client_id="id", edx_api_client_secret=SecretStr("x"))
    assert edx.SOURCE.unavailable(ready) is None


async def test_a_token_answer_without_a_token_is_a_permanent_error():
    from learnflow.http import PermanentHttpError

    with FixtureServer() as server:
        server.route("/token", Response.json({"error": "invalid_client"}), method="POST")
        server.route("/bad", Response(401), method="POST")
        async with _http() as http:
            with pytest.raises(PermanentHttpError, match="access_token"):
                await TokenCache().token(http, f"{server.base_url}/token", "id", "secret")
            with pytest.raises(PermanentHttpError, match="401") as err:
                await TokenCache().token(http, f"{server.base_url}/bad", "id", "secret")
            assert "secret" not in str(err.value)

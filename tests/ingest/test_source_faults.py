"""A misbehaving source: 500s, 429 with Retry-After, stalls past the client timeout, garbage
items, truncated or non-JSON pages, an empty feed and a feed missing half its items.

Transient faults are retried and the run ends `ok`; unreadable items are quarantined with their
reason while the rest loads; an unreadable page ends the fetch as incomplete, so the prune guard
refuses and nothing is unpublished (the refusal is the `Outcome` search attribute). One stack
and one worker process serve the whole module (the runs are independent; assertions compare
before/after). The worker's HTTP timeout is 1 s so a stall is cheap to provoke.
"""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator

import pytest

from devstack.harness.fixture_server import Response
from tests.helpers.polling import eventually
from tests.helpers.stack import (
    COURSES,
    COURSES_PATH,
    PROGRAMS,
    PROGRAMS_PATH,
    SOURCE_RESOURCES,
    Script,
    Stack,
    StackMaker,
)

pytestmark = [pytest.mark.reliability, pytest.mark.temporal, pytest.mark.postgres]

HTTP_TIMEOUT = 1.0


@pytest.fixture(scope="module")
async def source_stack(reliability_pg, tmp_path_factory) -> AsyncIterator[Stack]:
    maker = StackMaker(reliability_pg, tmp_path_factory.mktemp("source-faults"))
    try:
        stack = await maker(HTTP_TIMEOUT_SECONDS=str(HTTP_TIMEOUT))
        stack.start_worker()
        first = await stack.ingest()  # the baseline every test compares against
        assert first.outcome == "ok" and first.inserted == SOURCE_RESOURCES, first
        yield stack
    finally:
        maker.close()


def route_of(stack: Stack, path: str):
    return stack.fixtures.routes[("GET", path)]


async def quarantined(stack: Stack, run_id: str) -> list:
    return await stack.query(
        "SELECT item_key, reason, raw FROM quarantine WHERE run_id = $1 ORDER BY id", run_id
    )


async def test_transient_faults_are_retried(source_stack: Stack):
    stack = source_stack
    courses = Script(
        route_of(stack, COURSES_PATH),
        Response(500, b"Internal Server Error"),
        Response(429, b"slow down", {"Retry-After": "1"}),
        HTTP_TIMEOUT + 1.5,  # stalls past the client's timeout
    )
    programs = Script(route_of(stack, PROGRAMS_PATH), Response(502, b"<html>bad gateway</html>"))
    stack.fixtures.route(COURSES_PATH, courses)
    stack.fixtures.route(PROGRAMS_PATH, programs)
    try:
        result = await stack.ingest()
    finally:
        stack.fixtures.route(COURSES_PATH, courses.normal)
        stack.fixtures.route(PROGRAMS_PATH, programs.normal)
    assert result.outcome == "ok", result
    assert courses.hits == 4 and programs.hits == 2  # every fault answered by a retry
    assert result.inserted + result.updated + result.unchanged == SOURCE_RESOURCES
    assert result.quarantined == 0 and result.unpublished == 0
    assert await quarantined(stack, result.run_id) == []


async def test_garbage_items_are_quarantined_and_the_rest_loads(source_stack: Stack):
    stack = source_stack
    before = await stack.published()
    page = copy.deepcopy(COURSES)
    broken = copy.deepcopy(page["results"][0])
    broken.update(readable_id="course-v1:garbage+1", id=9001, title=None, courseruns="nope")
    page["results"] += [broken, "not an object", {"id": 9002}]
    stack.fixtures.route(COURSES_PATH, Response.json(page))
    try:
        result = await stack.ingest()
    finally:
        stack.fixtures.route(COURSES_PATH, Response.json(COURSES))
    assert result.outcome == "ok", result
    assert result.quarantined == 3
    assert result.inserted + result.updated + result.unchanged == SOURCE_RESOURCES
    rows = await quarantined(stack, result.run_id)
    assert len(rows) == 3 and all(r["reason"] and r["raw"] for r in rows)
    assert "course-v1:garbage+1" in {r["item_key"] for r in rows}
    assert await stack.published() == before


@pytest.mark.parametrize(
    "body",
    [
        json.dumps(PROGRAMS).encode()[: len(json.dumps(PROGRAMS)) // 2],
        b"<html><body>502 Bad Gateway</body></html>",
        b"\x00\xff\xfe garbage \x89PNG",
    ],
    ids=["truncated-json", "html", "binary"],
)
async def test_unreadable_page_refuses_prune_and_loses_nothing(source_stack: Stack, body: bytes):
    stack = source_stack
    before = await stack.published()
    stack.fixtures.route(PROGRAMS_PATH, Response(200, body, {"Content-Type": "application/json"}))
    try:
        result = await stack.ingest()
    finally:
        stack.fixtures.route(PROGRAMS_PATH, Response.json(PROGRAMS))
    # The courses before the bad page loaded; the fetch is marked incomplete, so the guard
    # refuses to unpublish the programs it could not read.
    assert result.outcome == "prune_refused", result
    assert result.prune_refused_reason == "fetch did not complete"
    assert result.unchanged == len(COURSES["results"]) and result.unpublished == 0
    assert await stack.published() == before
    again = await stack.ingest()
    assert again.outcome == "ok" and again.unchanged == SOURCE_RESOURCES


def _half_courses() -> bytes:
    half = copy.deepcopy(COURSES)
    half["results"] = half["results"][:1]
    return json.dumps(half).encode()


EMPTY = json.dumps({"count": 0, "next": None, "previous": None, "results": []}).encode()


@pytest.mark.parametrize(
    ("courses", "programs", "reason"),
    [
        (EMPTY, EMPTY, "source returned nothing"),
        (_half_courses(), json.dumps(PROGRAMS).encode(), "would unpublish 2 of"),
    ],
    ids=["empty-feed", "half-feed"],
)
async def test_prune_guard_refuses_and_says_so(
    source_stack: Stack, courses: bytes, programs: bytes, reason: str
):
    stack = source_stack
    before = await stack.published()
    assert len(before) >= 3  # the three courses at least
    stack.fixtures.route(COURSES_PATH, Response(200, courses))
    stack.fixtures.route(PROGRAMS_PATH, Response(200, programs))
    try:
        handle = await stack.start_ingest()
        result = await stack.result(handle)
    finally:
        stack.fixtures.route(COURSES_PATH, Response.json(COURSES))
        stack.fixtures.route(PROGRAMS_PATH, Response.json(PROGRAMS))
    assert result.outcome == "prune_refused", result
    assert reason in (result.prune_refused_reason or "")
    assert result.unpublished == 0
    assert await stack.published() == before

    async def listed() -> list:
        query = f'Outcome = "prune_refused" AND WorkflowId = "{handle.id}"'
        return [w async for w in stack.client.list_workflows(query)]

    (wf,) = await eventually(listed, "the refusal to show up in visibility", within=15)
    assert wf.id == handle.id

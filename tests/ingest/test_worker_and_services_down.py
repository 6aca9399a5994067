"""Faults in the machinery: a worker SIGKILLed mid-fetch, the Temporal server stopped and
restarted on its database file, PostgreSQL gone while activities run. Each time the ingestion
completes, with every resource of the source exactly once in the catalog and in the index."""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from pathlib import Path

import asyncpg
import pytest
import tantivy

from devstack.harness.postgres import DebianPostgres
from learnflow.stores.tantivy_index import TantivyKeywordIndex
from tests.helpers.polling import eventually
from tests.helpers.stack import (
    COURSES_PATH,
    PROGRAMS_PATH,
    SOURCE_RESOURCES,
    Gate,
    Stack,
    paged_courses,
    start_or_fail,
)

pytestmark = [pytest.mark.reliability, pytest.mark.temporal, pytest.mark.postgres]

# The fetch activity's heartbeat timeout (ACTIVITY_HEARTBEAT_TIMEOUT_SECONDS, 120 s by default):
# how long Temporal takes to notice that the worker running it is dead. The retry cannot come
# sooner; the test's workers set it short, and the test allows a margin.
FETCH_HEARTBEAT_TIMEOUT = 15.0


def attempts(history, activity: str) -> list[int]:
    """The attempt number each completed/failed execution of `activity` started with."""
    names = {
        e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    }
    return [
        e.activity_task_started_event_attributes.attempt
        for e in history.events
        if e.HasField("activity_task_started_event_attributes")
        and names[e.activity_task_started_event_attributes.scheduled_event_id] == activity
    ]


def index_ids(data_dir: Path) -> Counter[int]:
    """Every document id in the worker's tantivy index, read through a fresh reader."""
    index = TantivyKeywordIndex(data_dir / "keyword")
    searcher = index.index.searcher()
    hits = searcher.search(tantivy.Query.all_query(), limit=10_000).hits
    return Counter(json.loads(searcher.doc(addr)["doc"][0])["id"] for _score, addr in hits)


async def assert_loaded_once(stack: Stack) -> None:
    """The source's resources, each once, in the catalog and (the published ones) in the index."""
    rows = await stack.query(
        "SELECT id, readable_id, resource_type, published FROM learning_resource"
        " WHERE etl_source = 'mitxonline'"
    )
    assert len(rows) == SOURCE_RESOURCES
    keys = Counter((r["readable_id"], r["resource_type"]) for r in rows)
    assert max(keys.values()) == 1, keys
    dup_runs = await stack.query(
        "SELECT resource_id, run_id FROM learning_resource_run"
        " GROUP BY resource_id, run_id HAVING count(*) > 1"
    )
    assert dup_runs == []
    ids = index_ids(stack.data_dir)
    assert ids and max(ids.values()) == 1, f"duplicate index documents: {ids}"
    assert set(ids) == {r["id"] for r in rows if r["published"]}


async def test_worker_sigkilled_mid_fetch_then_replaced(stack: Stack):
    """The first worker dies (SIGKILL) blocked inside page 2 of the courses fetch; a new worker
    process picks the activity up once its heartbeat times out and the run completes."""
    pages = paged_courses(stack.fixtures.base_url)
    gate = Gate(pages)
    stack.fixtures.route(
        COURSES_PATH, lambda req: gate(req) if req.q("page") == "2" else pages(req)
    )
    heartbeat = {"ACTIVITY_HEARTBEAT_TIMEOUT_SECONDS": str(FETCH_HEARTBEAT_TIMEOUT)}
    doomed = stack.start_worker(**heartbeat)
    handle = await stack.start_ingest()

    act = await eventually(lambda: stack.pending(handle, "fetch_source_pages"), "fetch started")
    await eventually(gate.waiting.is_set, "the worker blocked inside page 2")
    assert act.attempt == 1
    doomed.kill()
    assert doomed.proc.returncode == -9
    gate.open()  # the dead worker's request is answered into the void
    stack.start_worker(**heartbeat)

    result = await stack.result(handle, within=FETCH_HEARTBEAT_TIMEOUT + 90)
    assert result.outcome == "ok", result
    assert result.inserted == SOURCE_RESOURCES and result.quarantined == 0
    assert gate.hits == 2  # page 2 was asked for again by the second attempt
    # One fetch, completed on its 2nd attempt: the retry after the heartbeat timeout.
    assert attempts(await handle.fetch_history(), "fetch_source_pages") == [2]
    await assert_loaded_once(stack)
    runs = await stack.query("SELECT outcome FROM etl_run WHERE run_id = $1", result.run_id)
    assert [r["outcome"] for r in runs] == ["ok"]


async def test_temporal_restarted_on_its_database_mid_run(stack: Stack):
    """The Temporal dev server goes down twice while the fetch is in flight, once by SIGTERM and
    once by SIGKILL, and comes back on the same SQLite file and port each time: the worker
    reconnects by itself and the run completes."""
    courses = Gate(paged_courses(stack.fixtures.base_url))
    programs = Gate(stack.fixtures.routes[("GET", PROGRAMS_PATH)])
    stack.fixtures.route(COURSES_PATH, courses)
    stack.fixtures.route(PROGRAMS_PATH, programs)
    # The course pages stream to their loads while the fetch runs (fetch-streams-v1), so a load
    # may be in flight when the server goes down: one it had handed out and lost is retried after
    # its heartbeat timeout (short here, as for the fetch in the worker-killed test).
    stack.start_worker(ACTIVITY_HEARTBEAT_TIMEOUT_SECONDS=str(FETCH_HEARTBEAT_TIMEOUT))
    handle = await stack.start_ingest()

    for gate, kill in ((courses, False), (programs, True)):
        await eventually(gate.waiting.is_set, "the fetch blocked at the source")
        stack.temporal.stop(kill=kill)
        stack.temporal.start()  # same port, same --db-filename
        gate.open()

    try:
        result = await stack.result(handle, within=FETCH_HEARTBEAT_TIMEOUT + 90)
    except AssertionError as exc:  # say what the run still waits for
        desc = await handle.describe()
        pending = [
            (a.activity_type.name, a.attempt, a.state, a.last_failure.message)
            for a in desc.raw_description.pending_activities
        ]
        raise AssertionError(f"{exc}; pending activities: {pending}") from None
    assert result.outcome == "ok", result
    assert result.inserted == SOURCE_RESOURCES
    await assert_loaded_once(stack)


async def test_postgres_down_while_activities_run(stack_factory):
    """PostgreSQL stops while the fetch is blocked; the loads that follow fail and are retried
    with backoff until it is back; the run completes with nothing lost or doubled."""
    pg = DebianPostgres()
    start_or_fail("PostgreSQL", pg.start)
    try:
        stack: Stack = await stack_factory(pg=pg)
        gate = Gate(paged_courses(stack.fixtures.base_url))
        stack.fixtures.route(COURSES_PATH, gate)
        stack.start_worker()
        handle = await stack.start_ingest()
        await eventually(gate.waiting.is_set, "the fetch blocked at the source")

        async def unreachable() -> bool:
            try:
                await (await asyncpg.connect(stack.dsn, timeout=1)).close()
            except (OSError, asyncpg.PostgresError):
                return True
            return False

        async def a_load_failed() -> bool:
            desc = await handle.describe()
            return any(
                a.activity_type.name == "load_page" and a.attempt > 1
                for a in desc.raw_description.pending_activities
            )

        # restart(): stop (fast), stay down until a page load has met the outage (however long
        # the transform before its upsert takes: the pool's first start), start again.
        felt = threading.Event()
        outage = asyncio.create_task(asyncio.to_thread(pg.restart, 0.0, felt))
        await eventually(unreachable, "PostgreSQL to go down", within=15)
        gate.open()  # fetch completes (blobs only); the upserts now meet a dead database
        try:
            await eventually(a_load_failed, "a page load to fail and be retried", within=120)
        finally:
            felt.set()
        await outage
        result = await stack.result(handle, within=120)
        assert result.outcome == "ok", result
        assert result.inserted == SOURCE_RESOURCES

        # Each page load (transform → upsert → index, page-load-v1) that met the outage was
        # retried (attempt > 1) rather than lost.
        loads = attempts(await handle.fetch_history(), "load_page")
        assert len(loads) == 4  # 3 course pages + 1 programs page, each loaded once
        assert max(loads) > 1, f"no page load was retried: the outage was not felt {loads}"
        await assert_loaded_once(stack)
    finally:
        pg.stop()

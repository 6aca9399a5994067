"""End to end on real services: a schedule triggers the ingestion workflow → rows in Postgres →
the index and the vector store → the gRPC service finds them."""

from __future__ import annotations

import json

import grpc
import pytest
from temporalio.client import WorkflowExecutionStatus

from devstack.harness.fixture_server import Response
from learnflow.contracts import EmbedResult, IngestResult, IngestSourceInput
from learnflow.schedules import reconcile
from search_service.pb import search_pb2, search_pb2_grpc
from sources import all_schedules
from tests.conftest import TEST_JSON, unique_id
from tests.helpers.polling import eventually

pytestmark = [pytest.mark.temporal, pytest.mark.postgres, pytest.mark.e2e, pytest.mark.grpc]


@pytest.fixture(scope="module", autouse=True)
async def mitxonline_is_what_its_feed_lists(app):
    """Other suites share the session's catalog and add MITx Online courses of their own (the
    archive tests need runs to attach files to). The prune-guard assertions here need MITx
    Online to publish exactly what its recorded feed lists, so retire the others first."""
    async with app.stores.pool.acquire() as conn:
        await conn.execute(
            "UPDATE learning_resource SET published = false, content_hash = 'pruned'"
            " WHERE etl_source = 'mitxonline' AND published"
        )


async def _wait_for_run(client, schedule_id: str, wait_seconds: float = 60.0) -> IngestResult:
    """Poll the schedule's recent actions until its workflow finishes (a bounded wait on state)."""
    handle = client.get_schedule_handle(schedule_id)

    async def started() -> list:
        return (await handle.describe()).info.recent_actions

    actions = await eventually(started, f"schedule {schedule_id} to start a run", wait_seconds)
    action = actions[-1].action
    wf = client.get_workflow_handle(
        action.workflow_id, run_id=action.first_execution_run_id, result_type=IngestResult
    )
    return await _with_embedding(client, await wf.result())


async def _with_embedding(client, result: IngestResult) -> IngestResult:
    """Wait for the embed child the run started and left running (embed-async-v1): the run
    ends once the catalog is keyword-findable, vector search follows when the child is done."""
    if result.embed_workflow_id:
        embedded = await client.get_workflow_handle(
            result.embed_workflow_id, result_type=EmbedResult
        ).result()
        result.embedded = embedded.embedded
    return result


async def _search(address: str, **kwargs) -> search_pb2.SearchResourcesResponse:
    async with grpc.aio.insecure_channel(address) as channel:
        return await search_pb2_grpc.SearchServiceStub(channel).SearchResources(
            search_pb2.SearchResourcesRequest(**kwargs), timeout=10
        )


async def test_schedule_to_search(app):
    entry = next(e for e in all_schedules() if e.schedule_id == "ingest/mitxonline")
    prefix = unique_id("e2e") + "/"
    report = await reconcile(app.client, [entry], id_prefix=prefix)
    assert report.created == [f"{prefix}ingest/mitxonline"]
    await app.client.get_schedule_handle(f"{prefix}ingest/mitxonline").trigger()
    result = await _wait_for_run(app.client, f"{prefix}ingest/mitxonline")

    assert result.outcome == "ok", result
    assert result.inserted + result.updated + result.unchanged == 5  # 3 courses + 2 programs
    async with app.stores.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT readable_id, resource_type, published FROM learning_resource WHERE etl_source='mitxonline'"
        )
        runs = await conn.fetchval(
            "SELECT count(*) FROM learning_resource_run r JOIN learning_resource lr ON lr.id=r.resource_id"
            " WHERE lr.readable_id='course-v1:MITxT+18.03.1x'"
        )
        rels = await conn.fetchval("SELECT count(*) FROM learning_resource_relationship")
    assert {(r["readable_id"], r["resource_type"]) for r in rows} >= {
        ("course-v1:MITxT+18.03.1x", "course"),
        ("program-v1:MITxT+18.03x", "program"),
    }
    assert runs == 2
    assert rels >= 3

    keyword = await _search(
        app.grpc_address,
        query="differential equations",
        mode=search_pb2.SEARCH_MODE_KEYWORD,
        facets=["platform", "resource_type"],
    )
    titles = [r.resource.title for r in keyword.results]
    assert "Introduction to Differential Equations" in titles
    assert all(r.resource.platform == "mitxonline" for r in keyword.results)
    facets = {f.name: {b.value: b.count for b in f.buckets} for f in keyword.facets}
    assert facets["platform"]["mitxonline"] == keyword.total

    vector = await _search(
        app.grpc_address, query="differential equations", mode=search_pb2.SEARCH_MODE_VECTOR
    )
    assert vector.results[0].resource.title in {
        "Introduction to Differential Equations",
        "18.03x Differential Equations",
    }

    # The workflow is legible in the UI: Source search attribute and child workflows.
    wf_id = (
        (await app.client.get_schedule_handle(f"{prefix}ingest/mitxonline").describe())
        .info.recent_actions[-1]
        .action.workflow_id
    )
    desc = await app.client.get_workflow_handle(wf_id).describe()
    from learnflow import search_attributes as sa

    assert desc.typed_search_attributes.get(sa.SOURCE) == "mitxonline"
    assert desc.typed_search_attributes.get(sa.OUTCOME) == "ok"
    children = [w async for w in app.client.list_workflows(f'ParentWorkflowId = "{wf_id}"')]
    # the index child runs only when the session's indexes lag after the pages indexed their
    # own rows (rerun-idle-v1): an earlier test of the session may have left them in line
    types = {c.workflow_type for c in children}
    assert "EmbedResourcesWorkflow" in types, types
    assert types <= {"IndexResourcesWorkflow", "EmbedResourcesWorkflow"}, types
    assert all(c.status == WorkflowExecutionStatus.COMPLETED for c in children)


async def _ingest(app, source: str = "mitxonline", **kw) -> IngestResult:
    result = await app.client.execute_workflow(
        "IngestSourceWorkflow",
        IngestSourceInput(source=source, **kw),
        id=unique_id(f"test/ingest/{source}"),
        task_queue="default",
        result_type=IngestResult,
    )
    return await _with_embedding(app.client, result)


async def test_second_run_rewrites_nothing(app):
    await _ingest(app)
    async with app.stores.pool.acquire() as conn:
        before = await conn.fetch(
            "SELECT id, xmin::text AS x, updated_on FROM learning_resource ORDER BY id"
        )
        runs_before = await conn.fetch(
            "SELECT id, xmin::text AS x FROM learning_resource_run ORDER BY id"
        )
    second = await _ingest(app)
    async with app.stores.pool.acquire() as conn:
        after = await conn.fetch(
            "SELECT id, xmin::text AS x, updated_on FROM learning_resource ORDER BY id"
        )
        runs_after = await conn.fetch(
            "SELECT id, xmin::text AS x FROM learning_resource_run ORDER BY id"
        )
    assert second.inserted == 0 and second.updated == 0
    assert second.unchanged == 5
    assert [tuple(r) for r in after] == [tuple(r) for r in before]  # same tuples: no row rewritten
    assert [tuple(r) for r in runs_after] == [tuple(r) for r in runs_before]
    assert second.indexed == 0 and second.embedded == 0


async def _published(app) -> set[str]:
    async with app.stores.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT readable_id FROM learning_resource WHERE etl_source='mitxonline' AND published"
        )
    return {r["readable_id"] for r in rows}


async def test_empty_feed_unpublishes_nothing(app, fixture_server):
    await _ingest(app)
    before = await _published(app)
    assert before
    empty = json.dumps({"count": 0, "next": None, "previous": None, "results": []}).encode()
    fixture_server.inject("/api/v2/courses/", Response(200, empty))
    fixture_server.inject("/api/v2/programs/", Response(200, empty))
    result = await _ingest(app)
    assert result.outcome == "prune_refused"
    assert "nothing" in (result.prune_refused_reason or "")
    assert result.unpublished == 0
    assert await _published(app) == before
    wf = [w async for w in app.client.list_workflows('Outcome = "prune_refused"')]
    assert wf, "the refusal is visible as a search attribute"


async def test_half_feed_unpublishes_nothing_unless_forced(app, fixture_server):
    await _ingest(app)
    before = await _published(app)
    courses = json.loads((TEST_JSON / "mitxonline_courses.json").read_bytes())
    courses["results"] = courses["results"][:1]
    body = json.dumps(courses).encode()
    fixture_server.inject("/api/v2/courses/", Response(200, body))
    result = await _ingest(app)
    assert result.outcome == "prune_refused" and result.unpublished == 0
    assert await _published(app) == before

    fixture_server.inject("/api/v2/courses/", Response(200, body))
    forced = await _ingest(app, force_prune=True)
    vanished = before & {"course-v1:MITxT+18.03.2x", "course-v1:MITxT+18.03.3x"}
    assert forced.unpublished == len(vanished) > 0 and forced.outcome == "ok"
    assert await _published(app) == before - vanished
    gone = await _search(app.grpc_address, query="Linear Algebra NxN")
    assert "course-v1:MITxT+18.03.3x" not in [r.resource.readable_id for r in gone.results]
    # The full feed comes back: the resources are published and searchable again.
    back = await _ingest(app)
    assert back.updated == len(vanished) and back.outcome == "ok"
    assert await _published(app) == before


async def test_transient_source_errors_are_retried(app, fixture_server):
    hits = fixture_server.hits("/api/v2/courses/")
    fixture_server.inject(
        "/api/v2/courses/",
        Response(500, b"boom"),
        Response(429, b"slow down", {"Retry-After": "0"}),
    )
    result = await _ingest(app)
    assert result.outcome == "ok"
    assert fixture_server.hits("/api/v2/courses/") - hits == 3


def _events(history, kind: str) -> list:
    return [e for e in history.events if e.HasField(kind)]


def _scheduled(history) -> list[str]:
    """The activity types the run scheduled, in order."""
    return [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in _events(history, "activity_task_scheduled_event_attributes")
    ]


async def test_a_first_run_streams_its_new_pages_and_a_rerun_streams_none(app):
    """fetch-streams-v1 on real services: each courses page no earlier run recorded is handed
    to the workflow as the fetch stores it (a `page_fetched` signal) and loaded once; the
    programs page, which reads the courses pages, loads after the fetch. The re-run finds
    every page recorded: it streams none and loads none."""
    async with app.stores.pool.acquire() as conn:
        await conn.execute("DELETE FROM etl_page_state WHERE source = 'mitxonline'")
    histories = []
    for _ in range(2):
        wf_id = unique_id("test/ingest/mitxonline")
        result = await app.client.execute_workflow(
            "IngestSourceWorkflow",
            IngestSourceInput(source="mitxonline"),
            id=wf_id,
            task_queue="default",
            result_type=IngestResult,
        )
        await _with_embedding(app.client, result)
        histories.append(await app.client.get_workflow_handle(wf_id).fetch_history())
    first, rerun = histories
    signals = _events(first, "workflow_execution_signaled_event_attributes")
    names = {e.workflow_execution_signaled_event_attributes.signal_name for e in signals}
    scheduled = _scheduled(first)
    kinds = [
        json.loads(e.workflow_execution_signaled_event_attributes.input.payloads[0].data)["kind"]
        for e in signals
    ]
    assert names == {"page_fetched"} and set(kinds) == {"courses"}
    assert scheduled.count("load_page") == len(signals) + 1  # + the programs page, once
    assert not _events(rerun, "workflow_execution_signaled_event_attributes")
    rerun_scheduled = _scheduled(rerun)
    # the fetch marked every page seen (the prune follows in it); finish_run only when the
    # session's indexes lag (other suites' content files): then the index child ran first
    assert rerun_scheduled[0] == "fetch_source_pages"
    assert set(rerun_scheduled[1:]) <= {"finish_run"}

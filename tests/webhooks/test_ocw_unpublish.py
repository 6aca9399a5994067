"""The OCW webhook's unpublish, end to end: an authenticated delivery over real HTTP starts
`UnpublishOcwCourseWorkflow` on a real Temporal server, learnflow's running workers unpublish the
course and its content files, and the course leaves gRPC keyword and vector search.

Uses the session `app` (tests/conftest.py: Temporal, Postgres, workers, gRPC) and a webhook
server pointed at that same Temporal server; the course is the real OCW fixture site's
`data.json`, given a fresh uid and course number so each run owns its rows.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import grpc
import httpx
import pytest

from learnflow.contracts import (
    DEFAULT_QUEUE,
    EMBEDDINGS_QUEUE,
    EmbedInput,
    EmbedResult,
    IndexInput,
    IndexResult,
    OcwUnpublishResult,
)
from learnflow.db.content_files import ContentFileStore
from search_service.pb import search_pb2 as pb
from search_service.pb import search_pb2_grpc
from sources.archives.ocw import transform_course, transform_page
from tests.helpers.fixtures import TEST_JSON
from tests.helpers.polling import eventually
from webhook_service.starter import LazyTemporalStarter

from .conftest import OCW_KEY, Running, base_config, dumps, start_server

pytestmark = [
    pytest.mark.webhooks,
    pytest.mark.temporal,
    pytest.mark.postgres,
    pytest.mark.grpc,
]

OCW = "/api/v1/ocw_next_webhook/"
OCW_SLUG = "16-01-unified-engineering-i-ii-iii-iv-fall-2005-spring-2006"
SITE = (TEST_JSON / "courses") / OCW_SLUG


@pytest.fixture(scope="module")
def app_webhooks(app, temporal_server) -> Iterator[Running]:
    """The webhook service starting workflows on the Temporal server `app`'s workers poll."""
    running = start_server(base_config(), LazyTemporalStarter(temporal_server.address))
    yield running
    running.server.stop()


@pytest.fixture
async def app_http(app_webhooks: Running) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=app_webhooks.url, timeout=30) as client:
        yield client


async def _seed_ocw_course(
    app, tag: str, legacy_uid: str | None = None
) -> tuple[str, str, str, int]:
    """The fixture site as a published OCW course with its syllabus page, under a fresh uid.
    Without `legacy_uid` the run id derives from the site uid, as for every new OCW site.

    Returns (site_uid, readable_id, search word, resource id)."""
    from activities.archives.ocw import ocw_resource

    site_uid = str(uuid.uuid4())
    word = f"zq{tag}"  # one token no other row has: what the searches look for
    data = json.loads((SITE / "data.json").read_text())
    data.pop("legacy_uid")
    if legacy_uid:
        data["legacy_uid"] = legacy_uid
    data.update(
        site_uid=site_uid,
        primary_course_number=f"16.{tag}",
        course_title=f"Unified Engineering {word}",
    )
    course = transform_course(data, url_path=f"courses/{OCW_SLUG}-{tag}/")
    assert course is not None
    resource = ocw_resource(course)
    assert resource.runs[0].run_id == (legacy_uid or site_uid).replace("-", "")
    etl_tag = f"test-ocw-unpublish-{tag}"
    await app.stores.catalog.upsert_resources(etl_tag, [resource])
    store = ContentFileStore(app.stores.pool)
    await store.forget_etl_seen(etl_tag)
    run = await store.run_of("ocw", resource.readable_id, resource.runs[0].run_id)
    assert run is not None and run.resource_published
    page_path = f"courses/{OCW_SLUG}-{tag}/pages/syllabus/data.json"
    page = transform_page(
        page_path, json.loads((SITE / "pages/syllabus/data.json").read_text()), ""
    )
    page = page.model_copy(update={"content": f"{page.content} {word}", "run_id": run.run_id})
    counts = await store.upsert_files(run, [page])
    assert counts.inserted == 1
    return site_uid, resource.readable_id, word, run.resource_id


async def _follow(app, tag: str) -> None:
    """Index and embed OCW now (what an ingest run does after loading)."""
    for workflow, arg, result_type, queue in (
        ("IndexResourcesWorkflow", IndexInput(source="ocw"), IndexResult, DEFAULT_QUEUE),
        ("EmbedResourcesWorkflow", EmbedInput(source="ocw"), EmbedResult, EMBEDDINGS_QUEUE),
    ):
        handle = await app.client.start_workflow(
            workflow,
            arg,
            id=f"test-ocw-unpublish-{workflow}-{tag}",
            task_queue=queue,
            result_type=result_type,
            execution_timeout=timedelta(minutes=3),
        )
        await asyncio.wait_for(handle.result(), 180)


async def _found(app, word: str, resource_id: int) -> dict[str, bool]:
    """Whether the course is found by keyword and by vector search, and its page by keyword."""
    async with grpc.aio.insecure_channel(app.grpc_address) as channel:
        stub = search_pb2_grpc.SearchServiceStub(channel)
        keyword = await stub.SearchResources(
            pb.SearchResourcesRequest(query=word, filter=pb.ResourceFilter(platform=["ocw"])),
            timeout=30,
        )
        vector = await stub.SearchResources(
            pb.SearchResourcesRequest(
                query=f"Unified Engineering {word}",
                mode=pb.SEARCH_MODE_VECTOR,
                filter=pb.ResourceFilter(id=[resource_id]),
            ),
            timeout=30,
        )
        files = await stub.SearchContentFiles(
            pb.SearchContentFilesRequest(
                query=word, filter=pb.ContentFileFilter(resource_id=[resource_id])
            ),
            timeout=30,
        )
    return {
        "keyword": resource_id in [r.resource.id for r in keyword.results],
        "vector": resource_id in [r.resource.id for r in vector.results],
        "content_file": resource_id in [r.content_file.resource_id for r in files.results],
    }


async def _deliver(http: httpx.AsyncClient, site_uid: str) -> str:
    body = dumps(
        {"webhook_key": OCW_KEY, "version": "live", "site_uid": site_uid, "unpublished": True}
    )
    r = await http.post(OCW, content=body)
    assert r.status_code == 202, r.text
    return r.json()["workflow_id"]


async def _result(app, workflow_id: str, run_after: str | None = None) -> OcwUnpublishResult:
    """The result of the newest run of `workflow_id` (polls: a redelivery starts a new run)."""

    async def new_run():
        handle = app.client.get_workflow_handle(workflow_id, result_type=OcwUnpublishResult)
        return handle if (await handle.describe()).run_id != run_after else None

    handle = await eventually(new_run, "the redelivery to start a new run", within=60)
    return await asyncio.wait_for(handle.result(), 180)


async def test_ocw_unpublish_webhook_removes_course_from_search(app, app_http):
    tag = uuid.uuid4().hex[:8]
    site_uid, readable_id, word, resource_id = await _seed_ocw_course(app, tag)
    await _follow(app, tag)
    assert await _found(app, word, resource_id) == {
        "keyword": True,
        "vector": True,
        "content_file": True,
    }

    workflow_id = await _deliver(app_http, site_uid)
    assert workflow_id == f"webhook/ocw_unpublish/{site_uid}"
    result = await _result(app, workflow_id)
    assert result.outcome == "unpublished", result
    assert result.readable_id == readable_id and result.run_id == site_uid.replace("-", "")
    assert result.content_files == 1
    assert result.indexed is not None and result.indexed.deindexed >= 1
    assert result.embedded is not None and result.embedded.removed >= 1

    async with app.stores.pool.acquire() as conn:
        published = await conn.fetchval(
            "SELECT published FROM learning_resource WHERE id = $1", resource_id
        )
        files = await conn.fetch(
            "SELECT published, unpublished_on FROM content_file WHERE resource_id = $1",
            resource_id,
        )
        checksum = await conn.fetchval(
            "SELECT checksum FROM learning_resource_run WHERE resource_id = $1", resource_id
        )
    assert published is False
    assert [(f["published"], f["unpublished_on"] is not None) for f in files] == [(False, True)]
    assert checksum is None  # a republish reloads the site instead of skipping it as unchanged
    # The workflow waited for its index and embed children: search is already in line.
    assert await _found(app, word, resource_id) == {
        "keyword": False,
        "vector": False,
        "content_file": False,
    }

    # Redelivered after it completed: a new run, which finds nothing left to do.
    first_run = (await app.client.get_workflow_handle(workflow_id).describe()).run_id
    assert await _deliver(app_http, site_uid) == workflow_id
    again = await _result(app, workflow_id, run_after=first_run)
    assert again.outcome == "already_unpublished" and again.content_files == 0


async def test_ocw_unpublish_of_an_unknown_site_completes_saying_so(app, app_http):
    site_uid = str(uuid.uuid4())
    workflow_id = await _deliver(app_http, site_uid)
    result = await _result(app, workflow_id)
    assert result.outcome == "unknown" and result.readable_id is None
    assert result.indexed is None and result.embedded is None


async def test_ocw_unpublish_finds_a_course_whose_run_id_is_its_legacy_uid(app, app_http):
    """Older OCW sites keep their legacy uid as run id; the webhook names only the site uid."""
    tag = uuid.uuid4().hex[:8]
    legacy = str(uuid.uuid4())
    site_uid, readable_id, word, resource_id = await _seed_ocw_course(app, tag, legacy)
    await _follow(app, tag)
    assert (await _found(app, word, resource_id))["keyword"] is True

    result = await _result(app, await _deliver(app_http, site_uid))
    assert result.outcome == "unpublished", result
    assert result.readable_id == readable_id and result.run_id == legacy.replace("-", "")
    assert (await _found(app, word, resource_id))["keyword"] is False

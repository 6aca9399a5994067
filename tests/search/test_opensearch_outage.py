"""Fault 3b: OpenSearch unavailable during a run (issue #9).

A dedicated OpenSearch node (its own port and data directory, so it can be stopped and started
again on both) is the keyword backend of a worker subprocess and of a gRPC service in this
process. The node is stopped while the ingestion's fetch is held at the source; then:

- keyword RPCs answer UNAVAILABLE (not INTERNAL, no stack trace), and the health service reports
  NOT_SERVING for `<service>/opensearch` (and `/keyword`, and the service as a whole);
- the Index child workflow's `index_pending` activity fails and is retried with backoff.

The node is started again on the same port and data; with nobody touching anything, health goes
back to SERVING, the retried activity succeeds, the run completes, and keyword search finds
every published resource of the source, each once.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from temporalio.client import WorkflowHandle

from devstack.harness.opensearch import OpenSearchNode
from devstack.harness.process import free_port
from search_service.pb import search_pb2 as pb
from search_service.pb import search_pb2_grpc
from tests.helpers.polling import eventually
from tests.helpers.stack import COURSES_PATH, SOURCE_RESOURCES, Gate, Stack, paged_courses
from tests.helpers.stack import start_or_fail as _start_or_fail

pytestmark = [
    pytest.mark.reliability,
    pytest.mark.opensearch,
    pytest.mark.temporal,
    pytest.mark.postgres,
    pytest.mark.grpc,
]

SERVICE = "learn.search.v1.SearchService"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.fixture
def restartable_node():
    """An OpenSearch node of this test only, pinned to one HTTP port and one data directory so
    `start()` after `stop()` brings the same cluster back at the same URL."""
    # World-writable: the harness runs the node as an unprivileged user when we are root.
    data = Path(tempfile.mkdtemp(prefix="learnflow-os-outage-"))
    data.chmod(0o777)
    node = OpenSearchNode(
        http_port=free_port(),
        extra_settings={"path.data": str(data), "cluster.name": f"outage-{uuid.uuid4().hex[:8]}"},
    )
    _start_or_fail("OpenSearch", node.start)
    try:
        yield node
    finally:
        node.stop()
        shutil.rmtree(data, ignore_errors=True)


async def _child(handle: WorkflowHandle, workflow_type: str) -> str | None:
    """The id of the child workflow of `workflow_type` the run has started, else None."""
    history = await handle.fetch_history()
    for e in history.events:
        if e.HasField("start_child_workflow_execution_initiated_event_attributes"):
            attrs = e.start_child_workflow_execution_initiated_event_attributes
            if attrs.workflow_type.name == workflow_type:
                return attrs.workflow_id
    return None


async def _retrying(handle: WorkflowHandle, activity: str):
    """The pending `activity` once it has failed at least once (attempt ≥ 2), else None."""
    desc = await handle.describe()
    for act in desc.raw_description.pending_activities:
        if act.activity_type.name == activity and act.attempt >= 2:
            return act
    return None


async def test_opensearch_down_during_a_run(stack_factory, restartable_node: OpenSearchNode):
    from learnflow.db.catalog import CatalogStore, create_pool
    from learnflow.settings import get_settings
    from learnflow.stores import Stores
    from learnflow.stores.blobs import DirectoryBlobStore
    from learnflow.stores.content_search import ContentStores
    from learnflow.stores.opensearch import (
        OpenSearchContentFileIndex,
        OpenSearchKeywordIndex,
    )
    from learnflow.stores.vector import QdrantVectorStore
    from search_service.server import start_server

    node = restartable_node
    url = node.url
    assert url
    prefix = f"outage_{uuid.uuid4().hex[:8]}"
    stack: Stack = await stack_factory(
        KEYWORD_BACKEND="opensearch", OPENSEARCH_URL=url, OPENSEARCH_INDEX=prefix
    )

    # The gRPC service reading the same indexes (short client timeout: the outage must answer
    # within a test's patience; health polled every 0.2 s).
    keyword = OpenSearchKeywordIndex(url, prefix, timeout=3)
    pool = await create_pool(stack.dsn, min_size=0)
    stores = Stores(
        settings=get_settings(),
        pool=pool,
        catalog=CatalogStore(pool),
        keyword=keyword,
        vector=QdrantVectorStore(collection=f"{prefix}.resources"),
        blobs=DirectoryBlobStore(stack.data_dir / "service-blobs"),
    )
    content = ContentStores(
        keyword=OpenSearchContentFileIndex(resources=keyword),
        vector=QdrantVectorStore(collection=f"{prefix}.content_files"),
    )
    running = await start_server(stores, auth=None, content=content, health_interval=0.2)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
    health = health_pb2_grpc.HealthStub(channel)
    search = search_pb2_grpc.SearchServiceStub(channel)

    async def status(name: str) -> int:
        req = health_pb2.HealthCheckRequest(service=f"{SERVICE}{name}")
        return (await health.Check(req, timeout=5)).status

    async def keyword_code() -> grpc.StatusCode:
        try:
            await search.SearchResources(
                pb.SearchResourcesRequest(query="x", mode=pb.SEARCH_MODE_KEYWORD), timeout=10
            )
        except grpc.aio.AioRpcError as exc:
            assert "Traceback" not in (exc.details() or "")
            return exc.code()
        return grpc.StatusCode.OK

    try:
        assert await status("/opensearch") == SERVING
        assert await keyword_code() == grpc.StatusCode.OK  # empty indexes, but answering

        gate = Gate(paged_courses(stack.fixtures.base_url))
        stack.fixtures.route(COURSES_PATH, gate)
        stack.start_worker()
        handle = await stack.start_ingest()
        await eventually(gate.waiting.is_set, "the fetch blocked at the source")

        # -- the outage ------------------------------------------------------------------------
        await asyncio.to_thread(node.stop)
        assert node.health(timeout=1) is None
        await eventually(
            lambda: _eq(status("/opensearch"), NOT_SERVING), "health NOT_SERVING", within=15
        )
        assert await status("/keyword") == NOT_SERVING
        assert await status("/content_keyword") == NOT_SERVING
        assert await status("") == NOT_SERVING
        assert await status("/postgres") == SERVING
        assert await keyword_code() == grpc.StatusCode.UNAVAILABLE
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await search.SearchContentFiles(pb.SearchContentFilesRequest(query="x"), timeout=10)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE

        gate.open()  # fetch, transform and upsert (Postgres) go on; indexing meets the outage
        index_id = await eventually(
            lambda: _child(handle, "IndexResourcesWorkflow"), "the Index child", within=60
        )
        index = stack.client.get_workflow_handle(index_id)
        failing = await eventually(
            lambda: _retrying(index, "index_pending"), "index_pending retried", within=60
        )
        assert failing.last_failure.message, failing
        assert await keyword_code() == grpc.StatusCode.UNAVAILABLE  # still down meanwhile

        # -- recovery: the same node back on its port and data; nobody pokes anything ---------
        await asyncio.to_thread(node.start)
        assert node.url == url
        await eventually(lambda: _eq(status("/opensearch"), SERVING), "health SERVING", within=15)
        assert await status("") == SERVING

        # RETRY's backoff is capped at 30 s: the next attempt comes within that.
        result = await stack.result(handle, within=90)
        assert result.outcome == "ok", result
        assert result.inserted == SOURCE_RESOURCES
        published = await stack.published()
        assert result.indexed == len(published) >= 1
        assert not (await index.describe()).raw_description.pending_activities

        await keyword.refresh_all()
        assert await keyword.count() == len(published)
        found = await search.SearchResources(
            pb.SearchResourcesRequest(page_size=50, sort="id"), timeout=10
        )
        readable = [r.resource.readable_id for r in found.results]
        assert sorted(readable) == sorted(published)  # each once
        assert found.total == len(published)
    finally:
        await channel.close()
        await running.stop(grace=0.5)
        await keyword.close()
        await pool.close()


async def _eq(value, expected) -> bool:
    return (await value) == expected

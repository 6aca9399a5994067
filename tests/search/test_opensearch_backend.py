"""What only the OpenSearch configuration has: its indexes behind the service (content files as
child documents), StreamAnswer on that service, and OpenSearch unreachable (UNAVAILABLE +
NOT_SERVING). Every other RPC runs against it in test_search_service.py (parametrized)."""

from __future__ import annotations

import dataclasses

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from search_service.pb import search_pb2 as pb
from search_service.pb import search_pb2_grpc
from search_service.server import start_server
from tests.search.conftest import CONTENT_FILES

pytestmark = [pytest.mark.grpc, pytest.mark.opensearch, pytest.mark.temporal, pytest.mark.postgres]

SERVICE = "learn.search.v1.SearchService"


@pytest.fixture
async def os_stub(opensearch_service):
    async with grpc.aio.insecure_channel(opensearch_service.address) as channel:
        yield search_pb2_grpc.SearchServiceStub(channel)


async def test_results_come_from_opensearch(os_stub, opensearch_service, seeded):
    """The service reads the OpenSearch indexes: a document changed only there shows up."""
    keyword, content = opensearch_service.keyword, opensearch_service.content
    assert await keyword.count() >= 4
    # the published files of CONTENT_FILES (other suites may add theirs to the session catalog)
    assert await content.count() >= len([f for f in CONTENT_FILES if f[-1]]) == 2
    rid = seeded.resource_ids["course-v1:MITxT+18.03.1x"]
    (doc,) = await keyword.get([rid])
    marker = "zyxwvutsrq"
    await keyword.upsert([{**doc, "description": f"{doc['description']} {marker}"}])
    try:
        found = await os_stub.SearchResources(
            pb.SearchResourcesRequest(query=marker, mode=pb.SEARCH_MODE_KEYWORD), timeout=20
        )
        assert [r.resource.id for r in found.results] == [rid]
    finally:
        await keyword.upsert([doc])
    files = await os_stub.SearchContentFiles(
        pb.SearchContentFilesRequest(
            query="laplace", filter=pb.ContentFileFilter(resource_id=[rid]), page_size=1
        ),
        timeout=20,
    )
    (hit,) = files.results
    assert hit.content_file.key == "ode/laplace.pdf"
    assert (await content.get([hit.content_file.id]))[0]["key"] == "ode/laplace.pdf"


async def test_stream_answer_on_the_opensearch_configuration(os_stub, openai_server, seeded):
    events = [
        m
        async for m in os_stub.StreamAnswer(
            pb.StreamAnswerRequest(question="differential equations course", context_size=3),
            timeout=20,
        )
    ]
    kinds = [m.WhichOneof("event") for m in events]
    assert kinds[-1] == "citations" and set(kinds[:-1]) == {"text"} and len(kinds) >= 5
    cited = list(events[-1].citations.resource_ids)
    assert len(cited) == 1 and cited[0] in seeded.resource_ids.values()
    assert f"[{cited[0]}]" in "".join(m.text for m in events[:-1])
    with pytest.raises(grpc.aio.AioRpcError) as err:
        [m async for m in os_stub.StreamAnswer(pb.StreamAnswerRequest(question=""), timeout=5)]
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_unreachable_opensearch_is_unavailable_and_not_serving(app, seeded):
    """OpenSearch URLs nobody listens on: keyword RPCs answer UNAVAILABLE (no stack trace), hybrid
    answers from the vector side, the opensearch/keyword/content_keyword health entries are
    NOT_SERVING, the rest SERVING."""
    from learnflow.stores.content_search import ContentStores, content_stores
    from learnflow.stores.opensearch import (
        OpenSearchContentFileIndex,
        OpenSearchKeywordIndex,
    )

    keyword = OpenSearchKeywordIndex("http://127.0.0.1:9", "nowhere", timeout=2)
    content = OpenSearchContentFileIndex(resources=keyword)
    running = await start_server(
        dataclasses.replace(app.stores, keyword=keyword),
        auth=None,
        content=ContentStores(keyword=content, vector=content_stores(app.stores.settings).vector),
        health_interval=0.2,
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as ch:
            health = health_pb2_grpc.HealthStub(ch)

            async def status(name: str) -> int:
                req = health_pb2.HealthCheckRequest(service=f"{SERVICE}{name}")
                return (await health.Check(req, timeout=5)).status

            for name in ("/opensearch", "/keyword", "/content_keyword", ""):
                assert await status(name) == health_pb2.HealthCheckResponse.NOT_SERVING, name
            for name in ("/vector", "/postgres", "/qdrant"):
                assert await status(name) == health_pb2.HealthCheckResponse.SERVING, name
            stub = search_pb2_grpc.SearchServiceStub(ch)
            # hybrid (the default for text) answers from the vector side and says so
            for mode in (pb.SEARCH_MODE_UNSPECIFIED, pb.SEARCH_MODE_HYBRID):
                resp = await stub.SearchResources(
                    pb.SearchResourcesRequest(query="differential equations", mode=mode),
                    timeout=15,
                )
                assert resp.mode == pb.SEARCH_MODE_VECTOR and list(resp.unavailable) == ["keyword"]
                assert "course-v1:MITxT+18.03.1x" in {r.resource.readable_id for r in resp.results}
            calls = [
                stub.SearchResources(
                    pb.SearchResourcesRequest(query="x", mode=pb.SEARCH_MODE_KEYWORD), timeout=15
                ),
                stub.SearchResources(pb.SearchResourcesRequest(), timeout=15),  # a browse
                stub.SearchContentFiles(pb.SearchContentFilesRequest(query="x"), timeout=15),
                stub.Autocomplete(pb.AutocompleteRequest(prefix="diff"), timeout=15),
            ]
            for call in calls:
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await call
                assert err.value.code() == grpc.StatusCode.UNAVAILABLE
                assert "Traceback" not in (err.value.details() or "")
            # the catalog-backed RPCs do not need OpenSearch
            got = await stub.GetResource(
                pb.GetResourceRequest(id=seeded.resource_ids["course-v1:MITxT+18.03.1x"]),
                timeout=10,
            )
            assert got.resource.platform == "mitxonline"
    finally:
        await running.stop(grace=0.5)
        await keyword.close()

"""A few RPCs again with the real OpenSearch node as the keyword backend (the other engines and
the data as in the embedded runs): keyword with filters and facets, paging, hybrid, typeahead."""

from __future__ import annotations

import dataclasses
import uuid

import grpc
import pytest

from learnflow.models import Resource
from learnflow.search_doc import to_search_document
from search_service.pb import search_pb2 as pb
from search_service.pb import search_pb2_grpc
from search_service.server import start_server

pytestmark = [pytest.mark.grpc, pytest.mark.opensearch, pytest.mark.temporal, pytest.mark.postgres]


@pytest.fixture(scope="module")
async def os_stub(app, seeded, opensearch_url):
    from search_service.backends.opensearch import OpenSearchKeywordIndex

    index = OpenSearchKeywordIndex(
        opensearch_url, f"learnflow_grpc_{uuid.uuid4().hex[:8]}", refresh=True
    )
    rows = await app.stores.catalog.get_resources(list(seeded.resource_ids.values()))
    await index.upsert(
        [
            to_search_document(Resource.model_validate(r.data), r.id, r.created_on)
            for r in rows
            if r.published
        ]
    )
    running = await start_server(dataclasses.replace(app.stores, keyword=index), auth=None)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        yield search_pb2_grpc.SearchServiceStub(channel)
    await running.stop(grace=1.0)
    await index.close()


async def test_keyword_filters_facets_and_paging(os_stub):
    resp = await os_stub.SearchResources(
        pb.SearchResourcesRequest(
            query="differential equations",
            filter=pb.ResourceFilter(platform=["mitxonline"]),
            facets=["resource_type", "platform"],
            keyword_options=pb.KeywordOptions(search_mode=pb.KEYWORD_SEARCH_MODE_BEST_FIELDS),
            page_size=1,
        ),
        timeout=20,
    )
    assert resp.total >= 2 and "Differential" in resp.results[0].resource.title
    facets = {f.name: {b.value: b.count for b in f.buckets} for f in resp.facets}
    assert facets["platform"]["mitxonline"] == resp.total
    assert resp.next_page_token
    nxt = await os_stub.SearchResources(
        pb.SearchResourcesRequest(
            query="differential equations",
            filter=pb.ResourceFilter(platform=["mitxonline"]),
            facets=["resource_type", "platform"],
            keyword_options=pb.KeywordOptions(search_mode=pb.KEYWORD_SEARCH_MODE_BEST_FIELDS),
            page_size=1,
            page_token=resp.next_page_token,
        ),
        timeout=20,
    )
    assert nxt.results[0].resource.id != resp.results[0].resource.id


async def test_hybrid_and_autocomplete(os_stub):
    hybrid = await os_stub.SearchResources(
        pb.SearchResourcesRequest(query="differential equations", mode=pb.SEARCH_MODE_HYBRID),
        timeout=20,
    )
    assert "Differential" in hybrid.results[0].resource.title
    ac = await os_stub.Autocomplete(pb.AutocompleteRequest(prefix="differ"), timeout=20)
    assert ac.groups and all(
        any(w.lower().startswith("differ") for w in s.title.split())
        for g in ac.groups
        for s in g.suggestions
    )

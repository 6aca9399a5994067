"""Every search mode behaves the same way around its ranking: filters, facets, sorts and page
tokens (on both keyword backends); no mode means hybrid, and a hybrid search with one side down
answers from the other and says so."""

from __future__ import annotations

import dataclasses

import grpc
import pytest

from learnflow.stores.encoders import LiteLLMEncoder
from learnflow.stores.vector import QdrantClientVectorStore
from search_service.hybrid import CANDIDATES
from search_service.pb import search_pb2 as pb
from search_service.pb import search_pb2_grpc
from search_service.server import start_server
from tests.helpers.search import every_page
from tests.search.test_search_service import DIFF_EQ, address, backend, channel, stub

__all__ = ["address", "backend", "channel", "stub"]  # the per-backend fixtures, shared

pytestmark = [pytest.mark.grpc, pytest.mark.temporal, pytest.mark.postgres]

MODES = [pb.SEARCH_MODE_UNSPECIFIED, pb.SEARCH_MODE_KEYWORD, pb.SEARCH_MODE_VECTOR,
         pb.SEARCH_MODE_HYBRID]  # fmt: skip
QUERY = "differential equations"


def _req(mode: int, **kw) -> pb.SearchResourcesRequest:
    # best_fields: keyword mode then matches any word, so every mode has several results
    opts = pb.KeywordOptions(search_mode=pb.KEYWORD_SEARCH_MODE_BEST_FIELDS)
    return pb.SearchResourcesRequest(query=QUERY, mode=mode, keyword_options=opts, **kw)


async def _pages(stub, req: pb.SearchResourcesRequest) -> list[int]:
    return [r.resource.id for page in await every_page(stub, req) for r in page.results]


async def test_filters_facets_sorts_and_pages_in_every_mode(stub, seeded):
    for mode in MODES:
        what = pb.SearchMode.Name(mode)
        default = await stub.SearchResources(_req(mode), timeout=10)
        assert default.mode == (mode or pb.SEARCH_MODE_HYBRID), what
        assert not default.unavailable and default.results, what
        assert DIFF_EQ in {r.resource.readable_id for r in default.results}, what

        programs = await stub.SearchResources(
            _req(mode, filter=pb.ResourceFilter(resource_type=["program"]),
                 facets=["resource_type"]), timeout=10)  # fmt: skip
        assert programs.results, what
        assert {r.resource.resource_type for r in programs.results} == {"program"}, what
        (facet,) = programs.facets
        counts = {b.value: b.count for b in facet.buckets}
        # disjunctive: the resource_type facet ignores its own filter
        assert facet.name == "resource_type" and counts.get("course", 0) >= 1, (what, counts)

        for sort in ("id", "-id", "readable_id"):
            resp = await stub.SearchResources(_req(mode, sort=sort, page_size=50), timeout=10)
            keys = [
                r.resource.id if sort.endswith("id") and "readable" not in sort
                else r.resource.readable_id
                for r in resp.results
            ]  # fmt: skip
            assert len(keys) >= 2 and keys == sorted(keys, reverse=sort.startswith("-")), (
                what, sort)  # fmt: skip

        # Hybrid and sorted modes page through a window of candidates that grows with a page
        # size above CANDIDATES, so compare page sizes within it: the catalog this module
        # shares with the rest of the suite may hold more than one window.
        whole = await stub.SearchResources(_req(mode, page_size=CANDIDATES), timeout=10)
        in_one = await _pages(stub, _req(mode, page_size=CANDIDATES))
        paged = await _pages(stub, _req(mode, page_size=2))
        assert paged == in_one, what
        assert in_one[:CANDIDATES] == [r.resource.id for r in whole.results], what
        assert len(paged) == whole.total, what


async def test_a_quoted_phrase_in_hybrid_only_returns_phrase_matches(stub, seeded):
    phrase = await stub.SearchResources(
        pb.SearchResourcesRequest(query='"differential equations"'), timeout=10
    )
    keyword = await stub.SearchResources(
        pb.SearchResourcesRequest(query='"differential equations"', mode=pb.SEARCH_MODE_KEYWORD),
        timeout=10,
    )
    assert phrase.mode == pb.SEARCH_MODE_HYBRID
    assert {r.resource.id for r in phrase.results} == {r.resource.id for r in keyword.results}


async def test_hybrid_hits_only_the_vector_side_found_carry_their_resource(stub, seeded):
    # no keyword matches: the whole page comes from the vector side, searched without documents
    request = pb.SearchResourcesRequest(query="qxzvw", page_size=10)
    pages = await every_page(stub, request)  # later pages are filled the same way
    resp = pages[0]
    assert resp.mode == pb.SEARCH_MODE_HYBRID and resp.total >= 2
    # the catalog is shared with the rest of the suite: one page, or the window's first page
    assert len(resp.results) == min(10, resp.total)
    results = [r for page in pages for r in page.results]
    assert len(results) == resp.total
    assert all(r.resource.title and r.resource.readable_id for r in results)


async def _service(app, **replace) -> tuple:
    running = await start_server(dataclasses.replace(app.stores, **replace), auth=None)
    return running, f"127.0.0.1:{running.port}"


@pytest.mark.parametrize("broken", ["vector store", "encoder"])
async def test_hybrid_with_the_vector_side_down_answers_from_keyword(app, seeded, broken):
    """A Qdrant nobody listens on, or an embeddings endpoint nobody listens on: the default
    search answers from the keyword index and names the missing side; vector mode is
    UNAVAILABLE."""
    replace = (
        {"vector": QdrantClientVectorStore(url="http://127.0.0.1:9", timeout=2)}
        if broken == "vector store"
        else {"_encoder": LiteLLMEncoder("openai/none", api_base="http://127.0.0.1:9/v1", dim=8)}
    )
    running, addr = await _service(app, **replace)
    try:
        async with grpc.aio.insecure_channel(addr) as ch:
            stub_ = search_pb2_grpc.SearchServiceStub(ch)
            resp = await stub_.SearchResources(
                pb.SearchResourcesRequest(query=QUERY, facets=["resource_type"]), timeout=20
            )
            assert resp.mode == pb.SEARCH_MODE_KEYWORD and list(resp.unavailable) == ["vector"]
            assert DIFF_EQ in {r.resource.readable_id for r in resp.results}
            assert resp.facets and resp.facets[0].name == "resource_type"
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub_.SearchResources(
                    pb.SearchResourcesRequest(query=QUERY, mode=pb.SEARCH_MODE_VECTOR), timeout=20
                )
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await running.stop(grace=0.5)

"""Issue 18: MIT Learn's content-file filters `topic`, `ocw_topic`, `content_feature_type` and
`show_ocw_files` on both keyword backends (tantivy through the root app's service, OpenSearch
through a second service on a real node), and on the vector store."""

from __future__ import annotations

import grpc
import pytest

from search_service.pb import search_pb2 as pb
from search_service.pb import search_pb2_grpc
from tests.search.conftest import DoorsFiles, invalid

pytestmark = [pytest.mark.doors, pytest.mark.grpc, pytest.mark.temporal, pytest.mark.postgres]


@pytest.fixture(params=["tantivy", pytest.param("opensearch", marks=pytest.mark.opensearch)])
def backend_address(request, app, doors_files) -> str:
    """The root app's service (tantivy), or a second one on a real OpenSearch node."""
    if request.param == "tantivy":
        return app.grpc_address
    return request.getfixturevalue("opensearch_address")


async def _keys(stub, files: DoorsFiles, mode=pb.SEARCH_MODE_KEYWORD, **kw) -> set[str]:
    show = kw.pop("show_ocw_files", None)
    request = pb.SearchContentFilesRequest(
        query=files.word, filter=pb.ContentFileFilter(**kw), page_size=50, mode=mode
    )
    if show is not None:
        request.show_ocw_files = show
    resp = await stub.SearchContentFiles(request, timeout=20)
    names = {v: k for k, v in files.keys.items()}
    return {names[r.content_file.key] for r in resp.results if r.content_file.key in names}


async def test_content_file_filters_on_the_keyword_backends(backend_address, doors_files):
    async with grpc.aio.insecure_channel(backend_address) as ch:
        await _check_keyword_filters(search_pb2_grpc.SearchServiceStub(ch), doors_files)


async def _check_keyword_filters(backend, f: DoorsFiles) -> None:
    everything = {"ocw_notes", "ocw_sets", "mitx_notes", "mitx_plain"}
    assert await _keys(backend, f) == everything
    assert await _keys(backend, f, topic=["Mathematics"]) == {"ocw_notes", "ocw_sets"}
    assert await _keys(backend, f, topic=["physics"]) == {"mitx_notes", "mitx_plain"}
    assert await _keys(backend, f, ocw_topic=[f"Doors Calculus {f.tag}"]) == {
        "ocw_notes",
        "ocw_sets",
    }
    notes = await _keys(backend, f, content_feature_type=["lecture notes"])
    assert notes == {"ocw_notes", "mitx_notes"}  # case-insensitive, as MIT Learn's terms
    assert await _keys(backend, f, content_feature_type=[f"Doors {f.tag}", "Problem Sets"]) == {
        "ocw_notes",
        "ocw_sets",
    }
    assert await _keys(backend, f, show_ocw_files=False) == {"mitx_notes", "mitx_plain"}
    assert await _keys(backend, f, show_ocw_files=True) == everything
    both = await _keys(backend, f, topic=["Physics"], content_feature_type=["Lecture Notes"])
    assert both == {"mitx_notes"}

    facets = await backend.SearchContentFiles(
        pb.SearchContentFilesRequest(
            query=f.word,
            facets=["topic", "content_feature_type"],
            filter=pb.ContentFileFilter(content_feature_type=[f"Doors {f.tag}"]),
        ),
        timeout=20,
    )
    counts = {x.name: {b.value.lower(): b.count for b in x.buckets} for x in facets.facets}
    assert counts["topic"].get("mathematics") == 1
    assert counts["content_feature_type"].get("lecture notes") == 2  # its own filter left out


async def test_content_file_filters_on_the_vector_store(stub, doors_files):
    # The vector store ranks every chunk of the session's catalog by similarity, and the test
    # encoder is lexical: other tests' files can outrank these on a one-word query. So each
    # query is narrowed to the four doors files by id, and the filter under test must then
    # pick the right ones out of them.
    f = doors_files
    vector = pb.SEARCH_MODE_VECTOR
    ids = list(f.ids.values())
    everything = {"ocw_notes", "ocw_sets", "mitx_notes", "mitx_plain"}
    assert await _keys(stub, f, vector, id=ids) == everything
    assert await _keys(stub, f, vector, id=ids, topic=["Physics"]) == {"mitx_notes", "mitx_plain"}
    assert await _keys(stub, f, vector, id=ids, show_ocw_files=False) == {
        "mitx_notes",
        "mitx_plain",
    }
    assert await _keys(stub, f, vector, id=ids, content_feature_type=["Problem Sets"]) == {
        "ocw_sets"
    }


async def test_unknown_topic_is_invalid_argument(stub, doors_files):
    request = pb.SearchContentFilesRequest(
        query="x", filter=pb.ContentFileFilter(topic=["Spaceship Repair"])
    )
    assert "filter.topic" in await invalid(stub.SearchContentFiles(request, timeout=10))

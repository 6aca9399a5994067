"""Every RPC through a real gRPC channel, with the data written by the real workflows (see
conftest.py), once per keyword backend: the embedded engines (`app`'s own service), and the
OpenSearch configuration (a service whose resource and content-file keyword indexes are the real
OpenSearch node; vector store, catalog and LLM double shared)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf import timestamp_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from search_service.pb import search_pb2 as pb
from search_service.pb import search_pb2_grpc

pytestmark = [pytest.mark.grpc, pytest.mark.temporal, pytest.mark.postgres]

DIFF_EQ = "course-v1:MITxT+18.03.1x"


@pytest.fixture(
    scope="module",
    params=["embedded", pytest.param("opensearch", marks=pytest.mark.opensearch)],
)
def backend(request) -> str:
    """Which keyword backend the service under test uses; every test here runs once per value."""
    return request.param


@pytest.fixture(scope="module")
def address(request, backend, app, seeded) -> str:
    # A sync fixture: it may start the (async) OpenSearch service fixture on demand.
    if backend == "embedded":
        return app.grpc_address
    return request.getfixturevalue("opensearch_service").address


@pytest.fixture(scope="module")
async def channel(address) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(address) as ch:
        yield ch


@pytest.fixture(scope="module")
def stub(channel) -> search_pb2_grpc.SearchServiceStub:
    return search_pb2_grpc.SearchServiceStub(channel)


def _violations(exc: grpc.aio.AioRpcError) -> dict[str, str]:
    status = rpc_status.from_call(exc)
    assert status is not None, "no rich status"
    out = {}
    infos = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            br = error_details_pb2.BadRequest()
            detail.Unpack(br)
            out.update({v.field: v.description for v in br.field_violations})
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            infos.append(info)
    assert infos and infos[0].domain == "search.learnflow"
    return out


async def _invalid(call) -> dict[str, str]:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    assert "Traceback" not in (err.value.details() or "")
    return _violations(err.value)


# -- SearchResources ----------------------------------------------------------------------------


async def test_keyword_search_with_filters_facets_and_view(stub, seeded):
    resp = await stub.SearchResources(
        pb.SearchResourcesRequest(
            query="differential equations",
            mode=pb.SEARCH_MODE_KEYWORD,  # facets count the keyword matches (hybrid: its window)
            filter=pb.ResourceFilter(platform=["mitxonline"], resource_type=["course", "program"]),
            facets=["resource_type", "platform", "free"],
            keyword_options=pb.KeywordOptions(search_mode=pb.KEYWORD_SEARCH_MODE_BEST_FIELDS),
        ),
        timeout=10,
    )
    assert resp.total >= 2
    assert {r.resource.platform for r in resp.results} == {"mitxonline"}
    assert resp.results[0].score > 0
    facets = {f.name: {b.value: b.count for b in f.buckets} for f in resp.facets}
    assert set(facets) == {"resource_type", "platform", "free"}
    assert sum(facets["resource_type"].values()) == resp.total
    assert not resp.results[0].resource.HasField("document")  # basic view
    full = await stub.SearchResources(
        pb.SearchResourcesRequest(query="differential equations", view=pb.RESOURCE_VIEW_FULL),
        timeout=10,
    )
    assert full.results[0].resource.document.fields["runs"].list_value is not None
    assert full.results[0].resource.document["readable_id"] == full.results[0].resource.readable_id


async def test_filter_narrows_and_facets_are_disjunctive(stub, seeded):
    programs = await stub.SearchResources(
        pb.SearchResourcesRequest(
            filter=pb.ResourceFilter(resource_type=["program"]), facets=["resource_type"]
        ),
        timeout=10,
    )
    assert programs.total >= 1
    assert {r.resource.resource_type for r in programs.results} == {"program"}
    counts = {b.value: b.count for b in programs.facets[0].buckets}
    assert counts.get("course", 0) >= 1  # the resource_type facet ignores its own filter


async def test_sort_options(stub, seeded):
    asc = await stub.SearchResources(pb.SearchResourcesRequest(sort="id", page_size=50), timeout=10)
    ids = [r.resource.id for r in asc.results]
    assert ids == sorted(ids) and len(ids) == asc.total >= 4
    desc = await stub.SearchResources(
        pb.SearchResourcesRequest(sort="-id", page_size=50), timeout=10
    )
    assert [r.resource.id for r in desc.results] == sorted(ids, reverse=True)
    for option in ("new", "-readable_id", "start_date", "upcoming", "views", "featured",
                   "mitcoursenumber", "last_modified"):  # fmt: skip
        resp = await stub.SearchResources(pb.SearchResourcesRequest(sort=option), timeout=10)
        assert resp.total == asc.total, option


async def test_vector_and_hybrid(stub, seeded):
    vector = await stub.SearchResources(
        pb.SearchResourcesRequest(
            query="differential equations", mode=pb.SEARCH_MODE_VECTOR, facets=["resource_type"]
        ),
        timeout=10,
    )
    assert "Differential Equations" in vector.results[0].resource.title
    assert vector.facets and vector.facets[0].name == "resource_type"
    hybrid = await stub.SearchResources(
        pb.SearchResourcesRequest(
            query="differential equations",
            mode=pb.SEARCH_MODE_HYBRID,
            hybrid_options=pb.HybridOptions(keyword_weight=1.0, vector_weight=0.5),
        ),
        timeout=10,
    )
    assert "Differential Equations" in hybrid.results[0].resource.title
    # normalised score fusion: each side's scores in [0, 1], weights normalised, so at most 1
    assert 0 < hybrid.results[0].score <= 1.0 + 1e-9
    assert hybrid.mode == pb.SEARCH_MODE_HYBRID and not hybrid.unavailable
    filtered = await stub.SearchResources(
        pb.SearchResourcesRequest(
            query="differential equations",
            mode=pb.SEARCH_MODE_VECTOR,
            filter=pb.ResourceFilter(resource_type=["program"]),
        ),
        timeout=10,
    )
    assert {r.resource.resource_type for r in filtered.results} == {"program"}


async def test_paging_with_tokens_and_tamper_rejection(stub, seeded):
    req = pb.SearchResourcesRequest(sort="id", page_size=2)
    first = await stub.SearchResources(req, timeout=10)
    assert first.next_page_token
    req.page_token = first.next_page_token
    second = await stub.SearchResources(req, timeout=10)
    assert [r.resource.id for r in second.results] != [r.resource.id for r in first.results]
    assert min(r.resource.id for r in second.results) > max(r.resource.id for r in first.results)
    # changed parameters with the old token
    changed = pb.SearchResourcesRequest(sort="-id", page_size=2, page_token=first.next_page_token)
    assert "page_token" in await _invalid(stub.SearchResources(changed, timeout=10))
    # a forged token
    token = first.next_page_token
    forged = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    bad = pb.SearchResourcesRequest(sort="id", page_size=2, page_token=forged)
    assert "page_token" in await _invalid(stub.SearchResources(bad, timeout=10))
    # offset paging gives the same second page
    by_offset = await stub.SearchResources(
        pb.SearchResourcesRequest(sort="id", page_size=2, offset=2), timeout=10
    )
    assert [r.resource.id for r in by_offset.results] == [r.resource.id for r in second.results]


async def test_bad_input_is_invalid_argument_with_field_violations(stub, seeded):
    v = await _invalid(
        stub.SearchResources(
            pb.SearchResourcesRequest(
                page_size=-1,
                sort="nonsense",
                facets=["colour"],
                filter=pb.ResourceFilter(platform=["nowhere"], level=["expert"], topic=["Alchemy"]),
                keyword_options=pb.KeywordOptions(slop=99),
            ),
            timeout=10,
        )
    )
    assert {
        "page_size",
        "sort",
        "facets",
        "filter.platform",
        "filter.level",
        "filter.topic",
        "keyword_options.slop",
    } <= set(v)
    assert "nowhere" in v["filter.platform"]
    v = await _invalid(
        stub.SearchResources(pb.SearchResourcesRequest(mode=pb.SEARCH_MODE_VECTOR), timeout=10)
    )
    assert "query" in v
    v = await _invalid(stub.SearchResources(pb.SearchResourcesRequest(offset=9_999), timeout=10))
    assert "offset" in v
    # a known value in another case is fine (MIT Learn compares case-insensitively)
    ok = await stub.SearchResources(
        pb.SearchResourcesRequest(filter=pb.ResourceFilter(platform=["MITXONLINE"])), timeout=10
    )
    assert ok.total >= 4


async def test_deadline_too_short_is_deadline_exceeded(stub, seeded):
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.SearchResources(
            pb.SearchResourcesRequest(query="differential", mode=pb.SEARCH_MODE_HYBRID),
            timeout=0.001,
        )
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


# -- Get / BatchGet / Autocomplete / ListChanged -------------------------------------------------


async def test_get_and_batch_get(stub, seeded):
    rid = seeded.resource_ids[DIFF_EQ]
    got = await stub.GetResource(pb.GetResourceRequest(id=rid), timeout=10)
    assert got.resource.readable_id == DIFF_EQ and got.resource.platform == "mitxonline"
    assert got.resource.HasField("next_start_date") or got.resource.HasField("last_modified")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetResource(pb.GetResourceRequest(id=987654321), timeout=10)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert "id" in await _invalid(stub.GetResource(pb.GetResourceRequest(id=0), timeout=10))
    listed = await stub.SearchResources(pb.SearchResourcesRequest(sort="-id"), timeout=10)
    ids = [r.resource.id for r in listed.results][:3]
    batch = await stub.BatchGetResources(
        pb.BatchGetResourcesRequest(ids=[*ids, 987654321], view=pb.RESOURCE_VIEW_FULL), timeout=10
    )
    assert [r.id for r in batch.resources] == ids
    assert list(batch.missing_ids) == [987654321]
    assert batch.resources[0].HasField("document")
    assert "ids" in await _invalid(
        stub.BatchGetResources(pb.BatchGetResourcesRequest(ids=list(range(1, 200))), timeout=10)
    )


async def test_autocomplete(stub, seeded):
    resp = await stub.Autocomplete(pb.AutocompleteRequest(prefix="differ"), timeout=10)
    groups = {g.resource_type: g for g in resp.groups}
    assert {"course", "program"} <= set(groups)
    for g in resp.groups:
        assert 1 <= len(g.suggestions) <= 3
        for s in g.suggestions:
            assert any(w.lower().startswith("differ") for w in s.title.split())
    one = await stub.Autocomplete(
        pb.AutocompleteRequest(prefix="differential equ", resource_types=["course"], per_type=1),
        timeout=10,
    )
    assert [g.resource_type for g in one.groups] == ["course"]
    assert len(one.groups[0].suggestions) == 1
    assert "prefix" in await _invalid(stub.Autocomplete(pb.AutocompleteRequest(), timeout=10))
    assert "resource_types" in await _invalid(
        stub.Autocomplete(pb.AutocompleteRequest(prefix="a", resource_types=["x"]), timeout=10)
    )


async def test_list_changed_resources_pages(app, stub, seeded):
    since = timestamp_pb2.Timestamp()
    since.FromDatetime(datetime.now(UTC) - timedelta(days=1))
    seen, token = [], ""
    while True:
        resp = await stub.ListChangedResources(
            pb.ListChangedResourcesRequest(since=since, page_size=2, page_token=token), timeout=10
        )
        seen.extend(resp.resources)
        token = resp.next_page_token
        if not token:
            break
    async with app.stores.pool.acquire() as conn:
        expected = await conn.fetchval(
            "SELECT count(*) FROM learning_resource WHERE updated_on >= $1", since.ToDatetime(UTC)
        )
    assert len(seen) == expected >= 5
    stamps = [(c.updated_on.ToDatetime(), c.resource.id) for c in seen]
    assert stamps == sorted(stamps)
    assert len({c.resource.id for c in seen}) == len(seen)
    future = timestamp_pb2.Timestamp()
    future.FromDatetime(datetime.now(UTC) + timedelta(days=1))
    empty = await stub.ListChangedResources(
        pb.ListChangedResourcesRequest(since=future), timeout=10
    )
    assert not empty.resources and not empty.next_page_token
    assert "since" in await _invalid(
        stub.ListChangedResources(pb.ListChangedResourcesRequest(), timeout=10)
    )
    other = pb.ListChangedResourcesRequest(since=future, page_token=resp.next_page_token or "x")
    assert "page_token" in await _invalid(stub.ListChangedResources(other, timeout=10))


# -- SearchContentFiles --------------------------------------------------------------------------


async def test_content_files_keyword_vector_hybrid(stub, seeded):
    course = seeded.resource_ids[DIFF_EQ]
    kw = await stub.SearchContentFiles(
        pb.SearchContentFilesRequest(query="laplace transform", facets=["file_extension"]),
        timeout=10,
    )
    assert kw.results[0].content_file.key == "ode/laplace.pdf"
    assert kw.results[0].content_file.resource_id == course
    assert {b.value for b in kw.facets[0].buckets} >= {".pdf"}
    hidden = await stub.SearchContentFiles(
        pb.SearchContentFilesRequest(query="eigenvalues draft"), timeout=10
    )
    assert "ode/draft.pdf" not in {r.content_file.key for r in hidden.results}
    by_ext = await stub.SearchContentFiles(
        pb.SearchContentFilesRequest(
            filter=pb.ContentFileFilter(
                file_extension=["html"], resource_id=[course], platform=["mitxonline"]
            )
        ),
        timeout=10,
    )
    assert [r.content_file.key for r in by_ext.results] == ["ode/phase.html"]
    vec = await stub.SearchContentFiles(
        pb.SearchContentFilesRequest(
            query="phase portraits trajectories", mode=pb.SEARCH_MODE_VECTOR
        ),
        timeout=10,
    )
    top = vec.results[0].content_file
    assert (
        top.key == "ode/phase.html"
        and top.chunk_number == 0
        and "Phase portraits" in top.chunk_content
    )
    # the 900-word file is two 512-word chunks
    chunks = await stub.SearchContentFiles(
        pb.SearchContentFilesRequest(
            query="filler500 filler600",
            mode=pb.SEARCH_MODE_VECTOR,
            page_size=5,
            # other suites load archives into the same session catalog: stay on this course
            filter=pb.ContentFileFilter(file_extension=[".html"], resource_id=[course]),
        ),
        timeout=10,
    )
    long_file = [r.content_file for r in chunks.results if r.content_file.key == "ode/phase.html"]
    assert sorted(c.chunk_number for c in long_file) == [0, 1]
    hybrid = await stub.SearchContentFiles(
        pb.SearchContentFilesRequest(query="laplace", mode=pb.SEARCH_MODE_HYBRID), timeout=10
    )
    assert hybrid.results[0].content_file.key == "ode/laplace.pdf"
    v = await _invalid(
        stub.SearchContentFiles(
            pb.SearchContentFilesRequest(
                facets=["level"], filter=pb.ContentFileFilter(platform=["nowhere"])
            ),
            timeout=10,
        )
    )
    assert {"facets", "filter.platform"} <= set(v)


# -- health, reflection, concurrency ------------------------------------------------------------


async def test_health_per_backend(channel, backend, seeded):
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    stub = health_pb2_grpc.HealthStub(channel)
    engine = "tantivy" if backend == "embedded" else "opensearch"
    backends = ["keyword", "vector", "postgres", "content_keyword", "content_vector", "qdrant",
                engine]  # fmt: skip
    services = ["", "learn.search.v1.SearchService"]
    services += [f"learn.search.v1.SearchService/{b}" for b in backends]
    for service in services:
        resp = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert resp.status == health_pb2.HealthCheckResponse.SERVING, service
    other = "opensearch" if engine == "tantivy" else "tantivy"
    with pytest.raises(grpc.aio.AioRpcError) as err:  # only the configured engine is reported
        await stub.Check(
            health_pb2.HealthCheckRequest(service=f"learn.search.v1.SearchService/{other}"),
            timeout=5,
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_reflection_lists_and_describes_the_service(channel, seeded):
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    stub = reflection_pb2_grpc.ServerReflectionStub(channel)

    async def ask(**kw):
        call = stub.ServerReflectionInfo()
        await call.write(reflection_pb2.ServerReflectionRequest(**kw))
        await call.done_writing()
        return [r async for r in call][0]  # noqa: RUF015

    listed = await ask(list_services="")
    names = {s.name for s in listed.list_services_response.service}
    assert {"learn.search.v1.SearchService", "grpc.health.v1.Health"} <= names
    described = await ask(file_containing_symbol="learn.search.v1.SearchService")
    assert described.file_descriptor_response.file_descriptor_proto


async def test_concurrent_calls(stub, seeded):
    reqs = [pb.SearchResourcesRequest(query="differential equations", mode=m)
            for m in (pb.SEARCH_MODE_KEYWORD, pb.SEARCH_MODE_VECTOR, pb.SEARCH_MODE_HYBRID)] * 10  # fmt: skip
    # 30 calls at once on 2 shared cores (OpenSearch's node among them): a roomy deadline, the
    # point is that every concurrent call answers
    results = await asyncio.gather(*(stub.SearchResources(r, timeout=30) for r in reqs))
    assert all(r.total >= 1 for r in results)

"""The two embedded vector stores answer the same: qdrant-edge (default) and qdrant-client
local mode, behind one interface (filters, facets, counts, delete by key and by payload)."""

from __future__ import annotations

import numpy as np
import pytest

from learnflow.search_doc import filter_values
from learnflow.stores.vector import (
    EdgeVectorStore,
    QdrantClientVectorStore,
    QdrantVectorStore,
    VectorPoint,
    payload_for,
)


def _doc(i: int, platform: str, rtype: str) -> dict:
    return {"id": i, "title": f"t{i}", "resource_type": rtype, "platform": {"code": platform},
            "offered_by": None, "topics": [], "departments": [], "free": i % 2 == 0}  # fmt: skip


@pytest.fixture(params=["edge", "client"])
async def store(request, tmp_path):
    s = QdrantVectorStore(path=str(tmp_path), collection="t.resources", embedded=request.param)
    assert isinstance(s, EdgeVectorStore if request.param == "edge" else QdrantClientVectorStore)
    await s.ensure_collection(8)
    rng = np.random.default_rng(1)
    points = []
    for i in range(1, 41):
        doc = _doc(i, "ocw" if i <= 10 else "mitxonline", "course" if i % 4 else "program")
        points.append(VectorPoint(f"k{i}", rng.random(8), payload_for(doc, filter_values(doc))))
    await s.upsert(points)
    await s.optimize()
    yield s, points
    await s.close()


async def test_search_filters_facets_and_deletes(store):
    s, points = store
    assert await s.count() == 40
    exact = await s.search(points[4].vector, {}, limit=1)
    assert exact.hits[0].id == 5 and exact.hits[0].score == pytest.approx(1.0, abs=1e-5)
    res = await s.search(points[0].vector, {"platform": ["OCW"]}, limit=5, facets=["platform"])
    assert res.total == 10 and {h.document["platform"]["code"] for h in res.hits} == {"ocw"}
    assert dict(res.facets["platform"]) == {"ocw": 10, "mitxonline": 30}  # disjunctive
    both = await s.search(points[0].vector, {"platform": ["ocw"], "resource_type": ["program"]}, 10)
    assert sorted(h.id for h in both.hits) == [4, 8]
    page2 = await s.search(points[0].vector, {}, limit=5, offset=5)
    page1 = await s.search(points[0].vector, {}, limit=5)
    assert not {h.id for h in page1.hits} & {h.id for h in page2.hits}
    assert page1.total == 40
    await s.delete(["k1", "k2"])
    await s.delete_where("resource_id", [3])
    await s.upsert(points[10:12])  # rewritten points are counted once
    assert await s.count() == 37
    assert (await s.search(points[0].vector, {}, limit=5)).total == 37
    assert await s.healthy()


async def test_search_loads_only_the_documents_asked_for(store):
    s, points = store
    full = await s.search(points[0].vector, {}, limit=12)
    some = await s.search(points[0].vector, {}, limit=12, documents=5)
    assert [(h.id, round(h.score, 6)) for h in some.hits] == [
        (h.id, round(h.score, 6)) for h in full.hits
    ]
    assert [h.document for h in some.hits[:5]] == [h.document for h in full.hits[:5]]
    assert all(h.document["id"] == h.id for h in some.hits[:5])
    if isinstance(s, EdgeVectorStore):  # qdrant-client's store returns every document anyway
        assert all(h.document == {} for h in some.hits[5:])
    # A hit tied with the last one asked for is loaded too: a page breaking ties by id may
    # take it instead. Duplicate vectors tie exactly.
    twin = VectorPoint("twin", points[1].vector, payload_for(_doc(99, "ocw", "course"), {}))
    await s.upsert([twin])
    res = await s.search(points[1].vector, {}, limit=4, documents=1)
    assert {h.id for h in res.hits[:2]} == {2, 99}
    assert all(h.document["id"] == h.id for h in res.hits[:2])
    # Hybrid mode's fused page loads the documents it lacks by id afterwards.
    docs = await s.documents([3, 99, 12345])
    assert set(docs) == {3, 99} and docs[3]["title"] == "t3" and docs[99]["id"] == 99


async def test_edge_store_persists(tmp_path):
    s = EdgeVectorStore(path=str(tmp_path), collection="p")
    doc = _doc(1, "ocw", "course")
    await s.upsert([VectorPoint("a", np.ones(4), payload_for(doc, filter_values(doc)))])
    await s.close()
    reopened = EdgeVectorStore(path=str(tmp_path), collection="p")
    assert await reopened.count() == 1
    await reopened.close()


@pytest.mark.parametrize("embedded", ["edge", "client"])
async def test_collection_records_its_encoder_and_refuses_another(tmp_path, embedded):
    """Both stores record the encoder's name and dimension with the collection, keep them across
    a reopen, and refuse vectors of another encoder or dimension instead of mixing them."""
    from learnflow.stores.encoders import EncoderMismatch

    s = QdrantVectorStore(path=str(tmp_path), collection="t.enc", embedded=embedded)
    await s.ensure_collection(8, "enc-a")
    await s.upsert([VectorPoint("k1", np.ones(8), payload_for(_doc(1, "ocw", "course"), {}))])
    await s.close()
    s = QdrantVectorStore(path=str(tmp_path), collection="t.enc", embedded=embedded)
    try:
        assert s.recorded_encoder() == {"encoder": "enc-a", "dim": 8}
        await s.ensure_collection(8, "enc-a")  # the same encoder: fine
        s._ready = False  # qdrant-client checks once per process: check again here
        with pytest.raises(EncoderMismatch, match="enc-a"):
            await s.ensure_collection(16, "enc-b")
        with pytest.raises(EncoderMismatch, match="configured encoder is enc-b"):
            await s.ensure_collection(8, "enc-b")
    finally:
        await s.close()


async def test_edge_optimize_runs_beside_the_process_and_reads_wait_for_it(tmp_path):
    """The shard's optimize (qdrant-edge holds the GIL through it) runs in a child process:
    another thread of this process keeps running meanwhile, searches issued during it answer
    over every point (they wait while the shard is closed, never see it empty), the graph is
    built, and the store takes writes again after."""
    import threading
    import time

    s = EdgeVectorStore(path=str(tmp_path), collection="t.optimize")
    await s.ensure_collection(256)
    rng = np.random.default_rng(2)
    n = 12_000  # above the shard's indexing threshold: the optimize has a graph to build
    for start in range(0, n, 2000):
        await s.upsert(
            [
                VectorPoint(f"k{i}", rng.standard_normal(256), {"resource_id": i, "doc": "{}"})
                for i in range(start, start + 2000)
            ]
        )
    assert s.shard.info().indexed_vectors_count == 0
    ticks, totals, stop = [], [], threading.Event()

    def ticker() -> None:
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    def searcher() -> None:
        while not stop.is_set():
            found = s.search_sync(rng.standard_normal(256), {}, limit=5)
            totals.append((found.total, len(found.hits)))

    threads = [threading.Thread(target=ticker), threading.Thread(target=searcher)]
    for t in threads:
        t.start()
    try:
        started = time.perf_counter()
        await s.optimize()
        during = [t for t in ticks if t >= started]
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert len(during) >= 20  # in process (the GIL held throughout) it ticked ~3 times in 6 s
    assert totals and set(totals) == {(n, 5)}
    assert s.shard.info().indexed_vectors_count == n
    await s.upsert([VectorPoint("after", rng.standard_normal(256), {"resource_id": n})])
    assert await s.count() == n + 1 and await s.healthy()
    await s.close()


async def test_edge_optimize_with_nothing_written_since_leaves_the_shard_open(tmp_path):
    """An optimize after an optimize, with no write between, neither closes the shard (reads
    would wait) nor starts a child; a write makes the next one run again."""
    s = EdgeVectorStore(path=str(tmp_path), collection="t.idle")
    await s.ensure_collection(8)
    rng = np.random.default_rng(3)
    await s.upsert(
        [VectorPoint(f"k{i}", rng.standard_normal(8), {"resource_id": i}) for i in range(20)]
    )
    await s.optimize()
    optimized = s.shard
    await s.optimize()
    assert s.shard is optimized  # not closed and loaded again
    await s.delete(["k0"])
    await s.optimize()
    assert s.shard is not optimized
    assert await s.count() == 19
    await s.close()

"""The two embedded vector stores answer the same: qdrant-edge (default) and qdrant-client
local mode, behind one interface (filters, facets, counts, delete by key and by payload)."""

from __future__ import annotations

import asyncio

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
from tests.helpers.polling import eventually


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
        answered_before = len(totals)
        await s.optimize()
        during = [t for t in ticks if t >= started]
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert len(during) >= 20  # in process (the GIL held throughout) it ticked ~3 times in 6 s
    assert totals and set(totals) == {(n, 5)}
    # the child optimizes a copy: reads of the open shard go on, held back by the swap only
    # (with the shard closed for the whole child, ~1 answer came during it)
    assert len(totals) - answered_before >= 20
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


async def _store_with(tmp_path, n: int, **kwargs) -> tuple[EdgeVectorStore, np.ndarray]:
    s = EdgeVectorStore(path=str(tmp_path), collection="t.later", **kwargs)
    await s.ensure_collection(256)  # 12k of these: above the indexing threshold
    vectors = np.random.default_rng(4).standard_normal((n, 256))
    for start in range(0, n, 2000):
        await s.upsert(
            [
                VectorPoint(f"k{i}", vectors[i], {"resource_id": i, "doc": "{}"})
                for i in range(start, min(start + 2000, n))
            ]
        )
    return s, vectors


async def test_edge_optimize_soon_returns_at_once_and_indexes_once_the_writes_are_quiet(tmp_path):
    """An embed pass ends with its points written: `optimize_soon` returns before any graph is
    built and a search finds the points meanwhile (over the unindexed segments); once the
    writes are quiet the store builds the graphs in the background, later writes included."""
    n = 12_000
    s, vectors = await _store_with(tmp_path, n, optimize_quiet=3.0)
    await s.optimize_soon()
    assert s.optimizing() and s.shard.info().indexed_vectors_count == 0
    found = await s.search(vectors[7], {}, limit=1)
    assert found.total == n and [h.id for h in found.hits] == [7]
    await s.upsert([VectorPoint("late", vectors[0] * -1, {"resource_id": n})])
    await s.optimize_soon()  # asked again while one waits: still one thread
    await eventually(lambda: not s.optimizing(), "the deferred optimize's end", 60, 0.01)
    assert s.shard.info().indexed_vectors_count == n + 1
    assert await s.count() == n + 1
    optimized = s.shard
    await s.optimize_soon()  # nothing written since: nothing to do
    assert not s.optimizing() and s.shard is optimized
    await s.close()


async def test_edge_close_during_a_deferred_optimize_kills_its_child_and_keeps_the_shard(
    tmp_path,
):
    """`learn up` stopping (the store's close) while the background optimize runs: its child is
    killed at once, its copy dropped, the shard stays whole as written, and the next load
    optimizes it again."""
    n = 12_000
    s, _ = await _store_with(tmp_path, n, optimize_quiet=0)
    await s.optimize_soon()
    deferred = s._deferred
    await eventually(
        lambda: deferred._child is not None and deferred._child._proc is not None,
        "the optimize's child process",
        60,
        0.01,
    )
    proc = deferred._child._proc
    await s.close()
    assert proc.poll() is not None  # killed, not waited for: the graph was not finished
    assert not s.optimizing()
    assert sorted(p.name for p in (tmp_path / "edge").iterdir()) == [
        "t.later",
        "t.later.encoder.json",
    ]  # no copy left
    again = EdgeVectorStore(path=str(tmp_path), collection="t.later")
    assert await again.count() == n and again.shard.info().indexed_vectors_count == 0
    await again.optimize()
    assert again.shard.info().indexed_vectors_count == n
    await again.close()


async def test_edge_load_after_a_crash_mid_optimize_finds_the_shard_whole(tmp_path):
    """A crash with the optimized copy beside the shard (not swapped yet) drops the copy; one
    between the swap's two renames moves the optimized copy in; either way the points are all
    there and no copy is left."""
    import shutil

    from learnflow.stores.edge_optimize import retired, staging

    s, _ = await _store_with(tmp_path, 300)
    await s.close()
    path = tmp_path / "edge" / "t.later"
    shutil.copytree(path, staging(path))  # an unfinished copy
    (staging(path) / "junk").write_text("half written")
    s = EdgeVectorStore(path=str(tmp_path), collection="t.later")
    assert await s.count() == 300 and not staging(path).exists()
    await s.close()
    shutil.copytree(path, staging(path))  # a finished one, caught between the two renames
    path.rename(retired(path))
    s = EdgeVectorStore(path=str(tmp_path), collection="t.later")
    assert await s.count() == 300
    assert sorted(p.name for p in path.parent.iterdir()) == ["t.later", "t.later.encoder.json"]
    await s.close()


async def test_edge_deferred_optimize_waits_for_the_pass_writing(tmp_path):
    """A pass slowed between two pages (a loaded machine) must not have the optimize start
    under it, holding its next writes back: it waits for every `writing` pass to end."""
    import time

    s, vectors = await _store_with(tmp_path, 2000, optimize_quiet=0)
    calls: list[tuple[int, float]] = []
    run = s._deferred._optimize
    s._deferred._optimize = lambda child: (
        calls.append((s._deferred._writers, time.monotonic())),
        run(child),
    )
    with s.writing():
        await s.optimize_soon()  # as the first of two passes ending
        for start in range(2000, 8000, 2000):  # the other pass's pages, a quiet gap after each
            await s.upsert(
                [
                    VectorPoint(f"k{i}", vectors[i % 2000], {"resource_id": i})
                    for i in range(start, start + 2000)
                ]
            )
            await asyncio.to_thread(time.sleep, 0.2)  # a page's encoding: writes quiet
        ended = time.monotonic()
    await s.optimize_soon()
    await eventually(lambda: not s.optimizing(), "the deferred optimize's end", 60, 0.01)
    assert [w for w, _ in calls] == [0] and calls[0][1] >= ended  # once, after the pass
    assert not s._written and await s.count() == 8000
    await s.close()

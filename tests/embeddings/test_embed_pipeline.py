"""The embed pass is a pipeline (read page k+1, encode page k, write page k-1 at once): it still
writes every page, heartbeats a page's last id only once that page is written, and a retried
attempt resumes after the heartbeat id without touching the pages before it."""

from __future__ import annotations

import dataclasses

import pytest
from temporalio.testing import ActivityEnvironment

from activities.search import embed_pending
from learnflow.contracts import EmbedInput
from tests.conftest import unique_id
from tests.helpers.catalog import course
from tests.helpers.polling import eventually

pytestmark = [pytest.mark.postgres]


async def _catalog(app, n: int) -> tuple[str, list[int]]:
    source = unique_id("embed-pipeline-test")
    resources = [
        course(source, unique_id(f"course-{i}"), f"Pipeline course {i} on topic {unique_id('t')}")
        for i in range(n)
    ]
    await app.stores.catalog.upsert_resources(unique_id("run"), resources)
    async with app.stores.pool.acquire() as conn:
        ids = await conn.fetch(
            "SELECT id FROM learning_resource WHERE etl_source = $1 ORDER BY id", source
        )
    return source, [r["id"] for r in ids]


async def _embedded_ids(app, ids: list[int]) -> set[int]:
    async with app.stores.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT resource_id FROM embedding_state WHERE resource_id = ANY($1::bigint[])"
            " AND encoder = $2",
            ids,
            app.stores.encoder_id,
        )
    return {r["resource_id"] for r in rows}


def _env(details: list) -> tuple[ActivityEnvironment, list]:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, heartbeat_details=details)
    beats: list = []
    env.on_heartbeat = lambda *args: beats.append(args[0])
    return env, beats


async def test_every_page_is_written_and_heartbeats_follow_the_writes(app):
    source, ids = await _catalog(app, 7)
    env, beats = _env([])
    result = await env.run(embed_pending, EmbedInput(source=source, batch_size=2))

    assert result.embedded == 7
    assert await _embedded_ids(app, ids) == set(ids)
    pages = [b for b in beats if b.get("stage") == "embed"]
    # one heartbeat per page, in page order, each counting exactly the rows up to its id
    assert [b["after_id"] for b in pages] == [ids[1], ids[3], ids[5], ids[6]]
    for beat in pages:
        assert beat["counts"]["embedded"] == sum(1 for i in ids if i <= beat["after_id"])
    # the vectors are written, with their payloads: each point answers a query by its id
    vector = app.stores.encoder.encode(["Pipeline course"])[0]
    for rid in (ids[0], ids[6]):
        hits = await app.stores.vector.search(vector, {"id": [str(rid)]}, limit=1)
        assert [(h.id, h.document["etl_source"]) for h in hits.hits] == [(rid, source)]


async def test_a_retry_resumes_after_the_heartbeat_id(app):
    source, ids = await _catalog(app, 5)
    env, _ = _env([{"stage": "embed", "after_id": ids[2], "counts": {"embedded": 3}}])
    result = await env.run(embed_pending, EmbedInput(source=source, batch_size=2))

    assert result.embedded == 5  # the earlier attempt's 3 plus this one's 2
    assert await _embedded_ids(app, ids) == set(ids[3:])


async def test_the_pass_ends_with_its_points_written_and_leaves_the_optimize_to_the_store(
    app, monkeypatch
):
    """The pass does not wait for the vector store's optimize (its serial tail): it returns
    with every point written and searchable, the optimize still to come in the background."""

    from learnflow.stores.vector import EdgeVectorStore

    store = app.stores.vector
    assert isinstance(store, EdgeVectorStore)
    await store.optimize()  # earlier tests' writes: settled, so what follows is this pass's
    monkeypatch.setattr(store._deferred, "_quiet", 3600.0)  # the optimize waits for the test
    source, ids = await _catalog(app, 5)
    env, _ = _env([])
    result = await env.run(embed_pending, EmbedInput(source=source, batch_size=2))

    assert result.embedded == 5 and store.optimizing()
    vector = app.stores.encoder.encode(["Pipeline course"])[0]
    hits = await store.search(vector, {"id": [str(ids[4])]}, limit=1)
    assert [h.id for h in hits.hits] == [ids[4]]
    monkeypatch.undo()
    store._deferred.request()  # wakes the waiting thread with the usual quiet
    await eventually(lambda: not store.optimizing(), "the background optimize's end", 60, 0.05)
    assert not store._written  # optimized in the background

"""`load_page` (page-load-v1): one page transformed, upserted and keyword-indexed in one activity.

The documents it indexes are built from the transform's models, not read back from Postgres:
they must equal what the index pass builds from the stored rows. A retry after an attempt that
wrote the rows but not the index rewrites no row and indexes what was left; a page loaded
before is skipped by hash. Inline and with the transform pool (the page's rows and documents
cross the pool's pipe).
"""

from __future__ import annotations

import json

import pytest
from temporalio.testing import ActivityEnvironment

from activities import cpu_pool
from activities.ingest import load_page
from learnflow.contracts import PageLoadResult, PageRef, TransformInput
from learnflow.models import Resource
from learnflow.search_doc import to_search_document
from learnflow.settings import reset_settings
from tests.conftest import TEST_JSON, unique_id

pytestmark = [pytest.mark.postgres]


@pytest.fixture(params=[0, 1], ids=["inline", "pool"])
def cpu_workers(request, monkeypatch):
    monkeypatch.setenv("INGEST_CPU_WORKERS", str(request.param))
    reset_settings()
    yield request.param
    cpu_pool.shutdown()
    monkeypatch.delenv("INGEST_CPU_WORKERS", raising=False)
    reset_settings()


async def _load(page_key: str) -> tuple[str, PageLoadResult]:
    run_id = unique_id("load-page")
    page = PageRef(kind="courses", key=page_key, item_count=0)
    req = TransformInput(source="mitxonline", run_id=run_id, page=page)
    return run_id, await ActivityEnvironment().run(load_page, req)


async def _stored(app, readable_ids: list[str]) -> list[dict]:
    async with app.stores.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT lr.id, lr.data, lr.published, lr.created_on, lr.content_hash, lr.xmin::text AS x,"
            " s.indexed_hash FROM learning_resource lr"
            " LEFT JOIN search_index_state s ON s.resource_id = lr.id"
            " WHERE lr.etl_source = 'mitxonline' AND lr.resource_type = 'course'"
            " AND lr.readable_id = ANY($1::text[]) ORDER BY lr.id",
            readable_ids,
        )
    return [dict(r) for r in rows]


async def test_load_page_indexes_what_the_index_pass_would(app, cpu_workers):
    raw = (TEST_JSON / "mitxonline_courses.json").read_bytes()
    readable_ids = [c["readable_id"] for c in json.loads(raw)["results"]]
    key = await app.stores.blobs.put(f"raw/mitxonline/{unique_id('page')}/00000-courses", raw)
    first_run, first = await _load(key)
    rows = await _stored(app, readable_ids)
    published = [r for r in rows if r["published"]]
    assert published and first.inserted + first.updated + first.unchanged == len(rows)
    # every published row is in the index as the index pass builds it from the stored row
    indexed = {d["id"]: d for d in await app.stores.keyword.get([r["id"] for r in published])}
    for r in published:
        expected = to_search_document(Resource.model_validate(r["data"]), r["id"], r["created_on"])
        assert indexed[r["id"]] == json.loads(json.dumps(expected))
        assert r["indexed_hash"] == r["content_hash"]

    # An attempt that wrote the rows and died before the index: the retry rewrites nothing and
    # indexes every published row again (its page was never recorded, so it is not skipped).
    ids = [r["id"] for r in published]
    async with app.stores.pool.acquire() as conn:
        await conn.execute(
            "DELETE FROM search_index_state WHERE resource_id = ANY($1::bigint[])", ids
        )
        await conn.execute("DELETE FROM etl_page_state WHERE last_run_id = $1", first_run)
    await app.stores.keyword.delete(ids)
    assert await app.stores.keyword.get(ids) == []
    _, retry = await _load(key)
    assert (retry.inserted, retry.updated, retry.indexed) == (0, 0, len(published))
    after = await _stored(app, readable_ids)
    assert [r["x"] for r in after] == [r["x"] for r in rows]  # no row rewritten
    assert len(await app.stores.keyword.get(ids)) == len(published)
    assert all(r["indexed_hash"] == r["content_hash"] for r in after if r["published"])

    # loaded and intact: skipped by the page's hash, nothing transformed or indexed
    _, again = await _load(key)
    assert (again.unchanged, again.indexed, again.inserted) == (len(rows), 0, 0)


async def test_a_new_index_generation_is_recorded_before_pages_index(app):
    """On a new keyword index (a new deployment, a new schema), the first page records the
    generation before it writes: the index pass that follows must not take the pages' rows for
    a new index's and index them all again."""
    from activities import ingest
    from activities.search import index_pending
    from learnflow.contracts import IndexInput
    from learnflow.stores.content_search import WATERMARK_KEY, read_watermarks

    raw = (TEST_JSON / "mitxonline_courses.json").read_bytes()
    readable_ids = [c["readable_id"] for c in json.loads(raw)["results"]]
    key = await app.stores.blobs.put(f"raw/mitxonline/{unique_id('page')}/00000-courses", raw)
    await _load(key)  # the rows exist
    before = await _stored(app, readable_ids)
    marks = await read_watermarks(app.stores.blobs)
    marks.pop("generation:keyword", None)  # as before any index pass wrote into this index
    await app.stores.blobs.put(WATERMARK_KEY, json.dumps(marks).encode())
    ingest._generations_seen.clear()
    async with app.stores.pool.acquire() as conn:  # the page's rows: not indexed, not skipped
        await conn.execute(
            "DELETE FROM search_index_state WHERE resource_id = ANY($1::bigint[])",
            [r["id"] for r in before],
        )
        await conn.execute("DELETE FROM etl_page_state WHERE source = 'mitxonline'")
    _, loaded = await _load(key)
    published = [r["id"] for r in before if r["published"]]
    assert loaded.indexed == len(published) > 0
    assert (await read_watermarks(app.stores.blobs)).get("generation:keyword")

    async def indexed_on() -> dict[int, object]:
        async with app.stores.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT resource_id, indexed_on FROM search_index_state"
                " WHERE resource_id = ANY($1::bigint[])",
                published,
            )
        return {r["resource_id"]: r["indexed_on"] for r in rows}

    marked = await indexed_on()
    assert set(marked) == set(published)
    await ActivityEnvironment().run(index_pending, IndexInput(source="mitxonline"))
    assert await indexed_on() == marked  # the pass left the pages' rows alone

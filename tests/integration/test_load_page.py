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

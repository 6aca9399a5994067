"""Any worker takes any page: a page's activities carry only keys (the raw page and the batch
live in the shared blob store), so a page transformed or upserted a second time — by another
worker process after a lost completion, or a retry — returns the same and rewrites nothing."""

from __future__ import annotations

import pytest
from temporalio.testing import ActivityEnvironment

from activities.ingest import fetch_source_pages, transform_page, upsert_batch
from learnflow.contracts import FetchInput, TransformInput, UpsertInput
from tests.conftest import unique_id

pytestmark = [pytest.mark.postgres]


async def _versions(app, etl_source: str) -> dict[str, str]:
    async with app.stores.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT readable_id || '/' || resource_type AS k, xmin::text AS x"
            " FROM learning_resource WHERE etl_source = $1",
            etl_source,
        )
    return {r["k"]: r["x"] for r in rows}


async def test_a_page_done_twice_by_two_workers_writes_once(app):
    run_id = unique_id("any-worker")
    fetched = await ActivityEnvironment().run(
        fetch_source_pages, FetchInput(source="mitxonline", run_id=run_id)
    )
    page = next(p for p in fetched.pages if p.kind == "courses")
    context = [p for p in fetched.pages if p is not page]
    req = TransformInput(
        source="mitxonline",
        run_id=run_id,
        page=page,
        context=context,
        manifest_key=fetched.manifest_key,
    )
    # "worker A" and "worker B" (fresh activity environments: nothing shared but the stores)
    first = await ActivityEnvironment().run(transform_page, req)
    second = await ActivityEnvironment().run(transform_page, req)
    assert (second.batch_key, second.resources) == (first.batch_key, first.resources)
    assert first.resources > 0

    upsert = UpsertInput(source="mitxonline", run_id=run_id, batch_key=first.batch_key)
    await ActivityEnvironment().run(upsert_batch, upsert)
    before = await _versions(app, "mitxonline")
    assert len(before) >= first.resources
    again = await ActivityEnvironment().run(upsert_batch, upsert)
    assert (again.inserted, again.updated) == (0, 0)
    assert await _versions(app, "mitxonline") == before  # no row rewritten, none added

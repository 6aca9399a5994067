"""A new embedded index generation (schema or analyzer change) is filled by the next indexing
run from the whole catalog, resources and content files alike, then runs touch only changes."""

from __future__ import annotations

import json

import pytest

from learnflow.contracts import IndexInput, IndexResult
from learnflow.stores.content_search import WATERMARK_KEY, content_stores, read_watermarks
from tests.search.conftest import _run

pytestmark = [pytest.mark.grpc, pytest.mark.temporal, pytest.mark.postgres]


async def test_a_new_generation_reindexes_the_whole_catalog(app, seeded):
    stores = app.stores
    async with stores.pool.acquire() as conn:
        published = await conn.fetchval("SELECT count(*) FROM learning_resource WHERE published")
    # As an install indexed by the previous schema would have it (an older generation recorded).
    marks = await read_watermarks(stores.blobs)
    assert marks["generation:keyword"] == stores.keyword.generation
    marks.update({"generation:keyword": "tantivy-v2", "generation:indexed": "tantivy-v2"})
    await stores.blobs.put(WATERMARK_KEY, json.dumps(marks).encode())
    files_before = await content_stores(stores.settings).keyword.count()

    # a run for one source still rebuilds every source
    rebuilt = await _run(app, "IndexResourcesWorkflow", IndexInput(source="mitxonline"),
                         IndexResult, "default")  # fmt: skip
    assert rebuilt.indexed == published >= 4
    marks = await read_watermarks(stores.blobs)
    assert marks["generation:keyword"] == stores.keyword.generation
    # the content index has a schema of its own (its filters), so a generation of its own
    assert marks["generation:indexed"] == content_stores(stores.settings).keyword.generation
    assert await content_stores(stores.settings).keyword.count() == files_before >= 2
    again = await _run(app, "IndexResourcesWorkflow", IndexInput(), IndexResult, "default")
    assert again.indexed == 0

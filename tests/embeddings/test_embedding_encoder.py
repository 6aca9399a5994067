"""A change of encoder re-embeds: embedding_state records which encoder embedded each resource,
and a resource embedded by another encoder is pending again, with no checksum to skip it by."""

from __future__ import annotations

import pytest

from tests.conftest import unique_id
from tests.helpers.catalog import course

pytestmark = [pytest.mark.postgres]


async def test_a_new_encoder_makes_every_resource_pending(app):
    catalog = app.stores.catalog
    source = unique_id("encoder-change-test")
    resources = [course(source, unique_id(f"course-{n}"), f"Course {n}") for n in range(3)]
    await catalog.upsert_resources(unique_id("run"), resources)

    pending = await catalog.pending_embedding(source, 0, 100, "model-a")
    assert len(pending) == 3 and all(r["text_checksum"] is None for r in pending)
    await catalog.mark_embedded([(r["id"], f"sum-{r['id']}") for r in pending], encoder="model-a")

    assert await catalog.pending_embedding(source, 0, 100, "model-a") == []
    again = await catalog.pending_embedding(source, 0, 100, "model-b")
    assert sorted(r["id"] for r in again) == sorted(r["id"] for r in pending)
    # The old checksum belongs to the other encoder's vectors: it must not mark them unchanged.
    assert all(r["text_checksum"] is None for r in again)

    await catalog.mark_embedded([(r["id"], f"sum-{r['id']}") for r in again], encoder="model-b")
    assert await catalog.pending_embedding(source, 0, 100, "model-b") == []

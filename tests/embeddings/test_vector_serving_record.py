"""`vector_serving` for a deployment from before it existed: migration 0007 records the encoder
most of embedding_state holds, so switching QDRANT_ENCODER right after the upgrade still serves
the old collections, and the service loads that encoder from its name alone."""

from __future__ import annotations

import shutil

import pytest

from learnflow.db import migrate as migrations
from learnflow.db.catalog import CatalogStore, create_pool
from learnflow.db.vector_serving import catch_up, promote, read_serving
from learnflow.settings import Settings
from learnflow.stores.encoders import ENCODER_KINDS, encoder_id, encoder_kind
from learnflow.stores.vector_serving import (
    CONTENT_FILES,
    RESOURCES,
    ServingVectors,
    VectorServing,
    vector_store,
)
from tests.helpers.catalog import course

pytestmark = [pytest.mark.postgres]


def test_every_local_encoder_is_known_by_its_collection_name():
    for kind in ENCODER_KINDS:
        if kind != "litellm":
            assert encoder_kind(encoder_id(kind)) == (kind, "")
    model = "openai/text-embedding-3-small"
    assert encoder_kind(encoder_id("litellm", model), model) == ("litellm", model)
    with pytest.raises(ValueError):
        encoder_kind("an-encoder-nobody-configured")


async def test_the_upgrade_serves_what_embedded_the_catalog(fresh_dsn, tmp_path, monkeypatch):
    before = tmp_path / "migrations"
    before.mkdir()
    for path in migrations.migration_files():
        if path.name < "0007":
            shutil.copy(path, before / path.name)
    pool = await create_pool(fresh_dsn)
    try:
        monkeypatch.setattr(migrations, "MIGRATIONS_DIR", before)
        async with pool.acquire() as conn:
            await migrations.migrate(conn)
        catalog = CatalogStore(pool)
        resources = [course("upgrade", f"upgrade-{n}", f"Course {n}") for n in range(3)]
        await catalog.upsert_resources("run", resources)
        rows = await catalog.pending_embedding("upgrade", 0, 10, "hashidf768")
        await catalog.mark_embedded([(r["id"], "x") for r in rows[:2]], encoder="hashidf768")
        await catalog.mark_embedded([(rows[2]["id"], "x")], encoder="sif-glove50")

        monkeypatch.undo()
        async with pool.acquire() as conn:
            assert "0007_vector_serving" in await migrations.migrate(conn)
        record = await read_serving(pool)
        assert (record.encoder, record.kind, record.retiring) == ("hashidf768", None, None)
        assert (await catch_up(pool, "sif-glove50")).embedded == 1

        # A service configured with the new encoder serves the recorded one, loaded by name.
        settings = Settings(
            database_url=fresh_dsn, qdrant_encoder="glove", qdrant_embedded="client"
        )
        configured = ServingVectors(
            "sif-glove50",
            lambda: pytest.fail("the configured encoder must not be loaded"),
            vector_store(settings, RESOURCES, "sif-glove50"),
            lambda: vector_store(settings, CONTENT_FILES, "sif-glove50"),
        )
        serving = await VectorServing(settings, pool, configured).current()
        assert serving.encoder_id == "hashidf768" == serving.encoder.name
        assert serving.resources.collection == "resource_embeddings.resources"

        # A promotion names the encoder it replaces; repeating it (a retry) changes nothing.
        assert await promote(pool, "sif-glove50", "glove", "") == "hashidf768"
        assert await promote(pool, "sif-glove50", "glove", "") == "hashidf768"
        assert (await read_serving(pool)).kind == "glove"
    finally:
        await pool.close()

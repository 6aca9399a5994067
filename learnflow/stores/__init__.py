"""Store adapters behind small interfaces, and the per-process set of them (`Stores`).

Activities and the gRPC service get their stores from `get_stores()`; which implementation is
used comes from settings (embedded tantivy/Qdrant-local by default, OpenSearch/Qdrant server by URL).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from learnflow.db.catalog import CatalogStore, create_pool
from learnflow.settings import Settings, get_settings
from learnflow.stores.blobs import BlobStore, DirectoryBlobStore, S3BlobStore
from learnflow.stores.encoders import Encoder
from learnflow.stores.keyword import KeywordIndex
from learnflow.stores.vector import VectorStore
from learnflow.stores.vector_serving import (
    RESOURCES,
    close_vector_stores,
    configured_encoder,
    load_encoder,
    vector_store,
)


@dataclass
class Stores:
    settings: Settings
    pool: asyncpg.Pool
    catalog: CatalogStore
    keyword: KeywordIndex
    vector: VectorStore
    blobs: BlobStore
    _encoder: Encoder | None = None

    @property
    def encoder_id(self) -> str:
        """The configured encoder's name, without loading it (see `encoder_id`)."""
        return configured_encoder(self.settings)

    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            self._encoder = load_encoder(self.settings, self.settings.qdrant_encoder)
        return self._encoder

    async def close(self) -> None:
        await self.keyword.close()
        await self.vector.close()
        await self.pool.close()


def make_keyword_index(settings: Settings) -> KeywordIndex:
    if settings.keyword_backend == "opensearch" or settings.opensearch_url:
        from learnflow.stores.opensearch import OpenSearchKeywordIndex  # type: ignore[import-not-found]

        return OpenSearchKeywordIndex(settings.opensearch_url, settings.opensearch_index)
    from learnflow.stores.tantivy_index import TantivyKeywordIndex

    return TantivyKeywordIndex(
        Path(settings.data_dir) / "keyword",
        column_cache_bytes=settings.keyword_column_cache_mb * 1_000_000,
    )


def make_blob_store(settings: Settings) -> BlobStore:
    url = settings.blob_store_url
    if url.startswith("s3://"):
        return S3BlobStore(
            url,
            settings.s3_endpoint_url,
            settings.aws_access_key_id,
            settings.aws_secret_access_key.get_secret_value(),
            settings.aws_region,
        )
    return DirectoryBlobStore(Path(url) if url else Path(settings.data_dir) / "blobs")


_stores: Stores | None = None
_lock = asyncio.Lock()


async def get_stores() -> Stores:
    """The process's stores, created on first use (one pool, one index writer per process)."""
    global _stores
    if _stores is not None:
        return _stores
    async with _lock:
        if _stores is None:
            settings = get_settings()
            if not settings.database_url:
                raise RuntimeError("DATABASE_URL is not set (learn up sets it for its processes)")
            pool = await create_pool(settings.database_url)
            # One collection per encoder: vectors of two models never mix, and a new model
            # starts an empty collection that the embedding pass fills (embedding_state records
            # which encoder embedded each resource) while the search service keeps reading the
            # promoted one (`vector_serving`).
            vector = vector_store(settings, RESOURCES, configured_encoder(settings))
            _stores = Stores(
                settings=settings,
                pool=pool,
                catalog=CatalogStore(pool),
                keyword=make_keyword_index(settings),
                vector=vector,
                blobs=make_blob_store(settings),
            )
    return _stores


async def reset_stores() -> None:
    """Close and forget the process's stores (tests switch settings between sessions)."""
    global _stores
    if _stores is not None:
        await _stores.close()
    _stores = None
    await close_vector_stores()

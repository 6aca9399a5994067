"""Vector collections by encoder, and the ones the search service serves.

Each encoder has its own pair of collections (`<prefix>.resources[.<encoder>]` and
`<prefix>.content_files[.<encoder>]`). The embeddings worker fills the configured encoder's; the
search service reads the promoted encoder's (`learnflow.db.vector_serving`), with that encoder
on the query side too, so a change of QDRANT_ENCODER never answers from a half-filled
collection: the old pair serves until the new one is complete and promoted, then is retired.

`vector_store()` keeps one store per collection per process: the worker and the service of one
process (`learn up`, the tests) share it, as embedded engines need (one opener per path).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from learnflow.search_doc import CONTENT_CASE_SENSITIVE_FILTERS, CONTENT_FILTER_FIELDS
from learnflow.settings import Settings
from learnflow.stores.encoders import (
    Encoder,
    collection_name,
    encoder_id,
    encoder_kind,
    get_encoder,
)
from learnflow.stores.vector import QdrantVectorStore, VectorStore

log = structlog.get_logger(__name__)

RESOURCES = "resources"
CONTENT_FILES = "content_files"

_stores: dict[tuple, VectorStore] = {}
# Set in a search process that is not the one opening the embedded engine (one opener per
# path): its stores come from here instead (`search_service.shared_vectors`).
_factory: Callable[[Settings, str, str], VectorStore] | None = None


def use_store_factory(factory: Callable[[Settings, str, str], VectorStore] | None) -> None:
    """Make `vector_store` build this process's stores with `factory(settings, what, encoder)`."""
    global _factory
    _factory = factory
    _stores.clear()


def vector_store(settings: Settings, what: str, encoder: str) -> VectorStore:
    """The process's store of `encoder`'s `what` collection (resources | content_files)."""
    name = collection_name(settings.qdrant_collection_prefix, what, encoder)
    key = (settings.qdrant_url, settings.qdrant_path, settings.qdrant_embedded, name)
    if key not in _stores and _factory is not None:
        _stores[key] = _factory(settings, what, encoder)
    if key not in _stores:
        extra: dict = {}
        if what == CONTENT_FILES:
            extra = {
                "filter_fields": tuple(CONTENT_FILTER_FIELDS),
                "case_sensitive": frozenset(CONTENT_CASE_SENSITIVE_FILTERS),
                "id_field": "content_file_id",
            }
        _stores[key] = QdrantVectorStore(
            url=settings.qdrant_url,
            path=settings.qdrant_path,
            collection=name,
            embedded=settings.qdrant_embedded,
            **extra,
        )
    return _stores[key]


async def drop_collections(settings: Settings, encoder: str) -> list[str]:
    """Delete `encoder`'s collections (a retired encoder's); the names dropped."""
    dropped = []
    for what in (RESOURCES, CONTENT_FILES):
        store = vector_store(settings, what, encoder)
        await store.drop()
        dropped.append(store.collection)
    return dropped


async def close_vector_stores() -> None:
    """Close and forget every store (tests switch settings between sessions)."""
    stores = list(_stores.values())
    _stores.clear()
    _encoders.clear()
    for store in stores:
        await store.close()


def configured_encoder(settings: Settings) -> str:
    return encoder_id(settings.qdrant_encoder, settings.qdrant_dense_model)


def load_encoder(settings: Settings, kind: str, model: str = "") -> Encoder:
    """An encoder of `kind` (and `model`) as `settings` configure encoders."""
    return get_encoder(
        kind,
        model or settings.qdrant_dense_model,
        settings.litellm_api_base,
        settings.litellm_api_key.get_secret_value() if settings.litellm_api_key else None,
        str(settings.encoder_model_dir) if settings.encoder_model_dir else None,
    )


@dataclass(frozen=True)
class ServingVectors:
    """One encoder and its two collections: what a vector query encodes with and reads."""

    encoder_id: str
    load: Callable[[], Encoder]  # the configured encoder loads on first use (LiteLLM probes)
    resources: VectorStore
    content: Callable[[], VectorStore]  # the configured content stores open on first use

    @property
    def encoder(self) -> Encoder:
        return self.load()

    @property
    def content_files(self) -> VectorStore:
        return self.content()


_encoders: dict[tuple[str, str], Encoder] = {}


def serving_vectors(
    settings: Settings, encoder: str, kind: str | None = None, model: str | None = None
) -> ServingVectors:
    """`encoder`'s collections, and the encoder itself (loaded on first use, once per process):
    the promoted one for the search service, or for the embeddings worker to keep fresh while
    another encoder catches up. `kind`/`model` as `vector_serving` records them (None: derived
    from `encoder`)."""
    if kind:
        kind, model = kind, model or ""
    else:
        kind, model = encoder_kind(encoder, settings.qdrant_dense_model)

    def load() -> Encoder:
        if (kind, model) not in _encoders:
            _encoders[(kind, model)] = load_encoder(settings, kind, model)
        return _encoders[(kind, model)]

    files = vector_store(settings, CONTENT_FILES, encoder)
    return ServingVectors(encoder, load, vector_store(settings, RESOURCES, encoder), lambda: files)


class VectorServing:
    """The search service's view of the promoted encoder, re-read from PostgreSQL at most every
    `refresh_seconds`. A query never waits for a re-read or an encoder load after the first:
    it answers from the snapshot it has while a background task loads the new one."""

    def __init__(self, settings: Settings, pool, configured: ServingVectors):
        self.settings = settings
        self.pool = pool
        self.configured = configured
        self.refresh_seconds = settings.vector_serving_refresh_seconds
        self._current: ServingVectors | None = None
        self._read_at = 0.0
        self._refreshing: asyncio.Task | None = None

    async def current(self) -> ServingVectors:
        if self._current is None:
            try:
                await self.refresh()
            except Exception as exc:  # PostgreSQL down: the configured ones until a re-read
                log.warning("vector_serving.refresh_failed", error=repr(exc))
                self._current, self._read_at = self.configured, time.monotonic()
        elif time.monotonic() - self._read_at >= self.refresh_seconds and (
            self._refreshing is None or self._refreshing.done()
        ):
            self._refreshing = asyncio.ensure_future(self._refresh_quietly())
        assert self._current is not None
        return self._current

    async def _refresh_quietly(self) -> None:
        try:
            await self.refresh()
        except Exception as exc:  # keep serving the snapshot; the next query tries again
            log.warning("vector_serving.refresh_failed", error=repr(exc))

    async def refresh(self) -> ServingVectors:
        """Read the promoted encoder and switch to it (loading it first) if it changed."""
        from learnflow.db.vector_serving import read_serving

        record = await read_serving(self.pool) if self.pool is not None else None
        self._read_at = time.monotonic()
        wanted = record.encoder if record else self.configured.encoder_id
        if self._current is not None and self._current.encoder_id == wanted:
            return self._current
        if wanted == self.configured.encoder_id:
            serving = self.configured
        else:
            kind, model = (record.kind, record.model) if record is not None else (None, None)
            serving = serving_vectors(self.settings, wanted, kind, model)
            await asyncio.to_thread(serving.load)  # off the query path
        if self._current is not None:
            log.info("vector_serving.switched", old=self._current.encoder_id, new=wanted)
        self._current = serving
        return serving

"""Indexing and embedding activities: bring the keyword index and the vector store in line with
the catalog, touching only what changed (by content hash / embedding-text checksum)."""

from __future__ import annotations

import hashlib

import numpy as np
import structlog
from temporalio import activity

from learnflow.contracts import (
    DEFAULT_QUEUE,
    EMBEDDINGS_QUEUE,
    EmbedInput,
    EmbedResult,
    IndexInput,
    IndexResult,
)
from learnflow.models import Resource
from learnflow.search_doc import embedding_text, filter_values, to_search_document
from learnflow.stores import get_stores
from learnflow.stores.vector import QdrantVectorStore, VectorPoint

log = structlog.get_logger(__name__)


@activity.defn
async def index_pending(req: IndexInput) -> IndexResult:
    """Index new/changed published resources, deindex unpublished ones; loop in batches."""
    stores = await get_stores()
    result = IndexResult()
    while True:
        batch = await stores.catalog.pending_index(req.source, req.batch_size)
        if not batch:
            break
        docs, gone = [], []
        for row in batch:
            if row.published:
                docs.append(
                    to_search_document(Resource.model_validate(row.data), row.id, row.created_on)
                )
            else:
                gone.append(row.id)
        await stores.keyword.upsert(docs)
        await stores.keyword.delete(gone)
        await stores.catalog.mark_indexed([(row.id, row.content_hash) for row in batch])
        result.indexed += len(docs)
        result.deindexed += len(gone)
        activity.heartbeat(result.indexed + result.deindexed)
    log.info("index.done", source=req.source, indexed=result.indexed, deindexed=result.deindexed)
    return result


def _checksum(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - change detection, not security


@activity.defn
async def embed_pending(req: EmbedInput) -> EmbedResult:
    """Embed resources whose embedding text changed; remove unpublished ones. Idempotent:
    point ids derive from the resource key, and unchanged text is skipped by checksum."""
    stores = await get_stores()
    encoder = stores.encoder
    await stores.vector.ensure_collection(encoder.dim)
    result = EmbedResult()
    after_id = int(activity.info().heartbeat_details[0]) if activity.info().heartbeat_details else 0
    while True:
        rows = await stores.catalog.pending_embedding(req.source, after_id, req.batch_size)
        if not rows:
            break
        to_embed: list[tuple[int, str, dict, str]] = []
        removed: list[int] = []
        removed_keys: list[str] = []
        unchanged: list[tuple[int, str]] = []
        for row in rows:
            res = Resource.model_validate(row["data"])
            if not row["published"]:
                removed.append(row["id"])
                removed_keys.append(res.key)
                continue
            doc = to_search_document(res, row["id"], row["created_on"])
            text = embedding_text(doc)
            checksum = _checksum(text)
            if checksum == row["text_checksum"]:
                unchanged.append((row["id"], checksum))
                continue
            to_embed.append((row["id"], res.key, doc, text))
        if to_embed:
            vectors = encoder.encode([t for *_, t in to_embed])
            points = [
                VectorPoint(
                    key=key,
                    vector=np.asarray(vec),
                    payload=QdrantVectorStore.payload_for(doc, filter_values(doc)),
                )
                for (_, key, doc, _), vec in zip(to_embed, vectors, strict=True)
            ]
            await stores.vector.upsert(points)
        await stores.vector.delete(removed_keys)
        await stores.catalog.mark_embedded(
            [(rid, _checksum(text)) for rid, _, _, text in to_embed] + unchanged,
            removed,
        )
        result.embedded += len(to_embed)
        result.removed += len(removed)
        result.unchanged += len(unchanged)
        after_id = rows[-1]["id"]
        activity.heartbeat(after_id)
    log.info("embed.done", source=req.source, embedded=result.embedded, removed=result.removed)
    return result


ACTIVITIES_BY_QUEUE = {DEFAULT_QUEUE: [index_pending], EMBEDDINGS_QUEUE: [embed_pending]}

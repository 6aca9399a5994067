"""Indexing and embedding activities: bring the keyword index and the vector store in line with
the catalog, touching only what changed (by content hash / embedding-text checksum)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import structlog
from temporalio import activity

from activities.embed_promote import served_elsewhere
from activities.progress import Progress, heartbeat, resumed
from learnflow.contracts import (
    DEFAULT_QUEUE,
    EMBEDDINGS_QUEUE,
    EmbedInput,
    EmbedResult,
    IndexInput,
    IndexResult,
)
from learnflow.cpu_priority import background_threads
from learnflow.http import collector_paused
from learnflow.models import Resource
from learnflow.search_doc import (
    chunk_words,
    content_chunk_key,
    content_filter_values,
    embedding_text,
    filter_values,
    search_document,
    stored_key,
    to_content_file_document,
    to_search_document,
)
from learnflow.stores import get_stores
from learnflow.stores.content_search import (
    content_stores,
    embedded_mark,
    new_generation,
    read_watermarks,
    write_watermark,
)
from learnflow.stores.encoders import Encoder
from learnflow.stores.vector import VectorPoint, payload_for
from learnflow.stores.vector_serving import ServingVectors

log = structlog.get_logger(__name__)


def _etl_source(source: str | None) -> str | None:
    """Workflows name a source (`edx`); the catalog records its etl_source (`mit_edx`)."""
    if source is None:
        return None
    from sources import all_sources

    spec = all_sources().get(source)
    return spec.etl_source if spec else source


async def keyword_generation_is_new(stores) -> bool:
    """Whether the keyword index is a generation nothing has indexed into yet (a new schema
    starts empty); if so, what was indexed is forgotten (every row pending again) and the
    generation recorded, so the caller indexes everything again."""

    async def forget_indexed() -> None:
        async with stores.pool.acquire() as conn:
            await conn.execute("DELETE FROM search_index_state")

    return await new_generation(stores.blobs, "keyword", stores.keyword, forget_indexed)


async def write_index(
    stores, docs: list[dict], gone: list[int], marks: list[tuple[int, str]]
) -> None:
    """Index `docs`, remove `gone`, then record the (id, content_hash) the index now holds:
    the index pass and `load_page` (a page's own resources) write the index this one way."""
    await stores.keyword.upsert(docs)
    await stores.keyword.delete(gone)
    await stores.catalog.mark_indexed(marks)


@activity.defn
async def index_pending(req: IndexInput) -> IndexResult:
    """Index new/changed published resources, deindex unpublished ones; loop in batches."""
    stores = await get_stores()
    result = IndexResult()
    source = _etl_source(req.source)
    if await keyword_generation_is_new(stores):
        # A new index (schema/analyzer change): everything is pending again, every source now.
        source = None
        log.info("index.rebuild", generation=stores.keyword.generation)
    while True:
        batch = await stores.catalog.pending_index(source, req.batch_size)
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
        await write_index(stores, docs, gone, [(row.id, row.content_hash) for row in batch])
        result.indexed += len(docs)
        result.deindexed += len(gone)
        heartbeat(Progress(stage="index", counts=result.model_dump()))
    log.info("index.done", source=req.source, indexed=result.indexed, deindexed=result.deindexed)
    return result


def _checksum(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - change detection, not security


@contextlib.contextmanager
def _timed(seconds: dict[str, float], stage: str) -> Iterator[None]:
    """Add a step's wall seconds to `seconds[stage]`: the pass logs where its time went."""
    started = time.perf_counter()
    try:
        yield
    finally:
        seconds[stage] += time.perf_counter() - started


@dataclass
class _EmbedBatch:
    """One page of the embed pass, read and turned into embedding texts, not yet encoded."""

    last_id: int
    # (id, key, document, embedding text, its checksum)
    to_embed: list[tuple[int, str, dict, str, str]] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)
    removed_keys: list[str] = field(default_factory=list)
    unchanged: list[tuple[int, str]] = field(default_factory=list)
    # indices into to_embed of texts no encoder has embedded (new or changed resources): during
    # a catch-up the served encoder embeds these too
    fresh: list[int] = field(default_factory=list)


async def _read_embed_batch(
    stores, etl_source: str | None, after_id: int, batch_size: int, seconds: dict[str, float]
) -> _EmbedBatch | None:
    """The next page of resources whose embedding text may have changed, with their documents
    and texts built (unchanged texts are skipped by checksum); None when the pass is done."""
    # the pool decodes the rows' jsonb as they arrive (while this waits): many objects, no cycles
    with _timed(seconds, "read"), collector_paused():
        rows = await stores.catalog.pending_embedding(
            etl_source, after_id, batch_size, stores.encoder_id
        )
    if not rows:
        return None
    with _timed(seconds, "build"):
        return _embed_batch(rows)


def _embed_batch(rows) -> _EmbedBatch:
    batch = _EmbedBatch(last_id=rows[-1]["id"])
    with collector_paused():  # a page's documents and texts: many objects, no cycles
        for row in rows:
            data = row["data"]  # validated when written: read as stored (search_document)
            if not row["published"]:
                batch.removed.append(row["id"])
                batch.removed_keys.append(stored_key(data))
                continue
            doc = search_document(data, row["id"], row["created_on"])
            text = embedding_text(doc)
            checksum = _checksum(text)
            if checksum == row["text_checksum"]:
                batch.unchanged.append((row["id"], checksum))
            else:
                if checksum != row["stored_checksum"]:
                    batch.fresh.append(len(batch.to_embed))
                batch.to_embed.append((row["id"], doc["key"], doc, text, checksum))
    return batch


def _points(items: list[tuple[int, str, dict, str, str]], vectors) -> list[VectorPoint]:
    with collector_paused():  # the payloads: many objects, no cycles
        return [
            VectorPoint(
                key=key, vector=np.asarray(vec), payload=payload_for(doc, filter_values(doc))
            )
            for (_, key, doc, *_), vec in zip(items, vectors, strict=True)
        ]


async def _write_embed_batch(
    stores,
    batch: _EmbedBatch,
    vectors,
    result: EmbedResult,
    seconds: dict[str, float],
    served: ServingVectors | None = None,
    served_vectors=None,
) -> None:
    """Upsert a page's points, remove its unpublished ones (`served`, the promoted encoder's
    collection during a catch-up, takes its fresh points and the removals too), record its
    embedding state, then heartbeat its last id: a retry resumes after the last page written,
    never one in flight."""
    with _timed(seconds, "points"):
        points = _points(batch.to_embed, vectors) if batch.to_embed else []
    with _timed(seconds, "upsert"):
        await stores.vector.upsert(points)
        await stores.vector.delete(batch.removed_keys)
    if served is not None:
        if served_vectors is not None:
            await served.resources.ensure_collection(served.encoder.dim, served.encoder.name)
            # the same keys and payloads, the served encoder's vectors
            fresh = [points[i] for i in batch.fresh]
            await served.resources.upsert(
                [
                    VectorPoint(p.key, np.asarray(vec), p.payload)
                    for p, vec in zip(fresh, served_vectors, strict=True)
                ]
            )
        await served.resources.delete(batch.removed_keys)
    with _timed(seconds, "mark"):
        await stores.catalog.mark_embedded(
            [(rid, checksum) for rid, *_, checksum in batch.to_embed] + batch.unchanged,
            batch.removed,
            encoder=stores.encoder_id,
        )
    result.embedded += len(batch.to_embed)
    result.removed += len(batch.removed)
    result.unchanged += len(batch.unchanged)
    heartbeat(Progress(stage="embed", after_id=batch.last_id, counts=result.model_dump()))


# The pass's encoder runs at the background priority: in a worker that also serves the default
# queue, the catalog's pages win a contended core (learnflow/cpu_priority.py). Two threads: the
# page being encoded and, during a catch-up, the served encoder's fresh texts.
_ENCODE_THREADS = background_threads(2, "embed-encode")


async def _encode(encoder, texts: list[str]) -> np.ndarray | None:
    """Encode in a thread: ONNX Runtime and the tokenizer release the GIL, so the event loop
    reads the next page and writes the last one meanwhile (and heartbeats, and other
    activities' I/O, go on)."""
    return await _ENCODE_THREADS.run(encoder.encode, texts) if texts else None


async def _encode_batch(
    encoder, batch: _EmbedBatch, served: ServingVectors | None, seconds: dict[str, float]
):
    """A page's vectors by the configured encoder and, during a catch-up, by the served one for
    its fresh texts only (new or changed resources: few), so the catch-up still finishes at
    about the configured encoder's own pace."""
    texts = [text for _, _, _, text, _ in batch.to_embed]
    with _timed(seconds, "encode"):
        vectors = await _encode(encoder, texts)
    if served is None or not batch.fresh:
        return vectors, None
    fresh = [texts[i] for i in batch.fresh]
    return vectors, await _ENCODE_THREADS.run(served.encoder.encode, fresh)


# Encoded pages that may wait for their write (256 texts and vectors each: little memory).
WRITES_AHEAD = 3


@activity.defn
async def embed_pending(req: EmbedInput) -> EmbedResult:
    """Embed resources whose embedding text changed; remove unpublished ones. Idempotent:
    point ids derive from the resource key, and unchanged text is skipped by checksum.

    A three-stage pipeline, so the encoder is never waiting: while page k is encoded (in a
    thread), page k+1 is read from Postgres and its documents built, and earlier pages are
    written to the vector store and `embedding_state`. Writes stay in page order, one at a time;
    up to WRITES_AHEAD encoded pages may wait for theirs, so a slow write (the store's writer
    busy building another pass's HNSW graph) does not stall the encoder."""
    stores = await get_stores()
    encoder = stores.encoder
    await stores.vector.ensure_collection(encoder.dim, encoder.name)
    # A retried attempt resumes after the last batch it heartbeat, with the counts so far.
    resume = resumed()
    after_id = resume.after_id or 0
    result = EmbedResult.model_validate(resume.counts)
    source = _etl_source(req.source)
    served = await served_elsewhere(stores)
    seconds: dict[str, float] = defaultdict(float)  # per step, summed over pages (they overlap)
    started = time.perf_counter()
    batch = await _read_embed_batch(stores, source, after_id, req.batch_size, seconds)
    inflight: dict[str, asyncio.Future] = {}
    writes: deque[asyncio.Future] = deque()  # in page order, each starts when the one before ends

    async def write_after(previous: asyncio.Future | None, page: _EmbedBatch, vectors, served_v):
        if previous is not None:
            await previous  # a failed write fails every later one: nothing is written out of order
        await _write_embed_batch(stores, page, vectors, result, seconds, served, served_v)

    # the store's deferred optimize waits for the pass to end
    with stores.vector.writing():
        try:
            while batch is not None:
                inflight["encode"] = asyncio.ensure_future(
                    _encode_batch(encoder, batch, served, seconds)
                )
                inflight["read"] = asyncio.ensure_future(
                    _read_embed_batch(stores, source, batch.last_id, req.batch_size, seconds)
                )
                vectors, served_vectors = await inflight["encode"]
                while len(writes) >= WRITES_AHEAD:
                    await writes.popleft()
                writes.append(
                    asyncio.ensure_future(
                        write_after(writes[-1] if writes else None, batch, vectors, served_vectors)
                    )
                )
                after_id = batch.last_id
                batch = await inflight["read"]
            while writes:
                await writes.popleft()
        finally:
            # cancelled or failed: nothing of this attempt keeps running behind the retry
            for task in [*inflight.values(), *writes]:
                task.cancel()
    seconds["pages"] = time.perf_counter() - started
    # The pass ends with its points written: searchable now (brute force over the unindexed
    # segments), indexed by the store in the background once the writes are quiet, as a Qdrant
    # server does; the next pass does not wait for it either (its writes do, in the store).
    # Asked every pass: a shard loaded after a crash may hold writes never optimized.
    await stores.vector.optimize_soon()
    log.info(
        "embed.done",
        source=req.source,
        embedded=result.embedded,
        removed=result.removed,
        seconds={k: round(v, 2) for k, v in seconds.items()},
    )
    return result


# -- content files ------------------------------------------------------------------------------
#
# Content-file rows are written by the archive pipeline. A pass reads the rows changed since the
# last pass (content_file.updated_on, or its resource's — an unpublished resource hides its
# files unless it is in test mode), indexes/embeds published ones and removes the rest. The high-water mark lives in the
# blob store; a pass re-reads a minute of overlap, so a row committed late is not missed, and
# re-processing a row is an idempotent overwrite (ids and point keys derive from natural keys).

CONTENT_OVERLAP = timedelta(minutes=1)  # the interval below: a pass re-reads this much
_CONTENT_ROWS = """
SELECT cf.id, cf.key, cf.resource_id, run.run_id AS run_id, cf.title, cf.url, cf.file_type,
       cf.content_type, cf.file_extension, cf.content, cf.checksum, cf.data,
       -- MIT Learn indexes the files of test-mode courses too (Canvas placeholders, AI ingest)
       (cf.published AND (lr.published OR lr.test_mode)
        AND (coalesce(run.published, true) OR lr.test_mode)) AS visible,
       lr.platform, lr.offered_by, lr.readable_id AS resource_readable_id,
       lr.title AS resource_title, lr.resource_type,
       lr.data->'topics' AS resource_topics, lr.data->'ocw_topics' AS resource_ocw_topics,
       greatest(cf.updated_on, lr.updated_on, run.updated_on) AS changed_on
FROM content_file cf
JOIN learning_resource lr ON lr.id = cf.resource_id
LEFT JOIN learning_resource_run run ON run.id = cf.run_id
WHERE ($1::timestamptz IS NULL
       OR cf.updated_on > $1::timestamptz - interval '1 minute'
       OR lr.updated_on > $1::timestamptz - interval '1 minute'
       OR run.updated_on > $1::timestamptz - interval '1 minute')
  AND ($2::text IS NULL OR lr.etl_source = $2
       -- marketing pages belong to other sources' resources: their run's pass selects by type
       OR ($2 = 'marketing_pages' AND cf.file_type = 'marketing_page'))
  AND cf.id > $3
ORDER BY cf.id LIMIT $4
"""


async def _content_pass(name: str, source: str | None, batch_size: int, handle) -> None:
    """Page through content files changed since the `name` watermark, calling `handle(rows)`."""
    stores = await get_stores()
    marks = await read_watermarks(stores.blobs)
    since = datetime.fromisoformat(marks[name]) if marks.get(name) else None
    async with stores.pool.acquire() as conn:
        started = await conn.fetchval("SELECT now()")
    # None: the attempt had finished paging and was optimising; paging again is idempotent
    after_id = resumed().after_id or 0
    while True:
        async with stores.pool.acquire() as conn:
            rows = await conn.fetch(_CONTENT_ROWS, since, source, after_id, batch_size)
        if not rows:
            break
        await handle([dict(r) for r in rows])
        after_id = rows[-1]["id"]
        heartbeat(Progress(stage=name, after_id=after_id))
    # A per-source pass must not advance the all-sources mark past files of other sources.
    if source is None:
        await write_watermark(stores.blobs, name, started.isoformat())


def content_index_document(row: dict) -> dict:
    """A content-file row as either engine's content index takes it: the stored document plus
    index-only inputs under `_` keys (the full text, the parent's type for OpenSearch's join,
    MIT Learn's content_feature_type from the file's tags)."""
    data = row.get("data") or {}
    return {
        **to_content_file_document(row),
        "_content": row.get("content") or "",
        "_parent_resource_type": row.get("resource_type") or "course",
        "_content_feature_type": list(data.get("content_tags") or []),
    }


async def index_content_rows(index, rows: list[dict]) -> tuple[int, int]:
    """Index the visible rows, remove the others; (indexed, deindexed)."""
    docs, gone = [], []
    for row in rows:
        if row["visible"]:
            docs.append(content_index_document(row))
        else:
            gone.append(row["id"])
    await index.upsert(docs)
    await index.delete(gone)
    return len(docs), len(gone)


@activity.defn
async def index_content_files(req: IndexInput) -> IndexResult:
    """Index published content files into the content-file keyword index (tantivy, or OpenSearch
    child documents when OpenSearch is the keyword backend), remove the rest."""
    stores = await get_stores()
    index = content_stores(stores.settings).keyword
    result = IndexResult()

    async def handle(rows: list[dict]) -> None:
        indexed, deindexed = await index_content_rows(index, rows)
        result.indexed += indexed
        result.deindexed += deindexed

    # A new index generation drops the watermark: the pass starts from the first file.
    source = None if await new_generation(stores.blobs, "indexed", index) else req.source
    await _content_pass("indexed", _etl_source(source), min(req.batch_size, 200), handle)
    log.info("index_content.done", indexed=result.indexed, deindexed=result.deindexed)
    return result


async def index_in_line(stores, source: str) -> bool:
    """Whether the source's index pass (`index_pending` + `index_content_files` for it) would
    find nothing to do: neither index is a new generation, no resource of the source differs
    from what the keyword index holds, no content file of it changed since the content
    watermark. Read-only: a run that changed nothing skips its index child on this."""
    marks = await read_watermarks(stores.blobs)
    content_index = content_stores(stores.settings).keyword
    for name, index in (("keyword", stores.keyword), ("indexed", content_index)):
        generation = getattr(index, "generation", None)
        if generation is not None and marks.get(f"generation:{name}") != generation:
            return False
    etl_source = _etl_source(source)
    if await stores.catalog.pending_index(etl_source, 1):
        return False
    since = datetime.fromisoformat(marks["indexed"]) if marks.get("indexed") else None
    async with stores.pool.acquire() as conn:
        changed = await conn.fetch(_CONTENT_ROWS, since, etl_source, 0, 1)
    return not changed


def _chunk_points(rows: list[dict]) -> tuple[list[VectorPoint], list[str]]:
    """The visible rows' 512-word chunks as points (vectors still to set), and their texts."""
    points: list[VectorPoint] = []
    texts: list[str] = []
    for row in rows:
        if not row["visible"]:
            continue
        doc = to_content_file_document(row)
        filters = content_filter_values(doc)
        for n, chunk in enumerate(chunk_words(row["content"] or "")):
            chunk_doc = {**doc, "chunk_number": n, "chunk_content": chunk}
            payload = payload_for(chunk_doc, filters, id_field="content_file_id")
            payload["resource_id"] = doc["resource_id"]
            payload["chunk_number"] = n
            points.append(VectorPoint(content_chunk_key(doc, n), None, payload))  # type: ignore[arg-type]
            texts.append(chunk)
    return points, texts


async def _embed_chunks(store, load: Callable[[], Encoder], rows: list[dict]) -> None:
    """Replace the rows' chunks in `store` by their current ones, encoded by `load()`'s encoder
    (loaded, and encoding, in a thread); a changed file's old chunks go first, so a file that
    got shorter leaves no stale chunks behind."""
    await store.delete_where("content_file_id", [row["id"] for row in rows])
    points, texts = _chunk_points(rows)
    if not points:
        return
    encoder = await asyncio.to_thread(load)
    await store.ensure_collection(encoder.dim, encoder.name)
    for point, vec in zip(points, await _encode(encoder, texts), strict=True):
        point.vector = vec
    await store.upsert(points)


async def _served_since(stores, served: ServingVectors | None) -> datetime | None:
    """During a catch-up, since when the served encoder's content collection lacks changes:
    its own last pass's mark, less the passes' overlap (None: nothing to keep fresh, or no mark
    to tell)."""
    if served is None:
        return None
    mark = (await read_watermarks(stores.blobs)).get(embedded_mark(served.encoder_id))
    return datetime.fromisoformat(mark) - CONTENT_OVERLAP if mark else None


@activity.defn
async def embed_content_files(req: EmbedInput) -> EmbedResult:
    """Embed content files as 512-word chunks (MIT Learn's chunk keys), remove hidden ones.
    During a catch-up the served encoder's collection takes the files changed since its last
    pass (embedded by it) and the removals too, so the served answers stay fresh."""
    stores = await get_stores()
    encoder = stores.encoder
    vector = content_stores(stores.settings).vector
    await vector.ensure_collection(encoder.dim, encoder.name)
    result = EmbedResult()
    served = await served_elsewhere(stores)
    since = await _served_since(stores, served)

    async def handle(rows: list[dict]) -> None:
        await _embed_chunks(vector, lambda: encoder, rows)
        if served is not None:
            stale = [
                row
                for row in rows
                if not row["visible"] or (since is not None and row["changed_on"] > since)
            ]
            await _embed_chunks(served.content_files, served.load, stale)
        visible = sum(1 for row in rows if row["visible"])
        result.embedded += visible
        result.removed += len(rows) - visible

    # One watermark per encoder: a new encoder's pass starts from the first file.
    mark = embedded_mark(stores.encoder_id)
    with vector.writing():
        await _content_pass(mark, _etl_source(req.source), min(req.batch_size, 64), handle)
    await vector.optimize_soon()  # in the background, as embed_pending's
    log.info("embed_content.done", embedded=result.embedded, removed=result.removed)
    return result


ACTIVITIES_BY_QUEUE = {
    DEFAULT_QUEUE: [index_pending, index_content_files],
    EMBEDDINGS_QUEUE: [embed_pending, embed_content_files],
}

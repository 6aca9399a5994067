"""The vector store interface and its two Qdrant implementations.

- `QdrantClientVectorStore` (qdrant-client): a Qdrant server (`QDRANT_URL`), or qdrant-client's
  local mode (pure Python; filters are evaluated in Python, ~200 ms at 20k points).
- `EdgeVectorStore` (qdrant-edge-py): the real Qdrant engine in process (HNSW, payload indexes,
  persistence) — the embedded default (`QDRANT_EMBEDDED=edge`), ~1 ms filtered queries.

`QdrantVectorStore(...)` picks one: a URL always means qdrant-client; embedded means edge unless
`QDRANT_EMBEDDED=client`. Point ids are uuid5 of the point key (resource key, or content chunk
key), so re-embedding is an idempotent overwrite. Payloads carry the filter values as `f_<name>`
keyword fields, each with a payload index, plus the document served back as the hit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import shutil
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from learnflow import fastjson
from learnflow.search_doc import CASE_SENSITIVE_FILTERS, FILTER_FIELDS
from learnflow.stores.edge_optimize import (
    DeferredOptimize,
    OptimizeChild,
    ShardSwap,
    optimize_copy,
    reads_shard,
    recover,
    swap_in,
)
from learnflow.stores.encoders import check_recorded
from learnflow.stores.vector_filters import id_filter, payload_filter

# HNSW beam width at query time: recall over speed (edge's default ef gave recall 0.5 on random
# 256-d data; 128 costs well under a millisecond more at 100k points).
HNSW_EF = 128


def point_id(key: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, key))


@dataclass
class VectorPoint:
    key: str
    vector: np.ndarray
    payload: dict[str, Any]


@dataclass
class VectorHit:
    id: int
    score: float
    document: dict[str, Any]
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass
class VectorResults:
    total: int
    hits: list[VectorHit]
    facets: dict[str, list[tuple[str, int]]] = field(default_factory=dict)


class VectorStore(Protocol):
    collection: str

    async def ensure_collection(self, dim: int, encoder: str = "") -> None: ...
    async def upsert(self, points: list[VectorPoint]) -> None: ...
    async def delete(self, keys: list[str]) -> None: ...
    async def delete_where(self, field_name: str, values: list[str | int]) -> None: ...
    async def search(
        self,
        vector: np.ndarray,
        filters: dict[str, list[str]],
        limit: int,
        offset: int = 0,
        facets: list[str] | None = None,
        documents: int | None = None,
    ) -> VectorResults: ...
    async def documents(self, ids: list[int]) -> dict[int, dict[str, Any]]: ...
    async def optimize(self) -> None: ...
    async def optimize_soon(self) -> None: ...
    def writing(self) -> contextlib.AbstractContextManager[None]: ...
    async def drop(self) -> None: ...
    async def count(self) -> int: ...
    async def healthy(self) -> bool: ...
    async def close(self) -> None: ...


def payload_for(
    document: dict[str, Any], filters: dict[str, list[str]], id_field: str = "resource_id"
) -> dict[str, Any]:
    """The point payload: filter values as `f_<name>`, the id, and the document served back, as
    one JSON string: a nested object is converted and stored field by field (~0.4 ms of CPU a
    point in an embed pass, ~0.1 ms as a string), and nothing filters on the document."""
    payload: dict[str, Any] = {f"f_{k}": v for k, v in filters.items()}
    payload["doc"] = document_text(document)
    payload[id_field] = int(document["id"])
    return payload


def document_text(document: dict[str, Any]) -> str:
    """`json.dumps(document, separators=(",", ":"))`, the same text, mostly by orjson (~8 µs
    against ~18 for a resource's document: `fastjson.dumps`). Non-finite floats (which orjson
    would write as null) are looked for at the document's top level only (a resource's
    `completeness`): below it, documents hold none."""
    finite = all(math.isfinite(v) for v in document.values() if isinstance(v, float))
    return fastjson.dumps(document, finite=finite).decode()


def stored_document(payload: dict[str, Any]) -> dict[str, Any]:
    """A payload's document: JSON text, or an object (points written before); {} if not asked."""
    doc = payload.get("doc", {})
    return json.loads(doc) if isinstance(doc, str) else doc


def _hits(points: Any, id_field: str) -> list[VectorHit]:
    return [
        VectorHit(
            id=int(p.payload[id_field]),
            score=float(p.score),
            document=stored_document(p.payload),
            payload=p.payload,
        )
        for p in points
    ]


# Payload fields with an index besides the f_* filters (integers).
INT_PAYLOAD_INDEXES = ("resource_id", "content_file_id", "chunk_number")


class QdrantClientVectorStore:
    """qdrant-client: a Qdrant server by URL, or local mode (path or memory)."""

    def __init__(
        self,
        *,
        url: str = "",
        path: str = "",
        collection: str = "resource_embeddings.resources",
        filter_fields: tuple[str, ...] = tuple(FILTER_FIELDS),
        case_sensitive: frozenset[str] = frozenset(CASE_SENSITIVE_FILTERS),
        id_field: str = "resource_id",
        timeout: int = 10,
    ):
        from qdrant_client import QdrantClient

        if url:
            self.client = QdrantClient(url=url, timeout=timeout)
        elif path:
            self.client = QdrantClient(path=path)
        else:
            self.client = QdrantClient(location=":memory:")
        self.collection = collection
        self.filter_fields = filter_fields
        self.case_sensitive = set(case_sensitive)
        self.id_field = id_field
        self._ready = False
        self._lock = asyncio.Lock()

    async def ensure_collection(self, dim: int, encoder: str = "") -> None:
        if self._ready:
            return
        async with self._lock:
            if self._ready:
                return
            await asyncio.to_thread(self._ensure_sync, dim, encoder)
            self._ready = True

    def recorded_encoder(self) -> dict:
        """{encoder, dim} as the collection records them ({} when it does not exist)."""
        if not self.client.collection_exists(self.collection):
            return {}
        config = self.client.get_collection(self.collection).config
        return {**(config.metadata or {}), "dim": config.params.vectors.size}

    def _ensure_sync(self, dim: int, encoder: str) -> None:
        from qdrant_client import models as qm

        if self.client.collection_exists(self.collection):
            check_recorded(self.collection, self.recorded_encoder(), dim, encoder)
        else:
            self.client.create_collection(
                self.collection,
                vectors_config=qm.VectorParams(size=dim, distance=qm.Distance.COSINE),
                metadata={"encoder": encoder, "dim": dim},
            )
            for name in self.filter_fields:
                self.client.create_payload_index(
                    self.collection, f"f_{name}", qm.PayloadSchemaType.KEYWORD
                )
            for name in INT_PAYLOAD_INDEXES:
                self.client.create_payload_index(
                    self.collection, name, qm.PayloadSchemaType.INTEGER
                )

    async def upsert(self, points: list[VectorPoint]) -> None:
        if not points:
            return
        from qdrant_client import models as qm

        structs = [
            qm.PointStruct(id=point_id(p.key), vector=p.vector.tolist(), payload=p.payload)
            for p in points
        ]
        await asyncio.to_thread(self.client.upsert, self.collection, structs, wait=True)

    async def delete(self, keys: list[str]) -> None:
        if not keys or not await self._exists():
            return
        from qdrant_client import models as qm

        await asyncio.to_thread(
            self.client.delete,
            self.collection,
            qm.PointIdsList(points=[point_id(k) for k in keys]),
        )

    async def delete_where(self, field_name: str, values: list[str | int]) -> None:
        if not values or not await self._exists():
            return
        from qdrant_client import models as qm

        selector = qm.FilterSelector(
            filter=qm.Filter(
                must=[qm.FieldCondition(key=field_name, match=qm.MatchAny(any=list(values)))]
            )
        )
        await asyncio.to_thread(self.client.delete, self.collection, selector)

    async def _exists(self) -> bool:
        return await asyncio.to_thread(self.client.collection_exists, self.collection)

    def _filter(self, filters: dict[str, list[str]], skip: str | None = None):
        from qdrant_client import models as qm

        return payload_filter(qm, filters, self.case_sensitive, skip)

    def _search_sync(
        self,
        vector: np.ndarray,
        filters: dict[str, list[str]],
        limit: int,
        offset: int,
        facets: list[str],
    ) -> VectorResults:
        from qdrant_client import models as qm

        if not self.client.collection_exists(self.collection):
            return VectorResults(total=0, hits=[])
        flt = self._filter(filters)
        res = self.client.query_points(
            self.collection,
            query=np.asarray(vector, dtype=np.float32).tolist(),
            query_filter=flt,
            limit=limit,
            offset=offset,
            with_payload=True,
            search_params=qm.SearchParams(hnsw_ef=HNSW_EF),
        )
        total = self.client.count(self.collection, count_filter=flt, exact=True).count
        hits = _hits(res.points, self.id_field)
        out = {}
        for name in facets:
            resp = self.client.facet(
                self.collection,
                key=f"f_{name}",
                facet_filter=self._filter(filters, skip=name),
                limit=10000,
                exact=True,
            )
            out[name] = [(str(h.value), int(h.count)) for h in resp.hits]
        return VectorResults(total=total, hits=hits, facets=out)

    async def search(
        self,
        vector: np.ndarray,
        filters: dict[str, list[str]],
        limit: int,
        offset: int = 0,
        facets: list[str] | None = None,
        documents: int | None = None,
    ) -> VectorResults:
        """`documents` is a hint (see `EdgeVectorStore.search`): every hit carries its own here."""
        return await asyncio.to_thread(
            self._search_sync, vector, filters, limit, offset, list(facets or [])
        )

    async def documents(self, ids: list[int]) -> dict[int, dict[str, Any]]:
        """The documents of these ids (`id_field`), for hits searched with `documents=0`."""
        if not ids or not await self._exists():
            return {}
        from qdrant_client import models as qm

        flt = id_filter(qm, self.id_field, ids)
        scroll = partial(self.client.scroll, scroll_filter=flt, limit=len(ids), with_payload=True)
        records, _next = await asyncio.to_thread(scroll, self.collection)
        return {int(r.payload[self.id_field]): stored_document(r.payload) for r in records}

    async def optimize(self) -> None:
        return None  # the server optimises on its own; local mode has nothing to build

    async def optimize_soon(self) -> None:
        return None

    def writing(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    async def drop(self) -> None:
        """Delete the collection (a retired encoder's); idempotent."""
        if await self._exists():
            await asyncio.to_thread(self.client.delete_collection, self.collection)
        self._ready = False

    async def count(self) -> int:
        if not await self._exists():
            return 0
        return (await asyncio.to_thread(self.client.count, self.collection, exact=True)).count

    async def healthy(self) -> bool:
        try:
            await asyncio.to_thread(self.client.get_collections)
            return True
        except Exception:
            return False

    async def close(self) -> None:
        await asyncio.to_thread(self.client.close)


EDGE_MAX_SEGMENT_KB = 60_000
# `optimize_soon` waits for every pass to end and the writes to be this quiet (a pass that follows
# another, as the all-sources pass follows the per-source ones, starts within it).
OPTIMIZE_QUIET_SECONDS = 1.0


class EdgeVectorStore:
    """qdrant-edge-py: one EdgeShard per collection under `<path>/edge/<collection>`."""

    def __init__(
        self,
        *,
        path: str = "",
        collection: str = "resource_embeddings.resources",
        filter_fields: tuple[str, ...] = tuple(FILTER_FIELDS),
        case_sensitive: frozenset[str] = frozenset(CASE_SENSITIVE_FILTERS),
        id_field: str = "resource_id",
        optimize_quiet: float = OPTIMIZE_QUIET_SECONDS,
    ):
        import qdrant_edge

        self._q = qdrant_edge
        self._tmp = None if path else tempfile.mkdtemp(prefix="learnflow-qdrant-edge-")
        self.path = Path(path or self._tmp) / "edge" / collection
        self.collection = collection
        self.filter_fields = filter_fields
        self.case_sensitive = set(case_sensitive)
        self.id_field = id_field
        self._write_lock = threading.Lock()
        self._swap = ShardSwap()
        # Written since the last optimize (unknown for a shard found on disk: optimize once).
        # An optimize with nothing to build still closed the shard, held reads back and paid a
        # child process (~0.5 s).
        self._written = True
        self._deferred = DeferredOptimize(self._optimize_sync, optimize_quiet)
        self.shard = None
        recover(self.path)  # an optimize a crash interrupted
        if (self.path / "segments").exists() or any(self.path.glob("*")):
            self.shard = qdrant_edge.EdgeShard.load(str(self.path))

    async def ensure_collection(self, dim: int, encoder: str = "") -> None:
        if self.shard is None:
            await asyncio.to_thread(self._create_sync, dim, encoder)
        else:
            check_recorded(self.collection, self.recorded_encoder(), dim, encoder)

    def recorded_encoder(self) -> dict:
        """{encoder, dim} from encoder.json beside the shard ({} for a shard made before it)."""
        path = self.path.parent / f"{self.path.name}.encoder.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def _create_sync(self, dim: int, encoder: str = "") -> None:
        q = self._q
        with self._write_lock:
            if self.shard is not None:
                return
            # Beside the shard directory, not in it (the shard owns its directory's contents).
            record = self.path.parent / f"{self.path.name}.encoder.json"
            self.path.parent.mkdir(parents=True, exist_ok=True)
            record.write_text(json.dumps({"encoder": encoder, "dim": dim}))
            self.path.mkdir(parents=True, exist_ok=True)
            config = q.EdgeConfig(
                vectors=q.EdgeVectorParams(size=dim, distance=q.Distance.Cosine),
                # Capped segments: each embedding pass indexes its own new segment instead of
                # merging into one ever larger one and rebuilding its whole HNSW graph. Measured
                # (5 passes of 20k points): optimise 148 s instead of 519 s, growing linearly
                # instead of quadratically, for ~1.2x the search time over 6 segments, not 2.
                optimizers=q.EdgeOptimizersConfig(max_segment_size=EDGE_MAX_SEGMENT_KB),
            )
            shard = q.EdgeShard.create(str(self.path), config)
            for name in self.filter_fields:
                shard.update(
                    q.UpdateOperation.create_field_index(f"f_{name}", q.PayloadSchemaType.Keyword)
                )
            for name in INT_PAYLOAD_INDEXES:
                shard.update(
                    q.UpdateOperation.create_field_index(name, q.PayloadSchemaType.Integer)
                )
            self.shard = shard

    def _update(self, op) -> None:
        with self._write_lock:
            self._written = True
            self._deferred.wrote()
            self.shard.update(op)

    async def upsert(self, points: list[VectorPoint]) -> None:
        if not points:
            return
        if self.shard is None:
            await self.ensure_collection(len(points[0].vector))
        q = self._q

        def run() -> None:  # payloads cost ~0.3 ms a point to convert: off the event loop
            vectors = np.asarray([p.vector for p in points], dtype=np.float32).tolist()
            batch = [q.Point(id=point_id(p.key), vector=v, payload=p.payload)
                     for p, v in zip(points, vectors, strict=True)]  # fmt: skip
            self._update(q.UpdateOperation.upsert_points(batch))

        await asyncio.to_thread(run)

    async def delete(self, keys: list[str]) -> None:
        if not keys or self.shard is None:
            return
        op = self._q.UpdateOperation.delete_points([point_id(k) for k in keys])
        await asyncio.to_thread(self._update, op)

    async def delete_where(self, field_name: str, values: list[str | int]) -> None:
        if not values or self.shard is None:
            return
        q = self._q
        flt = q.Filter(must=[q.FieldCondition(key=field_name, match=q.MatchAny(any=list(values)))])
        await asyncio.to_thread(self._update, q.UpdateOperation.delete_points_by_filter(flt))

    def _filter(self, filters: dict[str, list[str]], skip: str | None = None):
        return payload_filter(self._q, filters, self.case_sensitive, skip)

    _documents_sync = reads_shard(lambda self, ids: self._scroll_documents(ids))  # not nested

    def _scroll_documents(self, ids: list[int]) -> dict[int, dict[str, Any]]:
        flt = id_filter(self._q, self.id_field, ids)
        request = self._q.ScrollRequest(limit=len(ids), filter=flt, with_payload=True)
        records, _next = self.shard.scroll(request)
        return {int(r.payload[self.id_field]): stored_document(r.payload) for r in records}

    @reads_shard
    def search_sync(
        self,
        vector: np.ndarray,
        filters: dict[str, list[str]],
        limit: int,
        offset: int = 0,
        facets: list[str] | None = None,
        documents: int | None = None,
    ) -> VectorResults:
        q = self._q
        if self.shard is None:
            return VectorResults(total=0, hits=[])
        flt, ids = self._filter(filters), [self.id_field]
        points = self.shard.query(
            q.QueryRequest(
                limit=limit,
                offset=offset or None,
                query=q.Query.Nearest(np.asarray(vector, dtype=np.float32).tolist()),
                filter=flt,
                with_payload=True if documents is None else q.PayloadSelector.Include(ids),
                params=q.SearchParams(hnsw_ef=HNSW_EF),
            )
        )
        # Unfiltered, every point matches: the shard's point count is exact and free, where an
        # exact count walks every point (6 ms of a 9 ms answer at 100k).
        if flt is None:
            total = self.shard.info().points_count
        else:
            total = self.shard.count(q.CountRequest(exact=True, filter=flt))
        hits = _hits(points, self.id_field)
        if documents is not None:
            # Searched with the id alone: turning a payload into Python objects is most of a
            # search's cost (~0.1 ms a point at 100k, against ~1 ms of HNSW search), and vector
            # mode asks for its page plus slack for ties. The first `documents` hits (and those
            # tied with the last of them, which a page breaking ties by id may take) get theirs.
            cut = round(hits[documents - 1].score, 6) if 0 < documents < len(hits) else None
            needed = [h.id for i, h in enumerate(hits) if i < documents or round(h.score, 6) == cut]
            docs = self._scroll_documents(needed) if needed else {}
            for h in hits:
                h.document = docs.get(h.id, h.document)
        out = {}
        for name in facets or []:
            resp = self.shard.facet(
                q.FacetRequest(
                    key=f"f_{name}", limit=10000, exact=True, filter=self._filter(filters, name)
                )
            )
            out[name] = [(str(h.value), int(h.count)) for h in resp.hits]
        return VectorResults(total=total, hits=hits, facets=out)

    async def search(
        self,
        vector: np.ndarray,
        filters: dict[str, list[str]],
        limit: int,
        offset: int = 0,
        facets: list[str] | None = None,
        documents: int | None = None,
    ) -> VectorResults:
        """`documents`: only that many first hits (and ties) get theirs; None: every hit."""
        return await asyncio.to_thread(
            self.search_sync, vector, filters, limit, offset, facets, documents
        )

    async def documents(self, ids: list[int]) -> dict[int, dict[str, Any]]:
        """The documents of these ids (`id_field`), for hits searched with `documents=0`."""
        if not ids or self.shard is None:
            return {}
        return await asyncio.to_thread(self._documents_sync, ids)

    def _optimize_sync(self, child: OptimizeChild | None = None) -> None:
        """Build the HNSW graphs, merge segments: in a child process on a copy of the shard
        (see edge_optimize). Writes wait meanwhile; reads go on, held back only by the swap."""
        with self._write_lock:
            if self.shard is None or not self._written:
                return
            self.shard.flush()
            optimize_copy(self.path, child or OptimizeChild())
            with self._swap.closed():  # reads wait for the swap only
                self.shard.close()
                try:
                    swap_in(self.path)
                finally:
                    recover(self.path, tidy=False)
                    self.shard = self._q.EdgeShard.load(str(self.path))
            self._written = False
            recover(self.path)  # the retired shard's deletion, reads answered meanwhile

    async def optimize(self) -> None:
        """Optimize what was written since the last optimize, now, and return when done."""
        if self.shard is not None:
            await asyncio.to_thread(self._optimize_sync)

    async def optimize_soon(self) -> None:
        """Optimize in the background once the writes are quiet (`OPTIMIZE_QUIET_SECONDS`);
        return at once. Until then searches go over the unindexed segments by brute force."""
        if self.shard is not None and self._written:
            self._deferred.request()

    def writing(self) -> contextlib.AbstractContextManager[None]:
        """Around a pass's writes: a deferred optimize waits for the pass to end."""
        return self._deferred.writing()

    def optimizing(self) -> bool:
        """A deferred optimize waits for quiet writes or runs."""
        return self._deferred.pending()

    async def drop(self) -> None:
        """Delete the shard and its encoder record (a retired encoder's); idempotent."""

        def run() -> None:
            self._deferred.cancel()
            with self._write_lock:
                if self.shard is not None:
                    self.shard.close()
                    self.shard = None
                shutil.rmtree(self.path, ignore_errors=True)
                (self.path.parent / f"{self.path.name}.encoder.json").unlink(missing_ok=True)

        await asyncio.to_thread(run)

    _count = reads_shard(lambda self, exact: self.shard.count(self._q.CountRequest(exact=exact)))

    async def count(self) -> int:  # in a thread: during an optimize it waits for the shard
        return 0 if self.shard is None else await asyncio.to_thread(self._count, True)

    async def healthy(self) -> bool:
        if self.shard is None or self._swap.is_closed():
            return True  # nothing written yet, or being optimized: healthy either way
        try:
            await asyncio.to_thread(self._count, False)
            return True
        except Exception:
            return False

    async def close(self) -> None:
        # a deferred optimize's child is killed, its copy dropped: the shard stays as written
        await asyncio.to_thread(self._deferred.cancel)
        with self._write_lock:
            if self.shard is not None:
                self.shard.flush()
                self.shard.close()
                self.shard = None
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)


def QdrantVectorStore(
    *,
    url: str = "",
    path: str = "",
    collection: str = "resource_embeddings.resources",
    embedded: str | None = None,
    **kwargs: Any,
) -> VectorStore:
    """The configured vector store: qdrant-client for a server URL, else the embedded engine
    (`embedded` or settings' QDRANT_EMBEDDED: edge (default) | client)."""
    if url:
        return QdrantClientVectorStore(url=url, collection=collection, **kwargs)
    if embedded is None:
        from learnflow.settings import get_settings

        embedded = get_settings().qdrant_embedded
    if embedded == "client":
        return QdrantClientVectorStore(path=path, collection=collection, **kwargs)
    if embedded == "edge":
        return EdgeVectorStore(path=path, collection=collection, **kwargs)
    raise ValueError(f"unknown QDRANT_EMBEDDED {embedded!r} (edge | client)")

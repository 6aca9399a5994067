"""The vector store interface and its Qdrant implementation (qdrant-client).

One code path for the embedded store (qdrant-client local mode, in memory or a directory) and a
Qdrant server (`QDRANT_URL`). Point ids are uuid5 of the resource key, so re-embedding is an
idempotent overwrite. Payloads carry the filter values (`search_doc.filter_values`) with a payload
index for each, plus the search document served back as the hit.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from learnflow.search_doc import CASE_SENSITIVE_FILTERS, FILTER_FIELDS


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


@dataclass
class VectorResults:
    total: int
    hits: list[VectorHit]
    facets: dict[str, list[tuple[str, int]]] = field(default_factory=dict)


class VectorStore(Protocol):
    async def ensure_collection(self, dim: int) -> None: ...
    async def upsert(self, points: list[VectorPoint]) -> None: ...
    async def delete(self, keys: list[str]) -> None: ...
    async def search(
        self, vector: np.ndarray, filters: dict[str, list[str]], limit: int, offset: int = 0
    ) -> VectorResults: ...
    async def count(self) -> int: ...
    async def healthy(self) -> bool: ...
    async def close(self) -> None: ...


class QdrantVectorStore:
    def __init__(
        self, *, url: str = "", path: str = "", collection: str = "resource_embeddings.resources"
    ):
        from qdrant_client import QdrantClient

        if url:
            self.client = QdrantClient(url=url, timeout=10)
        elif path:
            self.client = QdrantClient(path=path)
        else:
            self.client = QdrantClient(location=":memory:")
        self.collection = collection
        self._ready = False
        self._lock = asyncio.Lock()

    async def ensure_collection(self, dim: int) -> None:
        if self._ready:
            return
        async with self._lock:
            if self._ready:
                return
            await asyncio.to_thread(self._ensure_sync, dim)
            self._ready = True

    def _ensure_sync(self, dim: int) -> None:
        from qdrant_client import models as qm

        if not self.client.collection_exists(self.collection):
            self.client.create_collection(
                self.collection,
                vectors_config=qm.VectorParams(size=dim, distance=qm.Distance.COSINE),
            )
            for name in FILTER_FIELDS:
                self.client.create_payload_index(
                    self.collection, f"f_{name}", qm.PayloadSchemaType.KEYWORD
                )

    @staticmethod
    def payload_for(document: dict[str, Any], filters: dict[str, list[str]]) -> dict[str, Any]:
        payload = {f"f_{k}": v for k, v in filters.items()}
        payload["doc"] = document
        payload["resource_id"] = int(document["id"])
        return payload

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
        if not keys:
            return
        from qdrant_client import models as qm

        await asyncio.to_thread(
            self.client.delete,
            self.collection,
            qm.PointIdsList(points=[point_id(k) for k in keys]),
        )

    def _filter(self, filters: dict[str, list[str]]):
        from qdrant_client import models as qm

        must = []
        for name, values in filters.items():
            if not values:
                continue
            norm = values if name in CASE_SENSITIVE_FILTERS else [v.lower() for v in values]
            must.append(qm.FieldCondition(key=f"f_{name}", match=qm.MatchAny(any=norm)))
        return qm.Filter(must=must) if must else None

    def _search_sync(
        self, vector: np.ndarray, filters: dict[str, list[str]], limit: int, offset: int
    ) -> VectorResults:
        flt = self._filter(filters)
        res = self.client.query_points(
            self.collection,
            query=vector.tolist(),
            query_filter=flt,
            limit=limit,
            offset=offset,
            with_payload=True,
        )
        total = self.client.count(self.collection, count_filter=flt, exact=True).count
        hits = [
            VectorHit(
                id=int(p.payload["resource_id"]), score=float(p.score), document=p.payload["doc"]
            )
            for p in res.points
        ]
        return VectorResults(total=total, hits=hits)

    async def search(
        self, vector: np.ndarray, filters: dict[str, list[str]], limit: int, offset: int = 0
    ) -> VectorResults:
        return await asyncio.to_thread(self._search_sync, vector, filters, limit, offset)

    async def count(self) -> int:
        if not await asyncio.to_thread(self.client.collection_exists, self.collection):
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

"""The OpenSearch keyword index, read side: MIT Learn's query semantics over the layout that
`opensearch_writer.OpenSearchWriter` creates and writes (one backing index per resource type behind
aliases, content files as child documents, zero-downtime reindex; reference/mit-learn.md §4).
`OpenSearchKeywordIndex` is the `KeywordIndex`; `OpenSearchContentFileIndex` searches the
content-file children.
"""

from __future__ import annotations

from typing import Any

import structlog
from opensearchpy import AsyncOpenSearch

from learnflow.stores.keyword import Hit, KeywordQuery, KeywordResults
from learnflow.stores.opensearch_layout import (
    CONTENT_FILE_RELATION,
    CONTENT_FILE_TYPES,
    JOIN_FIELD,
    RESOURCE_TYPES,
    content_file_document,
)
from learnflow.stores.opensearch_mapping import (
    CONTENT_FILES_ONLY,
    CONTENT_FILTERS,
    FILTERS,
    RESOURCES_ONLY,
    content_search_body,
    facet_buckets,
    search_body,
)
from learnflow.stores.opensearch_writer import (
    BulkReport,
    OpenSearchWriter,
    ReindexError,
    SwapReport,
    TypeStatus,
    bulk_chunks,
)

log = structlog.get_logger(__name__)

__all__ = [
    "BulkReport",
    "OpenSearchContentFileIndex",
    "OpenSearchKeywordIndex",
    "ReindexError",
    "SwapReport",
    "TypeStatus",
    "bulk_chunks",
    "content_file_document",
    "keyword_results",
]


def keyword_results(
    res: dict[str, Any], facet_names: list[str], specs: dict[str, Any] = FILTERS
) -> KeywordResults:
    """An OpenSearch search response as the keyword interface's results."""
    hits = [
        Hit(id=int(h["_source"]["id"]), score=float(h.get("_score") or 0.0), document=h["_source"])
        for h in res["hits"]["hits"]
    ]
    facets = {name: facet_buckets(name, res["aggregations"][name], specs) for name in facet_names}
    total = res["hits"]["total"]
    return KeywordResults(
        total=int(total["value"]),
        hits=hits,
        facets=facets,
        total_is_estimate=total.get("relation") == "gte",
    )


class OpenSearchKeywordIndex(OpenSearchWriter):
    """`KeywordIndex` on OpenSearch with MIT Learn's layout and query semantics: the searches
    here, the layout, writes and reindex in `OpenSearchWriter`."""

    engine = "opensearch"  # the name health checks report it under

    # -- reads ----------------------------------------------------------------------------

    async def search(self, query: KeywordQuery) -> KeywordResults:
        await self.ensure_indexes()
        body = search_body(
            query,
            program_alias=self.default_alias("program") if self.program_index_boost else None,
        )
        params: dict[str, Any] = {}
        if query.text.strip() and not query.sort and query.title_prefix is None:
            # MIT Learn: global term statistics for text queries (one shard per type is small)
            params["search_type"] = "dfs_query_then_fetch"
        res = await self.client.search(index=self.global_alias, body=body, params=params)
        return keyword_results(res, query.facets)

    async def get(self, ids: list[int]) -> list[dict[str, Any]]:
        """Documents by id, real-time (mget on each type's alias; ids are unique across types)."""
        if not ids:
            return []
        await self.ensure_indexes()
        docs = [
            {"_index": self.default_alias(t), "_id": str(int(i))}
            for t in RESOURCE_TYPES
            for i in ids
        ]
        res = await self.client.mget(body={"docs": docs})
        found = {int(d["_id"]): d["_source"] for d in res["docs"] if d.get("found")}
        return [found[int(i)] for i in ids if int(i) in found]

    async def count(self) -> int:
        await self.ensure_indexes()
        res = await self.client.count(index=self.global_alias, body={"query": RESOURCES_ONLY})
        return int(res["count"])

    async def count_content_files(self) -> int:
        await self.ensure_indexes()
        res = await self.client.count(
            index=self.global_alias, body={"query": {"term": {JOIN_FIELD: CONTENT_FILE_RELATION}}}
        )
        return int(res["count"])

    async def healthy(self) -> bool:
        try:
            health = await self.client.cluster.health()
        except Exception:
            return False
        return health.get("status") in ("green", "yellow")

    async def close(self) -> None:
        await self.client.close()


class OpenSearchContentFileIndex:
    """The content-file index of the OpenSearch configuration: MIT Learn's layout, where content
    files are child documents (``cf_<id>``, routed by their resource) of the course and program
    indexes, searched through those indexes' default aliases.

    Same interface and document shape as the embedded ``TantivyContentFileIndex``: documents
    from ``search_doc.to_content_file_document`` with the full text under ``_content`` and the
    parent's resource type under ``_parent_resource_type`` (index-only keys start with ``_``).
    """

    engine = "opensearch"

    def __init__(
        self,
        url: str = "",
        prefix: str = "learnflow",
        *,
        refresh: bool = False,
        resources: OpenSearchKeywordIndex | None = None,
        timeout: float = 30.0,
    ) -> None:
        # Sharing the resource index shares its client and its alias bookkeeping (a reindex's
        # dual writes reach content files too); otherwise this index owns a client of its own.
        self._owns = resources is None
        self.resources = resources or OpenSearchKeywordIndex(
            url, prefix, refresh=refresh, timeout=timeout
        )
        self.skipped = 0  # files whose resource type holds no content files (not indexed)

    @property
    def client(self) -> AsyncOpenSearch:
        return self.resources.client

    def _aliases(self) -> str:
        return ",".join(self.resources.default_alias(t) for t in CONTENT_FILE_TYPES)

    @staticmethod
    def child_document(doc: dict[str, Any]) -> dict[str, Any]:
        """The indexed child document: the stored fields plus the full text (indexed only)."""
        out = {k: v for k, v in doc.items() if not k.startswith("_")}
        out["content"] = doc.get("_content") or ""
        out["parent_resource_type"] = str(doc.get("_parent_resource_type") or "course")
        out["content_feature_type"] = list(doc.get("_content_feature_type") or [])
        out["published"] = True
        return out

    async def upsert(self, documents: list[dict[str, Any]]) -> None:
        if not documents:
            return
        children = [self.child_document(d) for d in documents]
        kept = [c for c in children if c["parent_resource_type"] in CONTENT_FILE_TYPES]
        if len(kept) < len(children):
            self.skipped += len(children) - len(kept)
            log.warning(
                "opensearch.content_files.skipped",
                count=len(children) - len(kept),
                reason="only course and program indexes hold content files (MIT Learn)",
            )
        await self.resources.upsert_content_files(kept)

    async def delete(self, ids: list[int]) -> None:
        await self.resources.delete_content_files([int(i) for i in ids])

    async def search(self, query: KeywordQuery) -> KeywordResults:
        await self.resources.ensure_indexes()
        res = await self.client.search(index=self._aliases(), body=content_search_body(query))
        return keyword_results(res, query.facets, CONTENT_FILTERS)

    async def get(self, ids: list[int]) -> list[dict[str, Any]]:
        """Content files by id (a search: children are routed by a parent the caller may not
        know, so this sees refreshed documents)."""
        if not ids:
            return []
        await self.resources.ensure_indexes()
        res = await self.client.search(
            index=self._aliases(),
            body={
                "query": {
                    "bool": {
                        "filter": [
                            CONTENT_FILES_ONLY,
                            {"ids": {"values": [f"cf_{int(i)}" for i in ids]}},
                        ]
                    }
                },
                "size": len(ids),
            },
        )
        found = {int(h["_source"]["id"]): h["_source"] for h in res["hits"]["hits"]}
        return [found[int(i)] for i in ids if int(i) in found]

    async def count(self) -> int:
        return await self.resources.count_content_files()

    async def healthy(self) -> bool:
        return await self.resources.healthy()

    async def close(self) -> None:
        if self._owns:
            await self.resources.close()

"""The catalog's bookkeeping beside its rows: which raw pages a source already loaded (so a
re-run skips them) and the change feeds the keyword index and the vector store follow (what each
holds, by content hash and by encoder). Mixed into `CatalogStore`, which owns the pool."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from learnflow.contracts import UpsertResult
from learnflow.models import Resource


@dataclass
class StoredResource:
    id: int
    data: dict[str, Any]
    content_hash: str
    published: bool
    created_on: datetime
    updated_on: datetime

    def model(self) -> Resource:
        return Resource.model_validate(self.data)


@dataclass
class RowsLoaded:
    """An upsert's counts, and the (id, content_hash) of every row it was given, as stored;
    `index_stale`: the rows (id, content_hash, created_on, published, natural key) the keyword
    index does not hold as stored."""

    result: UpsertResult
    ids: list[int] = field(default_factory=list)
    hashes: list[str] = field(default_factory=list)
    index_stale: list[asyncpg.Record] = field(default_factory=list)


class PageState:
    pool: asyncpg.Pool

    # -- raw pages already loaded (re-runs skip them) ----------------------------------------

    async def mark_page_seen(self, source: str, page_hash: str, run_id: str) -> int | None:
        """If a page with this hash was loaded and its resources still carry the hashes it gave
        them (nothing unpublished, edited or deleted them since), mark them seen by `run_id` for
        the prune and return how many; otherwise None (the page must be transformed)."""
        return (await self.mark_pages_seen(source, [page_hash], run_id)).get(page_hash)

    async def mark_pages_seen(
        self, source: str, page_hashes: Sequence[str], run_id: str
    ) -> dict[str, int]:
        """`mark_page_seen` for many pages in one transaction of three statements (a fetch's
        whole run of pages, fetch-skips-v1): {page hash: resources marked} for the pages that
        were loaded before and whose resources are intact; the others are left out. The pages'
        resource ids and hashes stay in Postgres (51 pages of 1,000 at 100k resources: ~3.5 MB
        each way, had they come here and gone back)."""
        wanted = list(dict.fromkeys(page_hashes))
        if not wanted:
            return {}
        async with self.pool.acquire() as conn, conn.transaction():
            intact = await conn.fetch(
                "SELECT ps.page_hash, cardinality(ps.resource_ids) AS n FROM etl_page_state ps"
                " WHERE ps.source = $1 AND ps.page_hash = ANY($2::text[])"
                " AND (SELECT count(*) FROM learning_resource lr"
                " JOIN unnest(ps.resource_ids, ps.resource_hashes) AS t(id, h)"
                " ON lr.id = t.id AND lr.content_hash = t.h) = cardinality(ps.resource_ids)"
                # the states read here are the ones marked below (a concurrent record waits)
                " FOR UPDATE OF ps",
                source,
                wanted,
            )
            if not intact:
                return {}
            hashes = [r["page_hash"] for r in intact]
            await conn.execute(
                "INSERT INTO etl_seen (run_id, kind, item_id)"
                " SELECT $3, 'resource', unnest(resource_ids) FROM etl_page_state"
                " WHERE source = $1 AND page_hash = ANY($2::text[]) ON CONFLICT DO NOTHING",
                source,
                hashes,
                run_id,
            )
            await conn.execute(
                "UPDATE etl_page_state SET last_run_id = $3"
                " WHERE source = $1 AND page_hash = ANY($2::text[])",
                source,
                hashes,
                run_id,
            )
        return {r["page_hash"]: r["n"] for r in intact}

    async def recorded_page_hashes(self, source: str) -> set[str]:
        """The hashes of the pages a source loaded before (whether still intact or not)."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT page_hash FROM etl_page_state WHERE source = $1", source
            )
        return {r["page_hash"] for r in rows}

    async def record_page(
        self, source: str, page_hash: str, run_id: str, loaded: RowsLoaded
    ) -> None:
        """Remember what a loaded page gave (after its upsert committed)."""
        async with self.pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO etl_page_state (source, page_hash, resource_ids, resource_hashes,"
                " last_run_id) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (source, page_hash) DO UPDATE"
                " SET resource_ids = EXCLUDED.resource_ids,"
                " resource_hashes = EXCLUDED.resource_hashes, last_run_id = EXCLUDED.last_run_id,"
                " recorded_on = now()",
                source,
                page_hash,
                loaded.ids,
                loaded.hashes,
                run_id,
            )

    async def forget_pages_except(self, source: str, run_id: str) -> int:
        """Drop the page states a complete run did not meet (pages that changed or went)."""
        async with self.pool.acquire() as conn:
            status = await conn.execute(
                "DELETE FROM etl_page_state WHERE source = $1 AND last_run_id <> $2", source, run_id
            )
        return int(status.split()[-1])


class ChangeFeeds:
    pool: asyncpg.Pool

    # -- change feeds for the index and the vector store ------------------------------------

    async def pending_index(self, etl_source: str | None, limit: int) -> list[StoredResource]:
        """Resources whose indexed state differs from the catalog (new, changed, unpublished)."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                """
                SELECT lr.id, lr.data, lr.content_hash, lr.published, lr.created_on, lr.updated_on
                FROM learning_resource lr LEFT JOIN search_index_state s ON s.resource_id = lr.id
                WHERE ($1::text IS NULL OR lr.etl_source = $1)
                  AND (s.indexed_hash IS DISTINCT FROM lr.content_hash)
                  AND (lr.published OR s.resource_id IS NOT NULL)
                ORDER BY lr.id LIMIT $2
                """,
                etl_source,
                limit,
            )
        return [StoredResource(**dict(r)) for r in rows]

    async def mark_indexed(self, items: Sequence[tuple[int, str]]) -> None:
        if not items:
            return
        async with self.pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO search_index_state (resource_id, indexed_hash)"
                " SELECT * FROM unnest($1::bigint[], $2::text[])"
                " ON CONFLICT (resource_id) DO UPDATE SET indexed_hash = EXCLUDED.indexed_hash, indexed_on = now()",
                [i for i, _ in items],
                [h for _, h in items],
            )

    async def pending_embedding(
        self, etl_source: str | None, after_id: int, limit: int, encoder: str
    ) -> list[asyncpg.Record]:
        async with self.pool.acquire() as conn:
            return await conn.fetch(
                """
                SELECT lr.id, lr.data, lr.published, lr.created_on,
                       CASE WHEN e.encoder = $4 THEN e.text_checksum END AS text_checksum,
                       e.text_checksum AS stored_checksum
                FROM learning_resource lr LEFT JOIN embedding_state e ON e.resource_id = lr.id
                WHERE ($1::text IS NULL OR lr.etl_source = $1) AND lr.id > $2
                  AND (lr.published OR e.resource_id IS NOT NULL)
                  AND (e.resource_id IS NULL OR lr.updated_on >= e.embedded_on
                       OR NOT lr.published OR e.encoder <> $4)
                ORDER BY lr.id LIMIT $3
                """,
                etl_source,
                after_id,
                limit,
                encoder,
            )

    async def mark_embedded(
        self, items: Sequence[tuple[int, str]], removed: Sequence[int] = (), encoder: str = ""
    ) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            if items:
                await conn.execute(
                    "INSERT INTO embedding_state (resource_id, text_checksum, encoder)"
                    " SELECT r, c, $3 FROM unnest($1::bigint[], $2::text[]) AS t(r, c)"
                    " ON CONFLICT (resource_id) DO UPDATE SET text_checksum = EXCLUDED.text_checksum,"
                    " encoder = EXCLUDED.encoder, embedded_on = now()",
                    [i for i, _ in items],
                    [c for _, c in items],
                    encoder,
                )
            if removed:
                await conn.execute(
                    "DELETE FROM embedding_state WHERE resource_id = ANY($1::bigint[])",
                    list(removed),
                )

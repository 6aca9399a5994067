"""Single-resource writes by natural key, for webhooks that name one item (OVS deletes)."""

from __future__ import annotations

import asyncpg


async def unpublish_resource(
    pool: asyncpg.Pool, etl_source: str, platform: str, readable_id: str, resource_type: str
) -> int:
    """Unpublish one resource; 0 when it is unknown or already unpublished.

    The hash is cleared as the prune does, so the item coming back rewrites the row.
    """
    async with pool.acquire() as conn:
        status = await conn.execute(
            "UPDATE learning_resource SET published = false, content_hash = 'pruned',"
            " updated_on = now() WHERE etl_source = $1 AND platform = $2 AND readable_id = $3"
            " AND resource_type = $4 AND published",
            etl_source,
            platform,
            readable_id,
            str(resource_type),
        )
    return int(status.split()[-1])


async def stored_transcripts(
    pool: asyncpg.Pool, etl_source: str, readable_ids: list[str] | None = None
) -> dict[str, str]:
    """The transcripts the catalog holds for this source's videos (all, or these ids): a run
    that does not fetch captions carries them over instead of dropping them."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT readable_id, data::jsonb -> 'details' ->> 'transcript' AS transcript"
            " FROM learning_resource WHERE etl_source = $1 AND resource_type = 'video'"
            " AND ($2::text[] IS NULL OR readable_id = ANY($2::text[]))"
            " AND coalesce(data::jsonb -> 'details' ->> 'transcript', '') <> ''",
            etl_source,
            readable_ids,
        )
    return {r["readable_id"]: r["transcript"] for r in rows}

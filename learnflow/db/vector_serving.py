"""Which encoder's vector collections the search service reads (`vector_serving`, one row), and
how far the configured encoder's collections are from holding every published resource.

The vector-store counterpart of the keyword index's alias swap: a new encoder's collections are
filled beside the served ones, the embeddings workflow promotes them here when complete, and the
search service follows this row (`learnflow.stores.vector_serving.VectorServing`).
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg


@dataclass(frozen=True)
class ServingRecord:
    encoder: str  # the encoder id (`encoders.encoder_id`) the served collections hold
    kind: str | None  # how to load it (QDRANT_ENCODER kind); None: derived from `encoder`
    model: str | None
    retiring: str | None  # the previous encoder, while its collections still exist


@dataclass(frozen=True)
class CatchUp:
    """How much of the published catalog `encoder` has embedded."""

    encoder: str
    published: int
    embedded: int

    @property
    def complete(self) -> bool:
        return self.embedded >= self.published


async def read_serving(pool: asyncpg.Pool) -> ServingRecord | None:
    """The promoted encoder; None before any promotion (serve the configured encoder)."""
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT encoder, kind, model, retiring FROM vector_serving")
    return ServingRecord(**dict(row)) if row else None


async def catch_up(pool: asyncpg.Pool, encoder: str) -> CatchUp:
    """Published resources, and how many of them `encoder` embedded (embedding_state)."""
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT count(*) AS published,"
            " count(*) FILTER (WHERE e.encoder = $1) AS embedded"
            " FROM learning_resource lr LEFT JOIN embedding_state e ON e.resource_id = lr.id"
            " WHERE lr.published",
            encoder,
        )
    return CatchUp(encoder, int(row["published"]), int(row["embedded"]))


async def promote(pool: asyncpg.Pool, encoder: str, kind: str, model: str) -> str | None:
    """Serve `encoder` from now on; returns the encoder it replaces (to retire), if any. A
    promotion that is already in place changes nothing (an activity retry)."""
    async with pool.acquire() as conn, conn.transaction():
        old = await conn.fetchrow("SELECT encoder, retiring FROM vector_serving FOR UPDATE")
        if old is not None and old["encoder"] == encoder:
            return old["retiring"]
        previous = old["encoder"] if old is not None else None
        await conn.execute(
            "INSERT INTO vector_serving (singleton, encoder, kind, model, retiring, promoted_on)"
            " VALUES (true, $1, $2, $3, $4, now())"
            " ON CONFLICT (singleton) DO UPDATE SET encoder = EXCLUDED.encoder,"
            " kind = EXCLUDED.kind, model = EXCLUDED.model, retiring = EXCLUDED.retiring,"
            " promoted_on = EXCLUDED.promoted_on",
            encoder,
            kind,
            model,
            previous,
        )
    return previous


async def retired(pool: asyncpg.Pool, encoder: str) -> None:
    """`encoder`'s collections are gone: forget it as the one awaiting retirement."""
    async with pool.acquire() as conn:
        await conn.execute("UPDATE vector_serving SET retiring = NULL WHERE retiring = $1", encoder)

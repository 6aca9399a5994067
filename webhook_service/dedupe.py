"""Exactly one workflow start per webhook event: a delivery claims its event key before starting.

The event key is the Standard Webhooks `webhook-id`, or for MIT Learn's scheme (no id, no
timestamp) a hash of the signed body: a replayed MIT Learn delivery is the same bytes. The first
delivery of an event claims the key and starts the workflow; every other delivery of it within
the window (concurrent duplicates, sender retries, replays) is answered with the first one's
workflow id and starts nothing. Temporal's USE_EXISTING conflict policy alone cannot give that:
once the first run has closed, the default reuse policy lets a duplicate start a second run.

A claim is a lease (`lease_seconds`) until the start succeeded, then lasts the window; a failed
start releases it, so the sender's retry can start the event. A process that dies between claim
and start leaves a lease that expires on its own.

`PostgresDeliveryStore` is the store for more than one process (one atomic INSERT … ON CONFLICT
per claim); `MemoryDeliveryStore` serves one process (claims never await, so they are atomic in
its event loop).
"""

from __future__ import annotations

import random
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

import asyncpg


@dataclass(frozen=True)
class Seen:
    body_digest: str
    workflow_id: str


class DeliveryStore(Protocol):
    async def claim(self, key: str, seen: Seen, lease_seconds: float) -> Seen | None:
        """None: this delivery owns the event and must start it. Otherwise the event's first
        delivery (whose workflow id to answer with)."""
        ...

    async def confirm(self, key: str, window_seconds: float) -> None:
        """The start succeeded: keep the claim for the replay window."""
        ...

    async def release(self, key: str) -> None:
        """The start failed: let the next delivery of the event try again."""
        ...


class MemoryDeliveryStore:
    def __init__(self, max_entries: int = 100_000) -> None:
        self._max = max_entries
        self._items: OrderedDict[str, tuple[float, Seen]] = OrderedDict()

    def _evict(self, now: float) -> None:
        expired = [k for k, (until, _) in self._items.items() if until <= now]
        for k in expired:
            del self._items[k]
        while len(self._items) > self._max:
            self._items.popitem(last=False)

    async def claim(self, key: str, seen: Seen, lease_seconds: float) -> Seen | None:
        now = time.monotonic()
        hit = self._items.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        self._items[key] = (now + lease_seconds, seen)
        self._items.move_to_end(key)
        if len(self._items) > self._max or random.random() < 0.01:
            self._evict(now)
        return None

    async def confirm(self, key: str, window_seconds: float) -> None:
        hit = self._items.get(key)
        if hit is not None:
            self._items[key] = (time.monotonic() + window_seconds, hit[1])

    async def release(self, key: str) -> None:
        self._items.pop(key, None)

    def __len__(self) -> int:
        return len(self._items)


# One statement: a new key is inserted, an expired one taken over, a live one left alone (and then
# no row comes back). Concurrent claims of one key serialise on its row lock.
_CLAIM = """
INSERT INTO webhook_delivery (event_key, body_digest, workflow_id, started, expires_at)
VALUES ($1, $2, $3, false, now() + make_interval(secs => $4))
ON CONFLICT (event_key) DO UPDATE
   SET body_digest = EXCLUDED.body_digest, workflow_id = EXCLUDED.workflow_id,
       started = false, expires_at = EXCLUDED.expires_at
 WHERE webhook_delivery.expires_at <= now()
RETURNING event_key
"""
_EXISTING = "SELECT body_digest, workflow_id FROM webhook_delivery WHERE event_key = $1"


class PostgresDeliveryStore:
    """Claims in the `webhook_delivery` table (migration 0005), shared by every process."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def claim(self, key: str, seen: Seen, lease_seconds: float) -> Seen | None:
        async with self.pool.acquire() as conn:
            for _ in range(3):  # the live row may expire between the two statements
                won = await conn.fetchval(
                    _CLAIM, key, seen.body_digest, seen.workflow_id, float(lease_seconds)
                )
                if won is not None:
                    if random.random() < 0.01:
                        await conn.execute(
                            "DELETE FROM webhook_delivery WHERE expires_at < now() - interval '1 hour'"
                        )
                    return None
                row = await conn.fetchrow(_EXISTING, key)
                if row is not None:
                    return Seen(row["body_digest"], row["workflow_id"])
        raise RuntimeError("webhook delivery claim did not settle")

    async def confirm(self, key: str, window_seconds: float) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(
                "UPDATE webhook_delivery SET started = true,"
                " expires_at = now() + make_interval(secs => $2) WHERE event_key = $1",
                key,
                float(window_seconds),
            )

    async def release(self, key: str) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute("DELETE FROM webhook_delivery WHERE event_key = $1", key)

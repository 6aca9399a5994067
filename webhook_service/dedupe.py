"""Replay answer cache: a Standard Webhooks `webhook-id` seen within the TTL gets the first answer
again without touching Temporal. In memory, per process: Temporal's USE_EXISTING conflict policy
is what makes duplicates harmless across processes; this only saves the round trip."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True)
class Seen:
    body_digest: str
    workflow_id: str


class DeliveryCache:
    def __init__(self, ttl_seconds: float, max_entries: int) -> None:
        self._ttl = ttl_seconds
        self._max = max_entries
        self._items: OrderedDict[tuple[str, str], tuple[float, Seen]] = OrderedDict()

    def _evict(self, now: float) -> None:
        while self._items:
            key, (expires, _) = next(iter(self._items.items()))
            if expires > now and len(self._items) <= self._max:
                break
            del self._items[key]

    def get(self, endpoint: str, webhook_id: str) -> Seen | None:
        now = time.monotonic()
        self._evict(now)
        hit = self._items.get((endpoint, webhook_id))
        return hit[1] if hit else None

    def put(self, endpoint: str, webhook_id: str, seen: Seen) -> None:
        now = time.monotonic()
        self._items[(endpoint, webhook_id)] = (now + self._ttl, seen)
        self._items.move_to_end((endpoint, webhook_id))
        self._evict(now)

    def __len__(self) -> int:
        return len(self._items)

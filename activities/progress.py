"""What a long activity heartbeats: one typed progress record, read back by a retried attempt.

Every long activity (archive loads, index and embed passes, purge) heartbeats a `Progress`:
its stage and its resume cursor (`after_id` for row passes; `checksum` + `next_chunk` for an
archive). `resumed()` also reads the styles heartbeats had before this record (a dict for
archives; `after_id` or `(after_id, counts)` for the search passes), so an attempt in flight
across a deploy still resumes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from temporalio import activity


class Progress(BaseModel):
    model_config = ConfigDict(extra="ignore")

    stage: str = "starting"
    key: str | None = None  # the archive key or OCW prefix being loaded
    checksum: str | None = None  # a chunk cursor is valid only for the same archive
    next_chunk: int = 0
    chunks: int | None = None
    after_id: int | None = None  # row passes: the last row id done
    counts: dict[str, Any] = Field(default_factory=dict)


def heartbeat(progress: Progress) -> None:
    """Heartbeat when inside an activity (a no-op when a loader runs from the CLI)."""
    if activity.in_activity():
        activity.heartbeat(progress.model_dump(mode="json", exclude_defaults=True))


def resumed() -> Progress:
    """The progress the previous attempt heartbeat last (empty on a first attempt)."""
    if not activity.in_activity():
        return Progress()
    details = activity.info().heartbeat_details
    if not details:
        return Progress()
    first = details[0]
    if isinstance(first, dict):
        return Progress.model_validate(first)
    if first is None or isinstance(first, int):  # before Progress: after_id[, counts]
        counts = details[1] if len(details) > 1 and isinstance(details[1], dict) else {}
        return Progress(stage="resumed", after_id=first, counts=counts)
    return Progress()


@contextlib.asynccontextmanager
async def heartbeating(progress: Progress, every_s: float = 5.0) -> AsyncIterator[Progress]:
    """Heartbeat `progress` (updated by the caller) while blocking steps run in threads."""

    async def beat() -> None:
        while True:
            heartbeat(progress)
            await asyncio.sleep(every_s)

    task = asyncio.create_task(beat())
    try:
        yield progress
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

"""Backend calls within the client's deadline: every backend call of the service goes through
`within_budget`, so a slow engine is UNAVAILABLE (retryable) and an expired client deadline is
DEADLINE_EXCEEDED."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

import grpc
import numpy as np
import structlog

from search_service.errors import BackendUnavailable, DeadlineExceeded, InvalidArgument, NotFound

log = structlog.get_logger(__name__)

DEFAULT_BACKEND_SECONDS = 10.0  # a backend call's budget when the client set no deadline
DEADLINE_MARGIN_SECONDS = 0.02  # left to serialise and send the answer

T = TypeVar("T")


async def within_budget(context: grpc.aio.ServicerContext, coro: Awaitable[T], what: str) -> T:
    """Run a backend call within the client's remaining deadline (minus a margin).

    Out of time: DEADLINE_EXCEEDED if the client's deadline is what expired, else UNAVAILABLE
    (our own budget ran out; the client may retry)."""
    remaining = context.time_remaining()
    if remaining is None:
        budget = DEFAULT_BACKEND_SECONDS
    else:
        budget = min(remaining - DEADLINE_MARGIN_SECONDS, DEFAULT_BACKEND_SECONDS)
    if budget <= 0:
        if asyncio.iscoroutine(coro):
            coro.close()
        raise DeadlineExceeded(f"no time left for {what}")
    try:
        return await asyncio.wait_for(coro, budget)
    except TimeoutError:
        left = context.time_remaining()
        if left is not None and left <= DEADLINE_MARGIN_SECONDS:
            raise DeadlineExceeded(f"{what} did not answer before the deadline") from None
        raise BackendUnavailable(f"{what} did not answer in {budget:.1f}s") from None
    except (InvalidArgument, NotFound):
        raise
    except Exception as exc:
        log.warning("backend.failed", backend=what, error=repr(exc))
        raise BackendUnavailable(f"{what} is unavailable") from exc


async def encode(context: grpc.aio.ServicerContext, encoder: Any, text: str) -> np.ndarray:
    """One query text's vector (the encoder runs off the event loop)."""
    vectors = await within_budget(context, asyncio.to_thread(encoder.encode, [text]), "encoder")
    return vectors[0]

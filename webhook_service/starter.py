"""The seam between HTTP and Temporal: `WorkflowStarter.start(...) -> workflow id`.

Every start uses `WorkflowIDConflictPolicy.USE_EXISTING`, so a repeated delivery while the first
workflow runs returns the same id and starts nothing. After that workflow has closed, the default
reuse policy would let a redelivery run again: the app's delivery store (`dedupe.py`) is what keeps
a redelivery of the same event within the replay window from reaching this seam at all, while a
new event for the same key (a new archive at the same path) still runs again.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Protocol, runtime_checkable

from pydantic import BaseModel
from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
)
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError, RPCStatusCode

from learnflow import search_attributes

_UNAVAILABLE = {
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.RESOURCE_EXHAUSTED,
    RPCStatusCode.CANCELLED,
}


class StarterUnavailable(Exception):
    """Temporal could not be reached or is overloaded: the HTTP answer is 503 (sender retries)."""


@runtime_checkable
class WorkflowStarter(Protocol):
    async def start(
        self, workflow: str, arg: BaseModel, workflow_id: str, task_queue: str
    ) -> str: ...


class TemporalStarter:
    """Starts workflows by type name on a connected client (pydantic data converter).

    `start_timeout` bounds the whole call, the SDK's own retries of UNAVAILABLE included (they
    would otherwise run ~10 s), so a sender gets its 503 well inside its own timeout. A start
    that succeeded just as we gave up is harmless: the sender's retry gets the same id back.
    """

    def __init__(self, client: Client, start_timeout: timedelta = timedelta(seconds=5)) -> None:
        self._client = client
        self._timeout = start_timeout.total_seconds()

    async def start(self, workflow: str, arg: BaseModel, workflow_id: str, task_queue: str) -> str:
        source = getattr(arg, "source", None)
        attrs = (
            TypedSearchAttributes([SearchAttributePair(search_attributes.SOURCE, source)])
            if isinstance(source, str)
            else None
        )
        try:
            handle = await asyncio.wait_for(
                self._client.start_workflow(
                    workflow,
                    arg,
                    id=workflow_id,
                    task_queue=task_queue,
                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                    search_attributes=attrs,
                    static_summary=f"webhook: {workflow_id}"[:200],
                    rpc_timeout=timedelta(seconds=self._timeout),
                ),
                self._timeout,
            )
        except TimeoutError as exc:
            raise StarterUnavailable("temporal: start timed out") from exc
        except RPCError as exc:
            if exc.status in _UNAVAILABLE:
                raise StarterUnavailable(f"temporal: {exc.status.name}") from exc
            raise
        return handle.id


class LazyTemporalStarter:
    """Connects on first use, in the serving event loop; a failed connect is retried on the next
    delivery, so the service starts (and answers 503) while Temporal is down."""

    def __init__(
        self,
        address: str,
        namespace: str = "default",
        connect_timeout: float = 5.0,
        start_timeout: timedelta = timedelta(seconds=5),
    ) -> None:
        self.address = address
        self.namespace = namespace
        self._connect_timeout = connect_timeout
        self._start_timeout = start_timeout
        self._inner: TemporalStarter | None = None
        self._lock: asyncio.Lock | None = None

    async def _get(self) -> TemporalStarter:
        if self._inner is not None:
            return self._inner
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._inner is None:
                try:
                    client = await asyncio.wait_for(
                        Client.connect(
                            self.address,
                            namespace=self.namespace,
                            data_converter=pydantic_data_converter,
                        ),
                        self._connect_timeout,
                    )
                except (TimeoutError, RuntimeError, RPCError, OSError) as exc:
                    raise StarterUnavailable(
                        f"temporal: cannot connect ({type(exc).__name__})"
                    ) from exc
                self._inner = TemporalStarter(client, self._start_timeout)
        return self._inner

    async def start(self, workflow: str, arg: BaseModel, workflow_id: str, task_queue: str) -> str:
        inner = await self._get()
        return await inner.start(workflow, arg, workflow_id, task_queue)

"""Per-backend health: a background task polls each store's `healthy()` and sets the gRPC health
status of `<service>/<backend>` and of the service itself (NOT_SERVING when any backend it needs
is down). The overall `""` status is liveness and stays SERVING until shutdown."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog
from grpc_health.v1 import health, health_pb2

log = structlog.get_logger(__name__)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING

Check = Callable[[], Awaitable[bool]]


@dataclass
class BackendHealth:
    servicer: health.aio.HealthServicer
    service: str
    checks: dict[str, Check]
    interval: float = 5.0
    timeout: float = 2.0
    status: dict[str, bool] = field(default_factory=dict)
    # Extra names reporting a check's status: the engine behind a role ("opensearch" for
    # "keyword"), so operators can ask for the engine they know without knowing the wiring.
    aliases: dict[str, str] = field(default_factory=dict)  # alias -> check name
    _task: asyncio.Task | None = None

    async def _check(self, name: str, check: Check) -> bool:
        try:
            return bool(await asyncio.wait_for(check(), self.timeout))
        except Exception as exc:
            log.warning("health.check_failed", backend=name, error=repr(exc))
            return False

    async def poll_once(self) -> dict[str, bool]:
        names = list(self.checks)
        results = await asyncio.gather(*(self._check(n, self.checks[n]) for n in names))
        for name, ok in zip(names, results, strict=True):
            if self.status.get(name) != ok:
                log.info("health.changed", backend=name, serving=ok)
            self.status[name] = ok
            await self.servicer.set(f"{self.service}/{name}", SERVING if ok else NOT_SERVING)
        for alias, name in self.aliases.items():
            ok = self.status.get(name, False)
            await self.servicer.set(f"{self.service}/{alias}", SERVING if ok else NOT_SERVING)
        await self.servicer.set(self.service, SERVING if all(results) else NOT_SERVING)
        return dict(self.status)

    async def _run(self) -> None:
        while True:
            await self.poll_once()
            await asyncio.sleep(self.interval)

    async def start(self) -> None:
        await self.poll_once()
        self._task = asyncio.create_task(self._run(), name="backend-health")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

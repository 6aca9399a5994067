"""Bring the system up: the one code path used by `learn up`, the end-to-end tests and CI.

`ServiceStack` starts the external services (Temporal dev server, Postgres, optionally the demo
source server); `App` runs learnflow itself in one process: the workers of every task queue and
the gRPC search service. One process on purpose in embedded mode: the embedded engines (tantivy's
writer, Qdrant local mode) belong to a single process; in production each runs as its own service.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import structlog
from temporalio.client import Client
from temporalio.worker import Worker

from learnflow.db.migrate import migrate
from learnflow.harness.fixture_server import FixtureServer
from learnflow.harness.temporal import DevServer
from learnflow.reference import reference_data
from learnflow.settings import get_settings, reset_settings
from learnflow.stores import Stores, get_stores, reset_stores

log = structlog.get_logger(__name__)


@dataclass
class ServiceStack:
    data_dir: Path
    demo: bool = False
    temporal_port: int = 7233
    ui_port: int = 8233
    temporal: DevServer | None = None
    fixture_server: FixtureServer | None = None
    env: dict[str, str] = field(default_factory=dict)
    _pg: object | None = None

    def start(self) -> ServiceStack:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        settings = get_settings()
        self.temporal = DevServer(
            db_file=self.data_dir / "temporal.db",
            port=self.temporal_port,
            ui_port=self.ui_port,
            log_file=self.data_dir / "temporal.log",
        ).start()
        self.env["TEMPORAL_ADDRESS"] = self.temporal.address
        if settings.database_url:
            self.env["DATABASE_URL"] = settings.database_url
        else:
            from learnflow.harness.postgres import embedded_postgres

            self.env["DATABASE_URL"] = embedded_postgres(self.data_dir)
        self.env.setdefault("DATA_DIR", str(self.data_dir))
        if not settings.qdrant_url and not settings.qdrant_path:
            self.env["QDRANT_PATH"] = str(self.data_dir / "qdrant")
        if self.demo:
            from learnflow.demo import install_demo

            # the demo is a trusted local sandbox: no identity provider to issue tokens
            self.env.setdefault("GRPC_AUTH_ENABLED", "false")

            self.fixture_server = FixtureServer().start()
            self.env.update(install_demo(self.fixture_server))
        self.env.setdefault("GRPC_ADDRESS", settings.grpc_address)
        os.environ.update(self.env)
        env_file = self.data_dir / "learnflow.env"
        env_file.write_text("".join(f"{k}={v}\n" for k, v in sorted(self.env.items())))
        reset_settings()
        return self

    def stop(self) -> None:
        if self.fixture_server:
            self.fixture_server.stop()
        if self.temporal:
            self.temporal.stop()


async def prepare_database(stores: Stores) -> None:
    async with stores.pool.acquire() as conn:
        applied = await migrate(conn)
    if applied:
        log.info("db.migrated", applied=applied)
    await stores.catalog.load_reference_data(reference_data())


@dataclass
class App:
    """learnflow's own processes, in-process: workers + gRPC search service."""

    client: Client
    stores: Stores
    workers: list[Worker]
    grpc: object
    _tasks: list[asyncio.Task] = field(default_factory=list)

    @property
    def grpc_address(self) -> str:
        return f"127.0.0.1:{self.grpc.port}"  # type: ignore[attr-defined]

    async def stop(self) -> None:
        await self.grpc.stop(grace=2.0)  # type: ignore[attr-defined]
        await asyncio.gather(*(w.shutdown() for w in self.workers), return_exceptions=True)
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t


async def start_app(grpc_address: str = "127.0.0.1:0", task_queue_prefix: str = "") -> App:
    from search_service.server import start_server
    from worker import build_workers, connect

    settings = get_settings()
    stores = await get_stores()
    await prepare_database(stores)
    client = await connect(settings.temporal_address, settings.temporal_namespace)
    workers = build_workers(client, task_queue_prefix=task_queue_prefix)
    app = App(
        client=client, stores=stores, workers=workers, grpc=await start_server(stores, grpc_address)
    )
    app._tasks = [asyncio.create_task(w.run()) for w in workers]
    return app


async def run_up(stack: ServiceStack, grpc_address: str, trigger: bool = True) -> None:
    """`learn up`: services, app, schedules, a first run of every source; wait for Ctrl-C."""
    from learnflow.schedules import reconcile, wanted_schedules
    from sources import all_sources
    from worker import queue_registry

    app = await start_app(grpc_address)
    registered = {wf.__name__ for wfs, _ in queue_registry().values() for wf in wfs}
    entries = wanted_schedules(registered, set(all_sources()))
    report = await reconcile(app.client, entries)
    demo_sources = None
    if stack.demo:
        from learnflow.demo import DEMO_SOURCES

        demo_sources = set(DEMO_SOURCES)
    for entry in entries:
        handle = app.client.get_schedule_handle(entry.schedule_id)
        served = entry.workflow == "IngestSourceWorkflow" and entry.source in (demo_sources or ())
        if demo_sources is not None and entry.source and not served:
            # Offline demo: sources it does not serve stay paused instead of calling the internet.
            await handle.pause(note="paused by learn up --demo: no demo payloads for this source")
        elif trigger and not entry.paused:
            await handle.trigger()
    assert stack.temporal is not None
    print(f"Temporal UI:   {stack.temporal.ui_url}")
    print(f"Temporal gRPC: {stack.temporal.address}")
    print(f'Search gRPC:   {app.grpc_address}   (try: learn search "differential equations")')
    print(
        f"Schedules:     {len(entries)} ({len(report.created)} created, {len(report.updated)} updated)"
    )
    print("Press Ctrl-C to stop.")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    import signal

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        print("Stopping…")
        await app.stop()
        await reset_stores()

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
from typing import TYPE_CHECKING

import structlog
from temporalio.client import Client
from temporalio.worker import Worker

from devstack.harness.fixture_server import FixtureServer
from devstack.harness.temporal import DevServer
from learnflow.db.migrate import prepare_database
from learnflow.settings import DEFAULT_ENV_FILE, get_settings, reset_settings
from learnflow.stores import Stores, get_stores, reset_stores

if TYPE_CHECKING:
    from devstack.demo_web import DemoWebProxy
    from devstack.harness.s3 import MotoS3

log = structlog.get_logger(__name__)


@dataclass
class ServiceStack:
    data_dir: Path
    demo: bool = False
    temporal_port: int = 7233
    ui_port: int = 8233
    temporal: DevServer | None = None
    fixture_server: FixtureServer | None = None
    s3: MotoS3 | None = None
    web_proxy: DemoWebProxy | None = None
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
            from devstack.harness.postgres import embedded_postgres

            self.env["DATABASE_URL"] = embedded_postgres(self.data_dir)
        self.env.setdefault("DATA_DIR", str(self.data_dir))
        if not settings.qdrant_url and not settings.qdrant_path:
            self.env["QDRANT_PATH"] = str(self.data_dir / "qdrant")
        if self.demo:
            from devstack.demo import install_demo, install_demo_archives
            from devstack.demo_web import DemoWebProxy
            from devstack.harness.s3 import MotoS3

            # the demo is a trusted local sandbox: no identity provider to issue tokens
            self.env.setdefault("GRPC_AUTH_ENABLED", "false")

            self.fixture_server = FixtureServer().start()
            self.env.update(install_demo(self.fixture_server))
            # The public web (marketing pages): answered by a local forward proxy.
            self.web_proxy = DemoWebProxy(self.data_dir / "demo-web").start()
            self.env.update(self.web_proxy.env())
            # Course archives: moto's S3 in this process (in memory, offline), filled each start.
            try:
                self.s3 = MotoS3().start()
            except ImportError as exc:
                raise RuntimeError(
                    "learn up --demo serves course archives from moto's S3: "
                    "pip install 'moto[s3]' (make install does)"
                ) from exc
            self.env.update(
                S3_ENDPOINT_URL=self.s3.endpoint_url,
                AWS_ACCESS_KEY_ID="testing",
                AWS_SECRET_ACCESS_KEY="testing",  # noqa: S106 - moto's dummy credentials
                TIKA_SERVER_ENDPOINT="",  # the embedded extractor: no JVM to start
            )
            self.env.update(install_demo_archives(self.s3.client()))
        self.env.setdefault("GRPC_ADDRESS", settings.grpc_address)
        os.environ.update(self.env)
        self.env_file.write_text("".join(f"{k}={v}\n" for k, v in sorted(self.env.items())))
        reset_settings()
        return self

    @property
    def env_file(self) -> Path:
        """Where the addresses of what this stack started are written, for other `learn`
        commands (`learn status --data-dir DIR`, or LEARNFLOW_ENV_FILE=<this file>)."""
        return self.data_dir / "learnflow.env"

    def other_commands_hint(self) -> str | None:
        """How other `learn` commands find this stack, when they would not by default (they read
        .learnflow/learnflow.env of the directory they run in)."""
        if self.env_file.resolve() == Path(DEFAULT_ENV_FILE).resolve():
            return None
        return (
            f"Other commands: learn status --data-dir {self.data_dir}\n"
            f"                (or export LEARNFLOW_ENV_FILE={self.env_file})"
        )

    def stop(self) -> None:
        if self.web_proxy:
            self.web_proxy.stop()
        if self.s3:
            self.s3.stop()
        if self.fixture_server:
            self.fixture_server.stop()
        if self.temporal:
            self.temporal.stop()


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
    background: list[asyncio.Task] = []
    if stack.demo:
        background = await _demo_first_runs(app.client, entries, trigger)
    elif trigger:
        for entry in entries:
            if not entry.paused:
                await app.client.get_schedule_handle(entry.schedule_id).trigger()
    assert stack.temporal is not None
    print(f"Temporal UI:   {stack.temporal.ui_url}")
    print(f"Temporal gRPC: {stack.temporal.address}")
    print(f'Search gRPC:   {app.grpc_address}   (try: learn search "differential equations")')
    print(
        f"Schedules:     {len(entries)} ({len(report.created)} created, {len(report.updated)} updated)"
    )
    if hint := stack.other_commands_hint():
        print(hint)
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
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await app.stop()
        await reset_stores()


DEMO_PAUSE_NOTE = "paused by learn up --demo: no demo payloads for this source"


async def _demo_first_runs(client: Client, entries: list, trigger: bool) -> list[asyncio.Task]:
    """`learn up --demo`: pause what the demo does not serve; run everything else once, each
    after its prerequisites' first run (archives after their catalog), plus one OCW run.

    Schedules the table creates paused (sloan_news) get one run too and stay paused, so the UI
    shows every source working."""
    from devstack.demo import demo_prerequisites, demo_serves

    tasks: list[asyncio.Task] = []
    for entry in entries:
        handle = client.get_schedule_handle(entry.schedule_id)
        if not demo_serves(entry.source, entry.workflow):
            await handle.pause(note=DEMO_PAUSE_NOTE)
            continue
        state = (await handle.describe()).schedule.state
        if state.paused and state.note == DEMO_PAUSE_NOTE:
            # paused by an older demo that did not serve it yet; an operator's pause stays
            await handle.unpause(note="served by learn up --demo")
        if not trigger:
            continue
        after = demo_prerequisites(entry.source, entry.workflow)
        if after:
            tasks.append(asyncio.create_task(_trigger_after(client, entry.schedule_id, after)))
        else:
            await handle.trigger()
    if trigger:
        tasks.append(asyncio.create_task(_start_demo_ocw(client)))
    return tasks


async def _has_completed_run(client: Client, schedule_id: str) -> bool:
    query = f"TemporalScheduledById = '{schedule_id}' AND ExecutionStatus = 'Completed'"
    async for _ in client.list_workflows(query, limit=1):
        return True
    return False


async def _trigger_after(
    client: Client, schedule_id: str, after: tuple[str, ...], timeout_s: float = 600.0
) -> None:
    """Trigger `schedule_id` once every schedule in `after` has completed a run (visibility is
    polled: it is eventually consistent); after `timeout_s`, trigger anyway and say so."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    waiting = list(after)
    while waiting and loop.time() < deadline:
        waiting = [s for s in waiting if not await _has_completed_run(client, s)]
        if waiting:
            await asyncio.sleep(1.0)
    if waiting:
        log.warning("demo.trigger_without_prerequisites", schedule=schedule_id, waiting=waiting)
    await client.get_schedule_handle(schedule_id).trigger()
    log.info("demo.triggered", schedule=schedule_id, after=list(after))


async def _start_demo_ocw(client: Client) -> None:
    """The demo OCW site through IngestOcwWorkflow (it runs on webhooks, not on a schedule)."""
    from temporalio.common import SearchAttributePair, TypedSearchAttributes
    from temporalio.exceptions import WorkflowAlreadyStartedError

    from devstack.demo import DEMO_OCW_WORKFLOW_ID
    from learnflow import search_attributes as sa
    from learnflow.contracts import ARCHIVE_QUEUE, IngestSourceInput

    with contextlib.suppress(WorkflowAlreadyStartedError):
        await client.start_workflow(
            "IngestOcwWorkflow",
            IngestSourceInput(source="ocw"),
            id=DEMO_OCW_WORKFLOW_ID,
            task_queue=ARCHIVE_QUEUE,
            search_attributes=TypedSearchAttributes([SearchAttributePair(sa.SOURCE, "ocw")]),
            static_summary="learn up --demo: the demo OCW site",
        )

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
import secrets
import socket
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
from temporalio.client import Client
from temporalio.worker import Worker

from devstack.harness.children import ChildRecord, DataDirLock, StackError, kill_group
from devstack.harness.fixture_server import FixtureServer
from devstack.harness.temporal import DevServer
from learnflow.db.migrate import prepare_database
from learnflow.settings import DEFAULT_ENV_FILE, get_settings, reset_settings
from learnflow.stores import Stores, get_stores

if TYPE_CHECKING:
    from collections.abc import Sequence

    from devstack.demo_web import DemoWebProxy
    from devstack.harness.postgres import EmbeddedPostgres
    from devstack.harness.s3 import MotoS3

log = structlog.get_logger(__name__)


# A file only `learn up` writes: a directory holding other things is refused, not taken over.
DATA_DIR_MARKER = ".learnflow-data"
# What learn up itself puts in DATA_DIR (a directory holding only these is one of ours).
OWN_NAMES = {
    "learn-up.lock", "learnflow.env", "logs", "run", "temporal.db", "pg", "blobs", "qdrant",
    "keyword", "content_files", "demo-web", "demo-webhook-secret",
}  # fmt: skip


def prepare_data_dir(data_dir: Path) -> None:
    """Create DATA_DIR, or check that an existing one is learnflow's (one line if not)."""
    if data_dir.exists() and not data_dir.is_dir():
        raise StackError(f"{data_dir} is a file: pass --data-dir with a directory")
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        marker = data_dir / DATA_DIR_MARKER
        if not marker.exists():
            names = sorted(p.name for p in data_dir.iterdir())
            # directories made before the marker existed hold the Temporal file or the cluster
            if set(names) - OWN_NAMES and not {"temporal.db", "pg"} & set(names):
                raise StackError(
                    f"{data_dir} is not a learnflow data directory (it holds {', '.join(names[:3])}"
                    f"{', …' if len(names) > 3 else ''}): pass --data-dir with a new or empty one"
                )
            marker.write_text("state of `learn up`: Temporal, PostgreSQL, indexes, blobs, logs\n")
    except PermissionError as exc:
        raise StackError(
            f"{data_dir}: {exc.strerror}: pass --data-dir with a writable one"
        ) from None


def ensure_port_free(port: int, what: str) -> None:
    """A port another process holds gets one line naming that process and the way out."""
    if not port:
        return
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            return
        except OSError:
            pass
    holder = ""
    with contextlib.suppress(Exception):
        import psutil

        for conn in psutil.net_connections(kind="tcp"):
            if conn.laddr and conn.laddr.port == port and conn.status == "LISTEN" and conn.pid:
                holder = f" by {psutil.Process(conn.pid).name()} (pid {conn.pid})"
                break
    raise StackError(f"port {port} is in use{holder}: stop it, or pass {what}")


@dataclass
class ServiceStack:
    """The services `learn up` starts around learnflow, owned through DATA_DIR's lock.

    Restartable over the same DATA_DIR: after a clean stop everything is reused; after a crash
    (`kill -9`) the children died with it (parent-death signal), and any that did not are ended
    from DATA_DIR/run before the ports and files are reused. Its own settings never come from
    the env file it writes (that file describes the running stack for other commands)."""

    data_dir: Path
    demo: bool = False
    temporal_port: int = 7233
    ui_port: int = 8233
    webhook_port: int = 8089
    temporal: DevServer | None = None
    postgres: EmbeddedPostgres | None = None
    fixture_server: FixtureServer | None = None
    s3: MotoS3 | None = None
    web_proxy: DemoWebProxy | None = None
    env: dict[str, str] = field(default_factory=dict)
    _lock: DataDirLock | None = None
    _children: ChildRecord | None = None
    _adopted: list = field(default_factory=list)

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    def claim(self) -> ServiceStack:
        """Check and lock DATA_DIR, and end what a crashed run left behind."""
        prepare_data_dir(self.data_dir)
        self._lock = DataDirLock(self.data_dir).acquire()
        self._children = ChildRecord(self.data_dir)
        if ended := self._children.end_leftovers():
            log.warning("up.ended_leftovers", processes=ended)
        self.env_file.unlink(missing_ok=True)  # a crashed run's: it describes nothing running
        return self

    def start(self) -> ServiceStack:
        if self._lock is None:
            self.claim()
        assert self._children is not None
        settings = get_settings()
        ensure_port_free(self.temporal_port, "--temporal-port")
        ensure_port_free(self.ui_port, "--ui-port")
        if self.demo or settings.webhook_secret or settings.webhook_secrets:
            ensure_port_free(self.webhook_port, "--webhook-port")
        ensure_port_free(
            int(settings.grpc_address.rpartition(":")[2] or 0), "GRPC_ADDRESS=host:port"
        )
        self.temporal = DevServer(
            db_file=self.data_dir / "temporal.db",
            port=self.temporal_port,
            ui_port=self.ui_port,
            log_file=self.log_dir / "temporal.log",
            die_with_parent=True,
            stop_timeout=3.0,
        )
        try:
            self.temporal.start()
        except (RuntimeError, TimeoutError) as exc:
            raise StackError(
                f"the Temporal dev server did not start ({exc}); its log: {self.log_dir}/temporal.log"
            ) from None
        finally:
            if self.temporal.proc is not None:
                self._children.add("temporal", self.temporal.proc.pid)
        self.env["TEMPORAL_ADDRESS"] = self.temporal.address
        if settings.database_url:
            self.env["DATABASE_URL"] = settings.database_url
        else:
            from devstack.harness.postgres import EmbeddedPostgres

            self.postgres = EmbeddedPostgres(self.data_dir, self.log_dir / "postgres.log")
            try:
                self.env["DATABASE_URL"] = self.postgres.start()
            finally:
                if self.postgres.proc is not None:
                    self._children.add("postgres", self.postgres.proc.pid)
        self.env.setdefault("DATA_DIR", str(self.data_dir))
        if not settings.qdrant_url and not settings.qdrant_path:
            self.env["QDRANT_PATH"] = str(self.data_dir / "qdrant")
        if self.demo:
            self._start_demo()
        self.env.setdefault("GRPC_ADDRESS", settings.grpc_address)
        if settings.search_page_token_secret is None:
            # The search service has no built-in page-token key: `learn up` keeps one per data dir.
            self.env["SEARCH_PAGE_TOKEN_SECRET"] = self._kept_secret("page-token.key")
        os.environ.update(self.env)
        # the pid lets other commands tell a running stack from a crashed one's leftover file
        lines = [f"{k}={v}\n" for k, v in sorted(self.env.items())]
        self.env_file.touch(mode=0o600)  # it may hold the demo's webhook secret
        self.env_file.write_text("".join([*lines, f"LEARNFLOW_UP_PID={os.getpid()}\n"]))
        reset_settings()
        return self

    def _start_demo(self) -> None:
        from devstack.demo import install_demo, install_demo_archives
        from devstack.demo_web import DemoWebProxy
        from devstack.harness.s3 import MotoS3

        # the demo is a trusted local sandbox: no identity provider to issue tokens
        self.env.setdefault("GRPC_AUTH_ENABLED", "false")
        # its webhooks are signed all the same, with a secret kept in DATA_DIR across restarts
        if not (get_settings().webhook_secret or get_settings().webhook_secrets):
            self.env["WEBHOOK_SECRET"] = self._kept_secret("demo-webhook-secret")

        self.fixture_server = self._demo_upstream()
        self.env.update(install_demo(self.fixture_server))
        # The public web (marketing pages): answered by a local forward proxy.
        self.web_proxy = DemoWebProxy(self.data_dir / "demo-web").start()
        self.env.update(self.web_proxy.env())
        # Course archives: moto's S3 in this process (in memory, offline), filled each start.
        try:
            self.s3 = MotoS3().start()
        except ImportError as exc:
            raise StackError(
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

    def _demo_upstream(self) -> FixtureServer:
        """The demo's upstream on the port it had before: its URLs end up in the catalog
        (podcast episodes, OVS media, news links), so a new port each start would rewrite and
        unpublish them on every restart. A port taken meanwhile: a new one, kept from then on."""
        path = self.data_dir / "demo-upstream.port"
        kept = path.read_text().strip() if path.exists() else ""
        try:
            server = FixtureServer(int(kept) if kept.isdigit() else 0)
        except OSError:
            server = FixtureServer()
        path.write_text(str(server.port))
        return server.start()

    def _kept_secret(self, name: str) -> str:
        """A secret kept in DATA_DIR across restarts (created owner-only on first use)."""
        path = self.data_dir / name
        if not path.exists():
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(32))
        return path.read_text().strip()

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
        """Stop in-process servers, then Temporal and PostgreSQL side by side (bounded: each
        gets a few seconds, then its process group is killed); forget the env file; unlock."""
        for server in (self.web_proxy, self.s3, self.fixture_server):
            if server is not None:
                with contextlib.suppress(Exception):
                    server.stop()
        self.web_proxy = self.s3 = self.fixture_server = None
        stoppers = [
            threading.Thread(target=service.stop, daemon=True)
            for service in (self.temporal, self.postgres)
            if service is not None
        ]
        for thread in stoppers:
            thread.start()
        for thread in stoppers:
            thread.join(timeout=8.0)
        self.kill()
        if self._lock is not None:
            self.env_file.unlink(missing_ok=True)
            if self._children is not None:
                self._children.path.unlink(missing_ok=True)
            self._lock.release()
            self._lock = None

    def adopt(self, name: str, proc) -> None:
        """A child started outside the stack (the --opensearch node): recorded in DATA_DIR/run,
        so a run after a crash ends it, and killed with the rest on a deadline."""
        assert self._children is not None
        self._adopted.append(proc)
        self._children.add(name, proc.pid)

    def kill(self) -> None:
        """SIGKILL what is left of the child servers' process groups (second Ctrl-C, deadline)."""
        for service in (self.temporal, self.postgres):
            proc = getattr(service, "proc", None)
            if proc is not None:
                kill_group(proc.pid)
        for proc in self._adopted:
            kill_group(proc.pid)


@dataclass
class App:
    """learnflow's own processes, in-process: workers + gRPC search service (plus the search
    processes sharing its port when `processes` > 1: `search_service.processes`)."""

    client: Client
    stores: Stores
    workers: list[Worker]
    grpc: object
    _tasks: list[asyncio.Task] = field(default_factory=list)

    @property
    def grpc_address(self) -> str:
        return f"127.0.0.1:{self.grpc.port}"  # type: ignore[attr-defined]

    async def stop(self, grace: float = 2.0) -> None:
        await self.grpc.stop(grace=grace)  # type: ignore[attr-defined]
        await asyncio.gather(*(w.shutdown() for w in self.workers), return_exceptions=True)
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        # The workers' CPU pool (another app's next page starts one again).
        from activities import cpu_pool

        cpu_pool.shutdown()


async def start_app(
    grpc_address: str = "127.0.0.1:0",
    task_queue_prefix: str = "",
    graceful_shutdown: timedelta | None = None,
    processes: int = 1,
    queues: Sequence[str] | None = None,
) -> App:
    """Workers for `queues` (every queue by default), the search service, the stores."""
    from search_service.processes import start_server_group
    from worker import TASK_QUEUES, build_workers, connect

    settings = get_settings()
    stores = await get_stores()
    await prepare_database(stores)
    client = await connect(settings.temporal_address, settings.temporal_namespace)
    extra = {} if graceful_shutdown is None else {"graceful_shutdown_timeout": graceful_shutdown}
    workers = build_workers(
        client, queues or TASK_QUEUES, task_queue_prefix=task_queue_prefix, **extra
    )
    grpc = await start_server_group(stores, grpc_address, processes)
    app = App(client=client, stores=stores, workers=workers, grpc=grpc)
    app._tasks = [asyncio.create_task(w.run()) for w in workers]
    return app


DEMO_PAUSE_NOTE = "paused by learn up --demo: no demo payloads for this source"


async def demo_first_runs(
    client: Client, entries: list, trigger: bool
) -> tuple[list[asyncio.Task], list[str]]:
    """`learn up --demo`: pause what the demo does not serve; run everything else once, each
    after its prerequisites' first run (archives after their catalog), plus one OCW run.
    Returns the tasks that trigger the later runs and the keys of every run started (schedule
    ids, and the OCW run's workflow id).

    Schedules the table creates paused (sloan_news) get one run too and stay paused, so the UI
    shows every source working."""
    from devstack.demo import DEMO_OCW_WORKFLOW_ID, demo_prerequisites, demo_serves

    tasks: list[asyncio.Task] = []
    keys: list[str] = []
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
        keys.append(entry.schedule_id)
        after = demo_prerequisites(entry.source, entry.workflow)
        if after:
            tasks.append(asyncio.create_task(_trigger_after(client, entry.schedule_id, after)))
        else:
            await handle.trigger()
    if trigger:
        tasks.append(asyncio.create_task(_start_demo_ocw(client)))
        keys.append(DEMO_OCW_WORKFLOW_ID)
    return tasks, keys


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

"""Fault-test fixtures: a stack of real services of its own per test, so a test may kill them.

Each test that breaks something gets a fresh Temporal dev server (on a SQLite file, so it can be
restarted), a fresh database in this directory's own PostgreSQL cluster (never the root one), a
fixture server answering at MITx Online's paths, and learnflow's worker as a SUBPROCESS
(`python worker.py`), which is what production runs and what SIGKILL can reach. Nothing here
touches the root fixtures' services.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError

from devstack.harness import reaper
from devstack.harness.fixture_server import FixtureServer, Request, Response
from devstack.harness.postgres import DebianPostgres
from devstack.harness.temporal import DevServer
from learnflow.contracts import IngestResult, IngestSourceInput
from tests.conftest import TEST_JSON, mitxonline_routes
from tests.helpers.polling import eventually, eventually_sync

REPO = Path(__file__).resolve().parents[2]
COURSES = json.loads((TEST_JSON / "mitxonline_courses.json").read_bytes())
PROGRAMS = json.loads((TEST_JSON / "mitxonline_programs.json").read_bytes())
# What the recorded MITx Online payloads hold: 3 courses + 2 programs.
SOURCE_RESOURCES = len(COURSES["results"]) + len(PROGRAMS["results"])
COURSES_PATH = "/api/v2/courses/"
PROGRAMS_PATH = "/api/v2/programs/"


def ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def start_or_fail(what: str, start: Callable[[], Any]) -> Any:
    """Tests never skip: a service that cannot start fails the test that needs it."""
    try:
        return start()
    except Exception as exc:
        pytest.fail(f"could not start {what} (CI={ci()}): {exc}", pytrace=False)


class Gate:
    """A fixture-server route that holds its requests until the test opens the gate.

    Makes "kill it in the middle of the fetch" deterministic: the test waits until `waiting`
    is set (the worker is blocked inside the HTTP call), breaks something, then `open()`s.
    """

    def __init__(self, respond: Callable[[Request], Response], hold_seconds: float = 300.0):
        self.respond = respond
        self.hold_seconds = hold_seconds
        self.opened = threading.Event()
        self.waiting = threading.Event()
        self.hits = 0

    def __call__(self, req: Request) -> Response:
        self.hits += 1
        self.waiting.set()
        # Bounded: a gate nobody opens still lets the server thread go at teardown.
        self.opened.wait(self.hold_seconds)
        return self.respond(req)

    def open(self) -> None:
        self.opened.set()


def paged_courses(base_url: str) -> Callable[[Request], Response]:
    """The recorded courses one per page, linked by DRF `next` URLs (page=1..3)."""
    results = COURSES["results"]

    def page(req: Request) -> Response:
        n = int(req.q("page", "1") or 1)
        nxt = f"{base_url}{COURSES_PATH}?page={n + 1}" if n < len(results) else None
        body = {"count": len(results), "next": nxt, "previous": None, "results": [results[n - 1]]}
        return Response.json(body)

    return page


@dataclass
class WorkerProcess:
    """`python worker.py --queue default --queue embeddings` with the stack's environment."""

    proc: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_ready(self, timeout: float = 60.0) -> None:
        def started() -> bool:
            if "worker.started" in self.log():
                return True
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}:\n{self.log()}")
            return False

        eventually_sync(
            started, lambda: f"the worker to start:\n{self.log()[-4000:]}", timeout, every=0.05
        )

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, no heartbeat, no goodbye to the server."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=15)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Stack:
    temporal: DevServer
    pg: DebianPostgres
    dsn: str
    fixtures: FixtureServer
    data_dir: Path
    client: Client
    env_overrides: dict[str, str] = field(default_factory=dict)
    workers: list[WorkerProcess] = field(default_factory=list)

    def env(self, **overrides: str) -> dict[str, str]:
        env = {
            **os.environ,
            "DATABASE_URL": self.dsn,
            "TEMPORAL_ADDRESS": self.temporal.address,
            "DATA_DIR": str(self.data_dir),
            "MITX_ONLINE_BASE_URL": self.fixtures.base_url,
            "HTTP_ALLOW_PRIVATE_HOSTS": "true",
            "QDRANT_PATH": str(self.data_dir / "qdrant"),
            "QDRANT_URL": "",
            "OPENSEARCH_URL": "",
            "KEYWORD_BACKEND": "tantivy",
            "BLOB_STORE_URL": "",
            "LEARNFLOW_ENV_FILE": "",
            "PYTHONUNBUFFERED": "1",
        }
        env.update(self.env_overrides)
        env.update(overrides)
        return env

    def start_worker(self, **env: str) -> WorkerProcess:
        log_path = self.data_dir / f"worker-{len(self.workers)}.log"
        out = log_path.open("ab")
        proc = subprocess.Popen(
            [sys.executable, "worker.py", "--queue", "default", "--queue", "embeddings"],
            cwd=REPO,
            env=self.env(**env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        reaper.watch(proc.pid)
        out.close()
        worker = WorkerProcess(proc, log_path)
        self.workers.append(worker)
        worker.wait_ready()
        return worker

    async def start_ingest(self, source: str = "mitxonline", **kw: Any) -> WorkflowHandle:
        return await self.client.start_workflow(
            "IngestSourceWorkflow",
            IngestSourceInput(source=source, **kw),
            id=f"test/reliability/{source}/{uuid.uuid4().hex[:8]}",
            task_queue="default",
            result_type=IngestResult,
        )

    async def ingest(self, source: str = "mitxonline", within: float = 90.0, **kw) -> IngestResult:
        return await self.result(await self.start_ingest(source, **kw), within)

    async def result(self, handle: WorkflowHandle, within: float = 90.0) -> IngestResult:
        """The workflow's result, polled so a Temporal restart in between is survived."""

        async def done() -> Any:
            try:
                desc = await handle.describe()
            except RPCError:
                return None  # the server is restarting
            if desc.status == WorkflowExecutionStatus.RUNNING:
                return None
            return desc.status

        status = await eventually(done, f"workflow {handle.id} to close", within, every=0.2)
        assert status == WorkflowExecutionStatus.COMPLETED, f"{handle.id} ended {status.name}"
        return await handle.result()

    async def pending(self, handle: WorkflowHandle, activity: str) -> Any:
        """The pending activity `activity` once a worker has STARTED it, else None."""
        from temporalio.api.enums.v1 import PendingActivityState

        desc = await handle.describe()
        for act in desc.raw_description.pending_activities:
            if (
                act.activity_type.name == activity
                and act.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
            ):
                return act
        return None

    async def query(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.dsn)
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    async def published(self) -> set[str]:
        rows = await self.query(
            "SELECT readable_id FROM learning_resource WHERE etl_source='mitxonline' AND published"
        )
        return {r["readable_id"] for r in rows}


async def prepare_database(dsn: str) -> None:
    """What `start_app` does for its database: migrations, then the reference data."""
    from learnflow.db.catalog import CatalogStore, create_pool
    from learnflow.db.migrate import migrate
    from learnflow.reference import reference_data

    pool = await create_pool(dsn)
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
        await CatalogStore(pool).load_reference_data(reference_data())
    finally:
        await pool.close()


async def new_database(pg: DebianPostgres) -> str:
    name = f"rel_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(pg.dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    dsn = pg.dsn.rsplit("/", 1)[0] + f"/{name}"
    await prepare_database(dsn)
    return dsn


async def connect_when_ready(address: str, data_converter: Any, within: float = 30.0) -> Client:
    """A client of a dev server that has just started: its port may accept connections before
    its frontend is healthy ("Frontend is not healthy yet"), so retry until a bounded deadline."""

    async def connect() -> Client | None:
        try:
            return await Client.connect(address, data_converter=data_converter)
        except RuntimeError as exc:
            if "not healthy" not in str(exc):
                raise
            return None

    return await eventually(connect, f"Temporal at {address} to be healthy", within, every=0.2)


@pytest.fixture(scope="session")
def reliability_pg() -> Iterator[DebianPostgres]:
    """This directory's own PostgreSQL cluster: a database per test, never the root cluster."""
    pg = DebianPostgres()
    start_or_fail("PostgreSQL", pg.start)
    yield pg
    pg.stop()


class StackMaker:
    """Makes stacks (Temporal on a SQLite file, a database, a fixture server, a data dir) under
    `root`; workers are started by the test. `close()` tears down everything it made."""

    def __init__(self, pg: DebianPostgres, root: Path):
        self.pg = pg
        self.root = root
        self.made: list[Stack] = []

    async def __call__(self, pg: DebianPostgres | None = None, **env: str) -> Stack:
        from temporalio.contrib.pydantic import pydantic_data_converter

        pg = pg or self.pg
        n = len(self.made)
        temporal = DevServer(
            db_file=self.root / f"temporal-{n}.db", log_file=self.root / f"temporal-{n}.log"
        )
        start_or_fail("Temporal dev server", temporal.start)
        fixtures = FixtureServer().start()
        mitxonline_routes(fixtures)
        client = await connect_when_ready(temporal.address, pydantic_data_converter)
        data_dir = self.root / f"data-{n}"
        data_dir.mkdir()
        stack = Stack(
            temporal=temporal,
            pg=pg,
            dsn=await new_database(pg),
            fixtures=fixtures,
            data_dir=data_dir,
            client=client,
            env_overrides=dict(env),
        )
        self.made.append(stack)
        return stack

    def close(self) -> None:
        for stack in self.made:
            for worker in stack.workers:
                worker.kill()  # a graceful stop would wait for activities parked at a Gate
            stack.fixtures.stop()
            stack.temporal.stop(kill=True)


@pytest.fixture
async def stack_factory(
    reliability_pg: DebianPostgres, tmp_path: Path
) -> AsyncIterator[StackMaker]:
    """`await stack_factory(pg=None, **worker_env)`: a fresh stack for this test only."""
    maker = StackMaker(reliability_pg, tmp_path)
    yield maker
    maker.close()


@pytest.fixture
async def stack(stack_factory: StackMaker) -> Stack:
    return await stack_factory()


class Script:
    """A route that plays scripted faults in order (a Response, or a number of seconds to stall
    before answering normally), then answers with `normal` for good."""

    def __init__(self, normal: Callable[[Request], Response], *steps: Response | float):
        self.normal = normal
        self.steps = list(steps)
        self.hits = 0
        self._lock = threading.Lock()

    def __call__(self, req: Request) -> Response:
        with self._lock:
            self.hits += 1
            step = self.steps.pop(0) if self.steps else None
        if isinstance(step, Response):
            return step
        if isinstance(step, int | float):
            time.sleep(step)  # past the client's timeout: it has given up and retried
        return self.normal(req)

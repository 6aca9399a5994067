"""`python -m worker` as production runs it (a subprocess): Prometheus metrics from the SDK
runtime, JSON logs with workflow/activity ids, and a SIGTERM that lets an in-flight activity
finish instead of cancelling it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import asyncpg
import httpx
import pytest
from temporalio.api.enums.v1 import EventType

from devstack.harness.fixture_server import FixtureServer, Request, Response
from devstack.harness.process import free_port as _free_port
from learnflow import REPO_ROOT
from learnflow.contracts import IngestSourceInput
from tests.conftest import TEST_JSON, unique_id
from tests.helpers.polling import eventually

pytestmark = [pytest.mark.temporal]


class WorkerProcess:
    """`python -m worker` with its own environment; stderr (the JSON log) goes to a file."""

    def __init__(self, env: dict[str, str], args: list[str], log_path: Path):
        self.log_path = log_path
        self.metrics_port = _free_port()
        self.prefix = unique_id("wq") + "-"
        full_env = {**os.environ, **env}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "worker",
                "--metrics-bind",
                f"127.0.0.1:{self.metrics_port}",
                "--task-queue-prefix",
                self.prefix,
                *args,
            ],
            env=full_env,
            stdout=subprocess.DEVNULL,
            stderr=open(log_path, "wb"),  # noqa: SIM115
        )

    def log_lines(self) -> list[dict]:
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    out.append(json.loads(line))
        return out

    def logged(self, event: str) -> bool:
        return any(e.get("event") == event for e in self.log_lines())

    async def metrics(self) -> str:
        async with httpx.AsyncClient() as http:
            return (await http.get(f"http://127.0.0.1:{self.metrics_port}/metrics")).text

    async def wait_exit(self, seconds: float) -> int:
        return await asyncio.wait_for(asyncio.to_thread(self.proc.wait), seconds)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _worker_env(temporal_server, **extra: str) -> dict[str, str]:
    return {"TEMPORAL_ADDRESS": temporal_server.address, **extra}


async def test_metrics_endpoint_and_clean_sigterm_exit(temporal_server, tmp_path):
    worker = WorkerProcess(_worker_env(temporal_server), ["--queue", "default"], tmp_path / "w.log")
    try:

        async def serving_metrics() -> bool:
            if worker.proc.poll() is not None:
                raise AssertionError(f"worker exited: {worker.log_path.read_text()[-2000:]}")
            try:
                body = await worker.metrics()
                # the worker's per-queue series appear once its pollers run
                return f'task_queue="{worker.prefix}default"' in body
            except httpx.HTTPError:
                return False

        await eventually(serving_metrics, "GET /metrics shows the worker's series", 30)
        body = await worker.metrics()
        assert "# TYPE temporal_" in body
        assert "temporal_request" in body and "temporal_num_pollers" in body

        # the compose file's health check probes the same endpoint
        probe = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "deploy/healthcheck.py", "http",
             f"http://127.0.0.1:{worker.metrics_port}/metrics"],
            cwd=REPO_ROOT,
            timeout=30,
        )  # fmt: skip
        assert probe.returncode == 0

        started = next(e for e in worker.log_lines() if e.get("event") == "worker.started")
        assert started["queues"] == [f"{worker.prefix}default"]
        assert started["level"] == "info" and "timestamp" in started

        worker.proc.send_signal(signal.SIGTERM)
        assert await worker.wait_exit(30) == 0
        assert worker.logged("worker.stopping") and worker.logged("worker.stopped")
    finally:
        worker.kill()


@pytest.mark.postgres
async def test_sigterm_lets_the_in_flight_activity_finish(
    temporal_server, temporal_client, postgres_dsn, tmp_path
):
    """SIGTERM while fetch_source_pages waits on a slow upstream: the worker stops polling,
    the activity completes (not cancelled), then the process exits 0."""
    from learnflow.db.migrate import migrate

    conn = await asyncpg.connect(postgres_dsn)
    try:
        await migrate(conn)
    finally:
        await conn.close()

    entered, release = threading.Event(), threading.Event()
    courses = (TEST_JSON / "mitxonline_courses.json").read_bytes()
    programs = (TEST_JSON / "mitxonline_programs.json").read_bytes()

    def slow_courses(_req: Request) -> Response:
        entered.set()
        release.wait(60)  # the upstream answers only after the test has sent SIGTERM
        return Response(200, courses, {"Content-Type": "application/json"})

    with FixtureServer() as upstream:
        upstream.route("/api/v2/courses/", slow_courses)
        upstream.route("/api/v2/programs/", Response(200, programs, {}))
        env = _worker_env(
            temporal_server,
            DATABASE_URL=postgres_dsn,
            DATA_DIR=str(tmp_path / "data"),
            MITX_ONLINE_BASE_URL=upstream.base_url,
            HTTP_ALLOW_PRIVATE_HOSTS="true",
            QDRANT_URL="",
            QDRANT_PATH="",
            BLOB_STORE_URL="",
        )
        worker = WorkerProcess(
            env, ["--queue", "default", "--graceful-shutdown-seconds", "30"], tmp_path / "w.log"
        )
        handle = None
        try:
            await eventually(
                lambda: asyncio.to_thread(worker.logged, "worker.started"), "worker started", 30
            )
            handle = await temporal_client.start_workflow(
                "IngestSourceWorkflow",
                IngestSourceInput(source="mitxonline"),
                id=unique_id("graceful"),
                task_queue=f"{worker.prefix}default",
            )
            assert await asyncio.to_thread(entered.wait, 30), "fetch never reached the upstream"

            worker.proc.send_signal(signal.SIGTERM)
            await eventually(
                lambda: asyncio.to_thread(worker.logged, "worker.stopping"), "shutdown began", 10
            )
            assert worker.proc.poll() is None, "exited with an activity in flight"
            release.set()
            assert await worker.wait_exit(30) == 0

            events = [e async for e in handle.fetch_history_events()]
            fetch = next(
                e
                for e in events
                if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
                and e.activity_task_scheduled_event_attributes.activity_type.name
                == "fetch_source_pages"
            )
            outcome = [
                e.event_type
                for e in events
                if e.event_type
                in (
                    EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
                    EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
                    EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED,
                    EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
                )
                and (
                    e.activity_task_completed_event_attributes.scheduled_event_id
                    or e.activity_task_failed_event_attributes.scheduled_event_id
                )
                == fetch.event_id
            ]
            assert outcome == [EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED]

            # the activity's own log line carries the workflow and activity ids
            done = next(e for e in worker.log_lines() if e.get("event") == "fetch.done")
            assert done["workflow_id"] == handle.id
            assert done["activity_type"] == "fetch_source_pages"
            assert done["activity_id"]
        finally:
            release.set()
            worker.kill()
            if handle is not None:
                with contextlib.suppress(Exception):
                    await handle.terminate("test done")

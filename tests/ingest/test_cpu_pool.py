"""activities/cpu_pool.py: INGEST_CPU_WORKERS=N runs the CPU work in other processes, 0 inline."""

from __future__ import annotations

import os

import pytest

from activities import cpu_pool
from learnflow.settings import reset_settings


@pytest.fixture
def workers(monkeypatch):
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

"""A process pool for the CPU-bound parts of activities (parsing and transforming pages).

Activities stay async on the worker's event loop; the pure CPU work runs in other processes, so
it uses every core and never holds the loop (workflow tasks, heartbeats and Postgres I/O go on
meanwhile). The pool starts its processes with forkserver: forking the worker itself would copy
a process that runs gRPC threads (Temporal's client), which gRPC does not survive.

`INGEST_CPU_WORKERS=N` runs N processes; 0, the default, runs the same
functions in a thread of the worker: bench.ingest at 10k on 2 shared cores measured no gain
from the pool (#17).
"""

from __future__ import annotations

import asyncio
import atexit
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from learnflow.settings import get_settings

T = TypeVar("T")

_pool: ProcessPoolExecutor | None = None


def _workers() -> int:
    wanted = get_settings().ingest_cpu_workers
    return (os.cpu_count() or 1) if wanted is None else wanted


def _get_pool(workers: int) -> ProcessPoolExecutor:
    global _pool
    if _pool is None:
        ctx = multiprocessing.get_context("forkserver")
        # the children import the transforms once, not per page
        ctx.set_forkserver_preload(["activities.ingest_cpu"])
        _pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
    return _pool


def pooled() -> bool:
    """Whether run_cpu uses other processes (they then need the worker's environment)."""
    return _workers() > 0


async def run_cpu(fn: Callable[..., T], *args: Any) -> T:
    """fn(*args) in the pool (fn and args picklable), or in a thread of this process when the
    pool is off: never on the event loop itself, where a page's transform (up to a second of
    CPU) would hold up the worker's workflow tasks, heartbeats and other activities' I/O (the
    thread gives the loop the GIL back every switch interval)."""
    workers = _workers()
    if workers <= 0:
        return await asyncio.to_thread(fn, *args)
    loop = asyncio.get_running_loop()
    try:
        return await loop.run_in_executor(_get_pool(workers), fn, *args)
    except BrokenProcessPool:
        # A child died (OOM, killed): start a new pool; the activity's retry does the page again.
        shutdown()
        raise


def shutdown() -> None:
    global _pool
    if _pool is not None:
        _pool.shutdown(wait=False, cancel_futures=True)
        _pool = None


atexit.register(shutdown)

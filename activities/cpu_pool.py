"""A process pool for the CPU-bound parts of activities (parsing and transforming pages).

Activities stay async on the worker's event loop; the pure CPU work runs in other processes, so
it uses every core and never holds the loop (workflow tasks, heartbeats and Postgres I/O go on
meanwhile). The pool starts its processes with forkserver: forking the worker itself would copy
a process that runs gRPC threads (Temporal's client), which gRPC does not survive.

`INGEST_CPU_WORKERS=N` runs N processes; 0 runs the same functions in a thread of the worker.
Unset, the pool has one process fewer than the usable CPUs (none on one, at most
DEFAULT_MAX_PROCESSES): the worker's
own process keeps a core for its event loop, Postgres I/O and the keyword index's writes, which
on 2 cores were what the transforms' thread competed with for the GIL (#17; bench.ingest at 10k,
quiet machine, interleaved: 0 → 1 process, see README). `warm()` starts the processes with the
worker, so the first page does not wait for the forkserver and its imports.
"""

from __future__ import annotations

import asyncio
import atexit
import multiprocessing
import os
import select
import signal
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from learnflow.settings import get_settings

T = TypeVar("T")

_pool: ProcessPoolExecutor | None = None
_pool_lock = threading.Lock()  # warm()'s thread and the event loop may both start the pool


# The unset default's ceiling: each pool process keeps its own index of context pages (up to
# `ingest_cpu.INDEXED_BYTES_KEPT`) and its own imports, so a worker on a large host does not
# start one per core; past a few, more worker processes (Temporal shares the pages) scale it.
DEFAULT_MAX_PROCESSES = 4


def usable_cpus() -> int:
    """The CPUs this process may run on (a container's or a taskset's cpuset, not the host's)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def pool_size() -> int:
    """How many processes the pool runs (0: the work runs in a thread of this process).
    Unset: one fewer than the usable CPUs, at most DEFAULT_MAX_PROCESSES."""
    wanted = get_settings().ingest_cpu_workers
    if wanted is None:
        return max(min(usable_cpus() - 1, DEFAULT_MAX_PROCESSES), 0)
    return wanted


def _get_pool(workers: int) -> ProcessPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            ctx = multiprocessing.get_context("forkserver")
            # the children import the transforms once, not per page
            ctx.set_forkserver_preload(["activities.ingest_cpu"])
            _pool = ProcessPoolExecutor(
                max_workers=workers,
                mp_context=ctx,
                initializer=_serve_worker,
                initargs=(os.getpid(),),
            )
        return _pool


def _serve_worker(worker_pid: int) -> None:
    """A pool process's set-up. Ctrl-C reaches the terminal's whole process group and the
    worker stops its pool itself (`shutdown`): a child that took the SIGINT would print a
    KeyboardInterrupt traceback mid-task, so it ignores it. And it exits with the worker: a
    worker killed outright (SIGKILL, OOM) never closes the task queue its children wait on,
    and each child holds the forkserver's and the resource tracker's pipes open, so without
    this the three of them outlive it for good."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(
        target=_exit_with, args=(worker_pid,), name="exit-with-worker", daemon=True
    ).start()


def _exit_with(worker_pid: int) -> None:
    try:
        watched = os.pidfd_open(worker_pid)  # readable once the process has exited
    except OSError:  # already gone
        os._exit(0)
    select.select([watched], [], [])
    os._exit(0)


def _started() -> None:
    """A no-op for a pool process to run: it exists and has imported the transforms."""


def warm() -> threading.Thread | None:
    """Start the pool's processes in the background (a thread: starting the forkserver blocks
    for its imports, ~0.5 s), so that a worker's first page does not pay for it. None when the
    pool is off. The returned thread is a daemon; join it to wait until the processes run."""
    workers = pool_size()
    if workers <= 0:
        return None

    def start() -> None:
        try:
            pool = _get_pool(workers)
            for done in [pool.submit(_started) for _ in range(workers)]:
                done.result()
        except (RuntimeError, BrokenProcessPool):
            pass  # shut down meanwhile, or a child died: the first page starts a pool again

    thread = threading.Thread(target=start, name="cpu-pool-warm", daemon=True)
    thread.start()
    return thread


def process_ids() -> list[int]:
    """The pids of the pool's running processes (none before its first use or `warm`)."""
    with _pool_lock:
        processes = dict(getattr(_pool, "_processes", None) or {})
    return sorted(p.pid for p in processes.values() if p.pid is not None)


def pooled() -> bool:
    """Whether run_cpu uses other processes (they then need the worker's environment)."""
    return pool_size() > 0


async def run_cpu(fn: Callable[..., T], *args: Any) -> T:
    """fn(*args) in the pool (fn and args picklable), or in a thread of this process when the
    pool is off: never on the event loop itself, where a page's transform (up to a second of
    CPU) would hold up the worker's workflow tasks, heartbeats and other activities' I/O (the
    thread gives the loop the GIL back every switch interval)."""
    workers = pool_size()
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
    with _pool_lock:
        if _pool is not None:
            _pool.shutdown(wait=False, cancel_futures=True)
            _pool = None


atexit.register(shutdown)

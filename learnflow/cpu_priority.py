"""Background CPU work yields the cores to the catalog path.

The embedding pass catches up on its own queue, off the catalog's critical path (#17), but in a
worker that serves both queues (`learn up`, one host) its encoder still takes a core while the
catalog's last pages load: a new resource then waits for its keyword index behind vectors that
nobody waits for yet. The encoder's threads therefore run at a lower scheduling priority (a
higher nice value, per thread on Linux): they get every cycle the catalog path leaves idle and
yield the rest. Raising the nice value needs no privilege; nothing ever lowers it again, so the
threads that do it serve background work only.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

# Nice steps added to a background thread. CFS weighs nice 10 at ~1/10 of nice 0, so the
# catalog path wins a contended core while an idle core still goes to the encoder.
BACKGROUND_NICE_INCREMENT = 10
_MAX_NICE = 19


def this_thread_nice() -> int:
    """The calling thread's nice value (Linux schedules threads one by one); 0 where unknown."""
    try:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    except (AttributeError, OSError):
        return 0


def lower_this_thread(increment: int = BACKGROUND_NICE_INCREMENT) -> None:
    """Add `increment` to the calling thread's nice value (at most 19). Threads it creates
    afterwards inherit the value. Best effort: where the platform has no per-thread priority,
    the thread keeps its own."""
    if increment <= 0:
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(
            os.PRIO_PROCESS, tid, min(_MAX_NICE, os.getpriority(os.PRIO_PROCESS, tid) + increment)
        )
    except (AttributeError, OSError):
        pass


class ProcessThreads:
    """A thread pool made on first use in each process: a forked child has none of its
    parent's threads, so it makes its own. `initializer(*initargs)` runs in each new thread."""

    def __init__(
        self,
        workers: int,
        name: str,
        initializer: Callable[..., object] | None = None,
        initargs: tuple = (),
    ):
        self._workers = workers
        self._name = name
        self._initializer = initializer
        self._initargs = initargs
        self._pool: ThreadPoolExecutor | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None or self._pid != os.getpid():
                self._pool = ThreadPoolExecutor(
                    self._workers,
                    thread_name_prefix=self._name,
                    initializer=self._initializer,
                    initargs=self._initargs,
                )
                self._pid = os.getpid()
            return self._pool

    async def run(self, fn: Callable[..., T], *args) -> T:
        """`fn(*args)` in one of the pool's threads, awaited from the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self.executor(), fn, *args)


def background_threads(
    workers: int, name: str, increment: int = BACKGROUND_NICE_INCREMENT
) -> ProcessThreads:
    """Threads that run at the background priority (`lower_this_thread(increment)`)."""
    return ProcessThreads(workers, name, lower_this_thread, (increment,))

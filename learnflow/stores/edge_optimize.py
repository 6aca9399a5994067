"""Optimizing an embedded qdrant-edge shard off the calling process.

qdrant-edge holds the GIL through `EdgeShard.optimize`: a 1 ms ticker thread in the same process
did not run for 6.4 s of a 6.7 s optimize (10k points), i.e. the whole worker stopped meanwhile:
another embed pass's encoder between batches, the event loop, heartbeats. So the optimize runs in
a child process on the shard, closed in the owner meanwhile (one process may open a shard: its
WAL is locked); the child dies with its parent, so a killed worker leaves no second writer.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from functools import wraps
from pathlib import Path

_CHILD = """
import ctypes, os, signal, sys
ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
if os.getppid() != int(sys.argv[2]):
    sys.exit("edge optimize: the parent is gone")
import qdrant_edge
shard = qdrant_edge.EdgeShard.load(sys.argv[1])
shard.optimize()
shard.flush()
shard.close()
"""


def optimize_in_child(path: Path) -> None:
    """Optimize the (closed) shard at `path` in a child process; raise if it failed."""
    child = subprocess.run(  # noqa: S603 - this interpreter, our own code, our own path
        [sys.executable, "-c", _CHILD, str(path), str(os.getpid())],
        capture_output=True,
        text=True,
    )
    if child.returncode:
        raise RuntimeError(f"edge optimize of {path} failed: {child.stderr.strip()[-2000:]}")


class ShardSwap:
    """Reads share the shard; closing it for the child's optimize waits for them and holds new
    ones back until it is open again (they waited as long before: the optimize held the GIL)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._closed = False

    def is_closed(self) -> bool:
        return self._closed

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._closed)
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def closed(self) -> Iterator[None]:
        with self._cond:
            self._closed = True
            self._cond.wait_for(lambda: self._readers == 0)
        try:
            yield
        finally:
            with self._cond:
                self._closed = False
                self._cond.notify_all()


def reads_shard(method: Callable) -> Callable:
    """A store method that reads its shard: it waits while the shard is closed for an optimize
    (`self._swap`). Not nested: a read inside a read could wait for a swap waiting for it."""

    @wraps(method)
    def read(self, *args, **kwargs):
        with self._swap.reading():
            return method(self, *args, **kwargs)

    return read

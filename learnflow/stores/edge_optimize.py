"""Optimizing an embedded qdrant-edge shard off the calling process, off the reads' path.

qdrant-edge holds the GIL through `EdgeShard.optimize`: a 1 ms ticker thread in the same process
did not run for 6.4 s of a 6.7 s optimize (10k points), i.e. the whole worker stopped meanwhile:
another embed pass's encoder between batches, the event loop, heartbeats. So the optimize runs in
a child process, on a copy of the flushed shard (`<shard>.optimizing`; one process may open a
shard: its WAL is locked), while the owner keeps answering reads from the shard it has open;
only the swap of the optimized copy into place holds reads back (closing and loading the shard).
The child dies with the thread that started it (PR_SET_PDEATHSIG), so a killed worker leaves no
second writer, and a crash at any point leaves a shard `recover` puts right on the next load.
`DeferredOptimize` runs it after the passes, in the background (`EdgeVectorStore.optimize_soon`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from functools import wraps
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

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


def staging(path: Path) -> Path:
    """Where the optimized copy of the shard at `path` is built."""
    return path.with_name(path.name + ".optimizing")


def retired(path: Path) -> Path:
    """Where the shard at `path` waits for deletion while its optimized copy moves in."""
    return path.with_name(path.name + ".retired")


def recover(path: Path, *, tidy: bool = True) -> None:
    """Finish or undo an optimize a crash interrupted: a staging copy beside the shard was not
    swapped in yet (dropped: the shard is whole); one in place of the shard, the shard retired,
    was caught between the swap's two renames after its child succeeded (moved in); a retired
    shard left behind is deleted (unless not `tidy`: only what the shard's load needs)."""
    stage, old = staging(path), retired(path)
    if stage.exists() and not path.exists() and old.exists():
        stage.rename(path)  # the child had succeeded: the swap's first rename was done
    if not path.exists() and old.exists():
        old.rename(path)  # the swap failed after its first rename, with no copy to move in
    if tidy:
        shutil.rmtree(stage, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


class OptimizeChild:
    """One optimize in a child process, which another thread may kill (the store's close)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self.killed = False

    def run(self, path: Path) -> None:
        """Optimize the shard at `path` (opened by no one else); raise if it failed or was
        killed."""
        with self._lock:
            if self.killed:
                raise RuntimeError(f"edge optimize of {path} cancelled")
            self._proc = subprocess.Popen(  # noqa: S603 - this interpreter, our code, our path
                [sys.executable, "-c", _CHILD, str(path), str(os.getpid())],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
        _, err = self._proc.communicate()
        if self._proc.returncode:
            raise RuntimeError(f"edge optimize of {path} failed: {err.strip()[-2000:]}")

    def kill(self) -> None:
        """Stop the child now (its copy is dropped; the served shard is untouched)."""
        with self._lock:
            self.killed = True
            if self._proc is not None and self._proc.poll() is None:
                self._proc.kill()


def _copy_sparse(src: Path, dst: Path) -> None:
    """A shard's files are mostly holes (10k points: 307 MB apparent, 65 MB written: the WAL's
    and the payload indexes' preallocated pages): GNU cp keeps them holes, 0.03 s where
    copytree wrote every zero, 0.15 s."""
    cp = shutil.which("cp")
    if cp is None:
        shutil.copytree(src, dst)
        return
    subprocess.run(  # noqa: S603 - coreutils, our own paths
        [cp, "-a", "--reflink=auto", "--sparse=always", str(src), str(dst)],
        check=True,
        capture_output=True,
    )


def optimize_copy(path: Path, child: OptimizeChild) -> Path:
    """Copy the flushed shard at `path` to its staging directory and optimize the copy there.
    The caller holds the writes back meanwhile; reads of the open shard go on."""
    stage = staging(path)
    shutil.rmtree(stage, ignore_errors=True)
    try:
        _copy_sparse(path, stage)
        child.run(stage)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return stage


def swap_in(path: Path) -> None:
    """Put the optimized copy in the closed shard's place: two renames (`recover` completes
    what a crash between them left); the retired shard is deleted by the next `recover`."""
    path.rename(retired(path))
    staging(path).rename(path)


class DeferredOptimize:
    """Optimize later, in a thread of its own, once no pass is writing (`writing`) and the
    writes have been quiet for `quiet` seconds, as a Qdrant server's optimizer indexes in the
    background: an embed pass ends when its points are written (searchable, by brute force over
    unindexed segments), and two passes writing side by side are optimized once, after both
    (a quiet timer alone started it mid-pass when a loaded machine slowed a pass's pages).
    `optimize(child)` takes the writes' lock itself; `cancel` kills its child (its copy is
    dropped) and waits for the thread."""

    def __init__(self, optimize: Callable[[OptimizeChild], None], quiet: float) -> None:
        self._optimize = optimize
        self._quiet = quiet
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._wanted = False
        self._cancelled = False
        self._last_write = 0.0
        self._writers = 0
        self._child: OptimizeChild | None = None

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """A pass writes meanwhile: the optimize waits for it to end."""
        with self._cond:
            self._writers += 1
        try:
            yield
        finally:
            with self._cond:
                self._writers -= 1
                self._last_write = time.monotonic()
                self._cond.notify_all()

    def wrote(self) -> None:
        with self._cond:
            self._last_write = time.monotonic()

    def request(self) -> None:
        with self._cond:
            self._wanted = True
            if self._thread is None:
                # a daemon: at exit the child dies with it, and `recover` tidies the next load
                self._thread = threading.Thread(target=self._run, name="edge-optimize", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def pending(self) -> bool:
        with self._cond:
            return self._thread is not None

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._wanted and not self._cancelled:
                    wait = self._last_write + self._quiet - time.monotonic()
                    if wait <= 0 and not self._writers:
                        break
                    self._cond.wait(wait if wait > 0 else None)
                if not self._wanted or self._cancelled:
                    self._thread = None
                    self._cond.notify_all()
                    return
                self._wanted = False
                child = self._child = OptimizeChild()
            try:
                self._optimize(child)
            except Exception as exc:  # the writes stay marked: the next request tries again
                log.warning("edge_optimize.failed", error=str(exc)[-500:], cancelled=child.killed)
            finally:
                with self._cond:
                    self._child = None

    def cancel(self) -> None:
        """Stop a waiting or running optimize and wait for its thread; later requests run."""
        with self._cond:
            self._cancelled = True
            self._wanted = False
            child = self._child
            self._cond.notify_all()
        if child is not None:
            child.kill()
        with self._cond:
            self._cond.wait_for(lambda: self._thread is None)
            self._cancelled = False


class ShardSwap:
    """Reads share the shard; closing it to swap in the optimized copy waits for them and holds
    new ones back until it is open again (a close, two renames and a load)."""

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
    """A store method that reads its shard: it waits while the shard is closed for a swap
    (`self._swap`). Not nested: a read inside a read could wait for a swap waiting for it."""

    @wraps(method)
    def read(self, *args, **kwargs):
        with self._swap.reading():
            return method(self, *args, **kwargs)

    return read

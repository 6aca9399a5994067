"""Child processes `learn up` starts, so that none outlives it: after a clean stop, a Ctrl-C, a
SIGTERM, or a `kill -9` of `learn up` itself.

- `spawn` starts a server in its own session (a terminal's Ctrl-C reaches only `learn up`, which
  stops it in order) with a parent-death signal (`setpriv --pdeathsig`, util-linux), so the kernel
  ends it when `learn up` dies without running any code. setpriv also drops root for PostgreSQL
  without Python's `preexec_fn` (which would force a fork while other threads run).
- `DataDirLock` makes one `learn up` own a data directory; `flock` is released by the kernel when
  the owner dies, so a crash never leaves the directory locked.
- `ChildRecord` remembers what was started (pid and start time) in the data directory, so a run
  after a crash can end what the crash left running before it reuses the ports and files.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import IO

import psutil


class StackError(RuntimeError):
    """`learn up` cannot start here; the message says what to do (printed as one line)."""


def spawn(
    args: list[str],
    *,
    log: IO[bytes] | int = subprocess.DEVNULL,
    user: str | None = None,
    death_signal: str = "TERM",
    env: dict[str, str] | None = None,
) -> subprocess.Popen:
    """Start `args` in a new session, ended with `death_signal` when its parent thread dies.

    The signal follows the thread that spawned the child (Linux semantics): call this from the
    main thread. Without setpriv (not Debian), the child is only ended by `stop_process`."""
    prefix: list[str] = []
    if setpriv := shutil.which("setpriv"):
        prefix = [setpriv, "--pdeathsig", death_signal]
        if user:
            prefix += [f"--reuid={user}", f"--regid={user}", "--init-groups"]
        prefix.append("--")
    elif user:
        prefix = ["runuser", "-u", user, "--"]
    return subprocess.Popen(
        [*prefix, *args],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=env,
    )


def stop_process(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 5.0) -> None:
    """Signal a spawned child's process group, wait up to `timeout`, then SIGKILL the group."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=timeout)
    kill_group(proc.pid)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=2)


def kill_group(pgid: int) -> None:
    """SIGKILL every process left in a group (PostgreSQL backends outlive a killed postmaster)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


class DataDirLock:
    """An exclusive `flock` on DATA_DIR/learn-up.lock for as long as `learn up` runs."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "learn-up.lock"
        self._fd: int | None = None

    def acquire(self) -> DataDirLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise StackError(
                f"another `learn up` (pid {holder}) is running on {self.path.parent}: "
                "stop it first, or pass another --data-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None


class ChildRecord:
    """DATA_DIR/run/children.json: name -> pid and create time of what `learn up` started."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "run" / "children.json"

    def _read(self) -> dict[str, dict]:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}

    def add(self, name: str, pid: int) -> None:
        entries = self._read()
        with contextlib.suppress(psutil.Error):
            entries[name] = {"pid": pid, "created": psutil.Process(pid).create_time()}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(entries))

    def remove(self, name: str) -> None:
        entries = self._read()
        if entries.pop(name, None) is not None:
            self.path.write_text(json.dumps(entries))

    def end_leftovers(self, timeout: float = 5.0) -> list[str]:
        """End what a crashed `learn up` left running (the same pid *and* start time, so a
        reused pid is never touched); returns their names. Call with the data dir locked."""
        ended = []
        for name, entry in self._read().items():
            try:
                proc = psutil.Process(entry["pid"])
                if abs(proc.create_time() - entry["created"]) > 0.5:
                    continue
                if proc.status() == psutil.STATUS_ZOMBIE:
                    continue  # it died with its parent; only its exit status is left
                group = os.getpgid(proc.pid)
            except (psutil.Error, KeyError, ProcessLookupError, TypeError):
                continue
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                if time.monotonic() > deadline:
                    kill_group(group)
                    break
                time.sleep(0.05)
            ended.append(name)
        self.path.unlink(missing_ok=True)
        return ended

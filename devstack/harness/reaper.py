"""Services a test run starts end when the run's process dies, however it dies.

Fixture teardown and `atexit` run only when Python exits normally: a SIGKILL, a SIGTERM, or a
second Ctrl-C during a slow teardown left PostgreSQL, the Temporal dev server and the JVMs running
with PPID 1. A parent-death signal (`children.spawn`) is no cure here: it follows the *thread*
that started the child, and the harness is also used from worker threads.

So a watcher process holds the other end of a pipe that only this process writes. When this
process dies, the kernel closes the pipe; the watcher reads end-of-file and ends every process
group still registered (SIGTERM, then SIGKILL after a grace period). A group is registered with
its leader's start time, so a pid reused since is never signalled. The watcher runs in its own
session, so the terminal's Ctrl-C does not reach it, and it is this file run as a script (stdlib
and psutil only), so it needs no import path.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time

import psutil

GRACE_SECONDS = 10.0

_lock = threading.Lock()
_watcher: subprocess.Popen | None = None
_groups: dict[int, tuple[float, str]] = {}


def watch(pid: int, *, group: bool = True) -> None:
    """End process group `pid` (a child started with `start_new_session=True`), or with
    `group=False` the process alone, when this process dies without having called
    `unwatch(pid)`."""
    try:
        created = psutil.Process(pid).create_time()
    except psutil.Error:
        return  # already gone
    kind = "group" if group else "process"
    with _lock:
        _groups[pid] = (created, kind)
        _send(f"+{pid} {created!r} {kind}")


def unwatch(pid: int) -> None:
    """The group was stopped in order: forget it (its pid may be reused later)."""
    with _lock:
        if _groups.pop(pid, None) is not None:
            _send(f"-{pid}")


def _send(line: str) -> None:
    global _watcher
    if _watcher is None or _watcher.poll() is not None:
        _watcher = _start_watcher()  # it is given every registration, this one included
        return
    try:
        assert _watcher.stdin is not None
        _watcher.stdin.write(f"{line}\n".encode())
        _watcher.stdin.flush()
    except OSError:
        _watcher = _start_watcher()


def _start_watcher() -> subprocess.Popen:
    watcher = subprocess.Popen(
        [sys.executable, __file__, str(os.getpid())],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    assert watcher.stdin is not None
    for pid, (created, kind) in _groups.items():
        watcher.stdin.write(f"+{pid} {created!r} {kind}\n".encode())
    watcher.stdin.flush()
    return watcher


def _is_leader(pid: int, created: float) -> bool:
    try:
        proc = psutil.Process(pid)
        return abs(proc.create_time() - created) < 0.5 and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _signal(pid: int, kind: str, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if kind == "group":
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)


def _end_groups(groups: dict[int, tuple[float, str]]) -> None:
    alive = {pid: ck for pid, ck in groups.items() if _is_leader(pid, ck[0])}
    verified = dict(alive)
    for pid, (_created, kind) in verified.items():
        _signal(pid, kind, signal.SIGTERM)
    deadline = time.monotonic() + GRACE_SECONDS
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = {pid: ck for pid, ck in alive.items() if _is_leader(pid, ck[0])}
    for pid, (_created, kind) in verified.items():
        # A group's leader may be gone while the group lives on (PostgreSQL backends).
        if kind == "group" or pid in alive:
            _signal(pid, kind, signal.SIGKILL)


def _main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    groups: dict[int, tuple[float, str]] = {}
    for raw in sys.stdin.buffer:
        line = raw.decode().strip()
        if line.startswith("+"):
            pid, created, kind = line[1:].split()
            groups[int(pid)] = (float(created), kind)
        elif line.startswith("-"):
            groups.pop(int(line[1:]), None)
    _end_groups(groups)


if __name__ == "__main__":
    _main()

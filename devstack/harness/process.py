"""What the JVM services of the harness (OpenSearch, Tika) share: a child process in its own
session and run directory, launched, polled until ready, and stopped whole (process group,
console log, run directory)."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from devstack.harness import reaper


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kb(pid: int) -> int | None:
    """Resident memory of a process (kB), from /proc."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


class ServiceProcess:
    """Base of a throwaway local service. Subclasses set `command`, `url`, `run_dir` and call
    `_launch` then `_wait_until`; `stop()` undoes everything, and is registered at exit so an
    interrupted test run leaves no JVM behind."""

    name = "service"
    stop_timeout = 15.0
    start_error: type[Exception] = RuntimeError

    def __init__(self, *, startup_timeout: float, keep_dir: bool) -> None:
        self.startup_timeout = startup_timeout
        self.keep_dir = keep_dir
        self.url: str | None = None
        self.port: int | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.run_dir: Path | None = None
        self.start_seconds: float | None = None
        self.command: list[str] = []
        self._console = None

    def _launch(self, cwd: Path, env: dict[str, str] | None = None) -> None:
        assert self.run_dir is not None
        self._console = open(self.run_dir / "console.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.command,
            cwd=str(cwd),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._console,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        reaper.watch(self.proc.pid)  # a killed test run must not leave the JVM behind
        atexit.register(self.stop)

    def _log_tail(self, n: int = 60) -> str:
        if not self.run_dir:
            return ""
        with contextlib.suppress(OSError):
            lines = (self.run_dir / "console.log").read_text(errors="replace").splitlines()
            return "\n".join(lines[-n:])
        return ""

    def _wait_until(self, ready: Callable[[], bool], what: str, poll: float) -> None:
        """Poll `ready` until it holds; the process exiting or the start-up timeout raises
        `start_error` with the command and the log's tail."""
        assert self.proc is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise self.start_error(
                    f"{self.name} exited with {self.proc.returncode} during start-up.\n"
                    f"command: {' '.join(self.command)}\n{self._log_tail()}"
                )
            if ready():
                return
            time.sleep(poll)
        raise self.start_error(
            f"{self.name}: {what} within {self.startup_timeout:.0f}s\n{self._log_tail()}"
        )

    def rss_kb(self) -> int | None:
        """Resident memory of the service's process (kB)."""
        return rss_kb(self.proc.pid) if self.proc else None

    def stop(self, timeout: float | None = None) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=self.stop_timeout if timeout is None else timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
            reaper.unwatch(proc.pid)
            with contextlib.suppress(Exception):
                atexit.unregister(self.stop)
        if self._console is not None:
            self._console.close()
            self._console = None
        if self.run_dir is not None and not self.keep_dir:
            shutil.rmtree(self.run_dir, ignore_errors=True)
            self.run_dir = None

    def start(self) -> str:
        raise NotImplementedError

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

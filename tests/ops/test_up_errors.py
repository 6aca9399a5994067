"""`learn up` where it cannot start: one line that says what to do, never a traceback, and
nothing started. Real `learn up` processes; each fails before any service would start."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from devstack.console import SafeStream, row_state
from devstack.harness.children import DataDirLock
from devstack.harness.process import free_port
from tests.ops.conftest import clean_env


def _up(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable, "-m", "learn_cli.cli", "up", "--no-trigger",
            "--data-dir", str(data_dir),
            "--temporal-port", str(free_port()), "--ui-port", str(free_port()),
            *args,
        ],
        cwd=data_dir.parent,
        env=clean_env(GRPC_ADDRESS=f"127.0.0.1:{free_port()}"),
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip


def _one_error_line(out: subprocess.CompletedProcess) -> str:
    assert out.returncode == 1, (out.stdout, out.stderr)
    assert "Traceback" not in out.stdout + out.stderr, out.stderr
    errors = [line for line in out.stdout.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, out.stdout
    return errors[0]


def test_a_directory_of_other_things_is_refused_untouched(tmp_path):
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "todo.txt").write_text("mine")
    line = _one_error_line(_up(foreign))
    assert "is not a learnflow data directory (it holds todo.txt)" in line, line
    assert sorted(p.name for p in foreign.iterdir()) == ["todo.txt"]


def test_a_data_dir_another_learn_up_holds_is_refused(tmp_path):
    data_dir = tmp_path / "state"
    data_dir.mkdir()
    lock = DataDirLock(data_dir).acquire()  # as a running `learn up` holds it
    try:
        line = _one_error_line(_up(data_dir))
    finally:
        lock.release()
    assert f"another `learn up` (pid {os.getpid()}) is running on {data_dir}" in line, line
    assert not (data_dir / "learnflow.env").exists()  # the other stack's file is not touched


def test_a_taken_port_names_its_holder_and_the_option(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = _one_error_line(_up(tmp_path / "state", "--ui-port", str(port)))
    assert f"port {port} is in use by python" in line and "--ui-port" in line, line


def test_console_output_survives_a_closed_pipe():
    read_end, write_end = os.pipe()
    stream = SafeStream(os.fdopen(write_end, "w"))
    os.close(read_end)  # `| tee` ended by the same Ctrl-C
    stream.write("Stopping…\n")  # EPIPE: swallowed, the descriptor now points at /dev/null
    stream.write("more\n")
    stream.flush()
    assert stream.broken and not stream.isatty()


def test_run_states_for_people():
    assert row_state("running", None) == "running"
    assert row_state("completed", "ok") == "ok"
    assert row_state("completed", "prune_refused") == "refused"
    assert row_state("completed", "skipped") == "skipped"
    assert row_state("completed", "failed_partial") == "failed"
    assert row_state("failed", None) == "failed"
    assert row_state("terminated", "ok") == "failed"

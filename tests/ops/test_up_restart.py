"""`learn up --demo` as an operator meets it in the first hour (issue #13's "done when").

Real processes: `learn up` with its stdout on a pipe. It is stopped with SIGINT after the test
has closed its end of that pipe (the `| tee` that the same Ctrl-C ended), and every process it
started must be gone within 10 s. Started again on the same data directory, it serves the same
resources through gRPC from the indexes it kept; then it is `kill -9`ed (its children must die
with it), started again, and searched again. One stack per step, on the same ports and directory.
The search service runs as two processes on one port (SEARCH_PROCESSES=2), so the stops cover
the spawned server processes too.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import psutil
import pytest

from devstack.harness import reaper
from devstack.harness.process import free_port
from tests.helpers.polling import eventually_sync
from tests.ops.conftest import clean_env

pytestmark = [pytest.mark.e2e, pytest.mark.temporal, pytest.mark.postgres, pytest.mark.s3]

FIRST_RUNS_S = 180.0  # the demo's first runs on a loaded 2-core machine (about 30 s when idle)
START_S = 90.0  # a restart until gRPC answers
STOP_BOUND_S = 10.0  # the bound: every child gone within 10 s of the signal
QUERY = "differential equations"
SEARCH_PROCESSES = 2


@dataclass
class Up:
    """One `learn up --demo` process whose stdout the test reads until it closes the pipe."""

    proc: subprocess.Popen
    lines: list[str] = field(default_factory=list)
    _closing: threading.Event = field(default_factory=threading.Event)
    _reader: threading.Thread | None = None

    def start_reading(self) -> None:
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        fd = self.proc.stdout.fileno()
        buffer = b""
        while not self._closing.is_set():
            ready, _, _ = select.select([fd], [], [], 0.1)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            buffer += chunk
            *done, buffer = buffer.split(b"\n")
            self.lines.extend(line.decode(errors="replace") for line in done)
        self.proc.stdout.close()  # the reader is gone: the next write gets EPIPE

    def close_pipe(self) -> None:
        self._closing.set()
        assert self._reader is not None
        self._reader.join(timeout=5)
        assert self.proc.stdout.closed

    def output(self) -> str:
        return "\n".join(self.lines[-60:])

    def wait_for_line(self, text: str, seconds: float) -> None:
        def printed() -> bool:
            assert self.proc.poll() is None, f"learn up exited:\n{self.output()}"
            return any(text in line for line in self.lines)

        eventually_sync(printed, lambda: f"{text!r}:\n{self.output()}", seconds, every=0.2)

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.proc.pid).children(recursive=True)


def _gone_within(procs: list[psutil.Process], seconds: float) -> list[psutil.Process]:
    """The processes still alive after `seconds` (zombies count as gone: nothing runs)."""
    deadline = time.monotonic() + seconds
    alive = procs
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        time.sleep(0.05)
    return alive


def _search(grpc_address: str, query: str, fresh: bool = False) -> tuple[int, Any]:
    """(total, sorted readable ids; a tuple with `fresh`: a connection of its own, which the
    kernel may give to any of the server processes)."""
    from search_service.pb import search_pb2, search_pb2_grpc

    options = [("grpc.use_local_subchannel_pool", 1)] if fresh else []
    with grpc.insecure_channel(grpc_address, options=options) as channel:
        stub = search_pb2_grpc.SearchServiceStub(channel)
        resp = stub.SearchResources(
            # keyword: its total does not depend on the page size (hybrid's candidate pool does)
            search_pb2.SearchResourcesRequest(
                query=query, mode=search_pb2.SEARCH_MODE_KEYWORD, page_size=50
            ),
            timeout=10,
        )
    ids = sorted(r.resource.readable_id for r in resp.results)
    return resp.total, tuple(ids) if fresh else ids


def _search_when_serving(up: Up, grpc_address: str, seconds: float) -> tuple[int, list[str]]:
    def search() -> tuple[int, list[str]]:
        assert up.proc.poll() is None, f"learn up exited:\n{up.output()}"
        return _search(grpc_address, QUERY)

    return eventually_sync(
        search, lambda: f"gRPC serving:\n{up.output()}", seconds, 0.2, retry_on=(grpc.RpcError,)
    )


def _learn(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "learn_cli.cli", *args],
        cwd=data_dir.parent,
        env=clean_env(LEARNFLOW_ENV_FILE=str(data_dir / "learnflow.env"), **env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def _status_agrees(data_dir: Path, console: list[str]) -> None:
    """`learn status` after the first runs: what the console's first-runs view said, for
    every kind of source (archives, OCW, news and events included)."""
    out = _learn(data_dir, "status", "--data-dir", str(data_dir))
    assert out.returncode == 0, out.stderr
    rows = {
        cells[0]: cells
        for line in out.stdout.split("content archives")[0].splitlines()
        if line.startswith("│") and (cells := [c.strip() for c in line.strip("│").split("│")])
    }
    for source in ("canvas", "ocw"):  # loaded only by archive runs: no etl_run row
        assert rows[source][2] == "ok", rows[source]
    for source in ("mitpe", "medium_news", "ol_events"):  # news and events are feed items
        published, total = rows[source][6].split("/")
        assert int(published) > 0 and int(total) > 0, rows[source]
    # a first run has nothing to prune: nothing refused, here or on the console
    assert not any(cells[2] == "prune_refused" for cells in rows.values()), out.stdout
    assert not any(" refused" in line for line in console), "\n".join(console)


def _cli_search_pages(data_dir: Path, grpc_address: str, total: int) -> None:
    """`learn search`: "6–10 of N" on page 2, each result's URL; an apostrophe is no crash."""
    out = _learn(data_dir, "search", QUERY, "--mode", "keyword", "--limit", "5", "--page", "2")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == f"6–{min(10, total)} of {total}", out.stdout
    assert any(line.strip().startswith(("http://", "https://")) for line in lines), out.stdout
    quoted = _learn(data_dir, "search", "women's leadership")
    assert "Traceback" not in quoted.stderr, quoted.stderr
    if quoted.returncode:  # the engine may refuse the query: one clear line, not a stack
        assert quoted.stderr.startswith("error: ") and len(quoted.stderr.splitlines()) == 1
    else:
        first_line = quoted.stdout.splitlines()[0]
        assert first_line == "no results" or " of " in first_line, quoted.stdout


@pytest.fixture
def launch(tmp_path):
    """Start `learn up --demo` on one data directory and one set of ports, as often as asked.

    The data directory is not under pytest's base temp: any pytest run on the machine resets
    that base to mode 0700, which the unprivileged PostgreSQL of a root `learn up` cannot cross."""
    data_dir = Path(tempfile.mkdtemp(prefix="learnflow-up-test-")) / "state"
    temporal_port, ui_port, grpc_port = free_port(), free_port(), free_port()
    webhook_port = free_port()
    grpc_address = f"127.0.0.1:{grpc_port}"
    started: list[Up] = []

    def start() -> Up:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "learn_cli.cli", "up", "--demo",
                "--data-dir", str(data_dir),
                "--temporal-port", str(temporal_port), "--ui-port", str(ui_port),
                "--webhook-port", str(webhook_port),
            ],
            cwd=tmp_path,
            env=clean_env(GRPC_ADDRESS=grpc_address, SEARCH_PROCESSES=str(SEARCH_PROCESSES)),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        reaper.watch(proc.pid)
        up = Up(proc)
        up.start_reading()
        started.append(up)
        return up

    start.grpc_address = grpc_address  # type: ignore[attr-defined]
    start.data_dir = data_dir  # type: ignore[attr-defined]
    start.webhook_url = f"http://127.0.0.1:{webhook_port}"  # type: ignore[attr-defined]
    yield start
    for up in started:  # a failed test leaves nothing running
        if up.proc.poll() is None:
            for child in up.descendants():
                child.kill()
            up.proc.kill()
            up.proc.wait(timeout=10)
    shutil.rmtree(data_dir.parent, ignore_errors=True)


def test_up_stops_on_a_closed_pipe_and_restarts_after_a_stop_and_a_crash(launch):
    grpc_address = launch.grpc_address

    # 1. A fresh directory: the first runs finish and the search finds the demo's courses.
    first = launch()
    first.wait_for_line("First runs done", FIRST_RUNS_S)
    assert not any("fork_posix" in line for line in first.lines), first.output()
    assert any("Temporal UI" in line for line in first.lines), first.output()
    assert any(f"({SEARCH_PROCESSES} server processes)" in line for line in first.lines)
    total, ids = _search(grpc_address, QUERY)
    assert total > 0 and ids, (total, ids)
    # the demo's first runs indexed after the servers started: every process finds them
    assert {_search(grpc_address, QUERY, fresh=True) for _ in range(8)} == {(total, tuple(ids))}
    children = first.descendants()
    names = {p.name() for p in children}
    assert {"temporal", "postgres"} <= names, names
    _status_agrees(launch.data_dir, first.lines)
    # the banner's webhook address answers (the demo signs with a secret of its own)
    assert any(launch.webhook_url in line for line in first.lines), first.output()
    assert httpx.get(f"{launch.webhook_url}/healthz", timeout=5).status_code == 200

    # 2. SIGINT with stdout a closed pipe: the process and every child end within the bound.
    first.close_pipe()
    stopped_at = time.monotonic()
    first.proc.send_signal(signal.SIGINT)
    first.proc.wait(timeout=STOP_BOUND_S)
    alive = _gone_within(children, STOP_BOUND_S - (time.monotonic() - stopped_at))
    took = time.monotonic() - stopped_at
    assert not alive, [(p.pid, p.name()) for p in alive]
    assert first.proc.returncode == 0, first.proc.returncode
    assert not (launch.data_dir / "learnflow.env").exists()  # it described a stack now gone
    print(f"stopped in {took:.1f}s")

    # 3. Again on the same directory: the same resources, from the indexes kept on disk; the
    # same upstream (the demo's, on the port it had: its URLs are in the catalog), so the
    # first runs of the restart rewrite and unpublish nothing.
    second = launch()
    assert _search_when_serving(second, grpc_address, START_S) == (total, ids)
    second.wait_for_line("First runs done", FIRST_RUNS_S)
    reruns = [line for line in second.lines if "(upserted " in line]
    assert reruns and all("(upserted 0, unpublished 0" in line for line in reruns), reruns
    env_file = (launch.data_dir / "learnflow.env").read_text()
    assert f"LEARNFLOW_UP_PID={second.proc.pid}" in env_file
    _cli_search_pages(launch.data_dir, grpc_address, total)

    # 4. kill -9: no code of learn up runs, its children still die (parent-death signal).
    children = second.descendants()
    second.proc.kill()
    second.proc.wait(timeout=5)
    alive = _gone_within(children, STOP_BOUND_S)
    assert not alive, [(p.pid, p.name()) for p in alive]

    # 5. After the crash: starts over the leftovers (lock, pid files, env file) and finds the same.
    third = launch()
    assert _search_when_serving(third, grpc_address, START_S) == (total, ids)
    third.proc.send_signal(signal.SIGINT)
    third.proc.wait(timeout=STOP_BOUND_S)
    assert third.proc.returncode == 0, third.output()

"""`learn up --demo` end to end, as a user runs it: a subprocess with its own data directory.

Issue #8's "done when": the Temporal UI shows every schedule and at least one completed run per
source with its counts as search attributes. This asks Temporal's visibility the same question the
UI asks (`TemporalScheduledById = ...`), for every schedule in the table, then checks that
`learn status --data-dir DIR` (run from another directory) finds the stack and lists every source.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devstack.harness import reaper
from devstack.harness.process import free_port
from learnflow import search_attributes as sa
from tests.helpers.polling import eventually
from tests.ops.conftest import clean_env

pytestmark = [pytest.mark.e2e, pytest.mark.temporal, pytest.mark.postgres, pytest.mark.s3]

# Everything the demo runs, on a loaded CI machine; a healthy run takes well under a minute.
DEADLINE_S = 150.0


@dataclass
class DemoStack:
    data_dir: Path
    temporal_address: str
    log: Path
    proc: subprocess.Popen

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _stop(proc: subprocess.Popen, grace_s: float = 60.0) -> None:
    """Ctrl-C, as a user stops it (the stack stops what it started); kill its group if stuck."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def demo_stack(tmp_path_factory) -> Iterator[DemoStack]:
    root = tmp_path_factory.mktemp("demo-stack")
    data_dir, log = root / "state", root / "learn-up.log"
    temporal_port, ui_port, grpc_port = free_port(), free_port(), free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "learn_cli.cli",
                "up",
                "--demo",
                "--data-dir",
                str(data_dir),
                "--temporal-port",
                str(temporal_port),
                "--ui-port",
                str(ui_port),
                "--webhook-port",
                str(free_port()),
            ],
            cwd=root,
            env=clean_env(GRPC_ADDRESS=f"127.0.0.1:{grpc_port}"),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: Ctrl-C reaches only the stack
        )
    reaper.watch(proc.pid)
    stack = DemoStack(data_dir, f"127.0.0.1:{temporal_port}", log, proc)
    try:
        yield stack
    finally:
        _stop(proc)


async def _connect(stack: DemoStack, deadline: float):
    from temporalio.service import RPCError

    from worker import connect

    async def connected():
        assert stack.proc.poll() is None, f"learn up exited early:\n{stack.log_tail()}"
        return await connect(stack.temporal_address)

    return await eventually(
        connected,
        lambda: f"Temporal of the demo stack:\n{stack.log_tail()}",
        within=deadline - asyncio.get_running_loop().time(),
        every=0.5,
        retry_on=(RPCError, RuntimeError, OSError),
    )


async def _completed_runs(client, query: str) -> list:
    return [wf async for wf in client.list_workflows(query)]


def _schedules():
    from learnflow.schedules import wanted_schedules
    from sources import all_schedules
    from worker import registered_workflow_types

    return wanted_schedules(set(registered_workflow_types()), all_schedules())


async def test_demo_runs_every_schedule_and_status_finds_the_stack(demo_stack, tmp_path):
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = started + DEADLINE_S
    client = await _connect(demo_stack, deadline)
    entries = _schedules()
    assert {e.schedule_id for e in entries} >= {
        "ingest/marketing_pages",
        "archives/canvas",
        "archives/edx",
        "archives/mitxonline",
        "archives/xpro",
    }
    queries = {
        e.schedule_id: f"TemporalScheduledById = '{e.schedule_id}' AND ExecutionStatus = 'Completed'"
        for e in entries
    }
    # OCW has no schedule (webhooks start it): the demo starts one run of its site itself.
    queries["demo/ocw"] = "WorkflowId = 'demo/ocw' AND ExecutionStatus = 'Completed'"
    done: dict[str, list] = {}

    async def every_schedule_ran() -> bool:
        assert demo_stack.proc.poll() is None, f"learn up exited:\n{demo_stack.log_tail()}"
        for key, query in queries.items():
            if key not in done and (runs := await _completed_runs(client, query)):
                done[key] = runs
        return len(done) == len(queries)

    await eventually(
        every_schedule_ran,
        lambda: f"a completed run of {sorted(set(queries) - set(done))}\n{demo_stack.log_tail()}",
        within=deadline - loop.time(),
        every=0.5,
    )
    took = loop.time() - started

    # Every source's run carries its source and counts as search attributes (what the UI lists).
    for entry in entries:
        if entry.source is None:
            continue  # embeddings and purge: no source, no per-source counts
        run = done[entry.schedule_id][0]
        attrs = run.typed_search_attributes
        assert attrs.get(sa.SOURCE) == entry.source, (entry.schedule_id, attrs)
        assert attrs.get(sa.OUTCOME), (entry.schedule_id, attrs)
        assert attrs.get(sa.UPSERTED) is not None, (entry.schedule_id, attrs)
        assert attrs.get(sa.UNPUBLISHED) is not None, (entry.schedule_id, attrs)
        if entry.workflow == "IngestArchivesWorkflow" or entry.source == "marketing_pages":
            # new demo archives and course pages (through the demo's proxy): files loaded
            assert attrs.get(sa.UPSERTED) > 0, (entry.schedule_id, attrs)
        if entry.workflow == "IngestSourceWorkflow":
            assert attrs.get(sa.QUARANTINED) == 0, (entry.schedule_id, attrs)
    # A source's index and embed children carry its Source too (the UI filters a whole run).
    # The embed child outlives its run (embed-async-v1): poll for it until the deadline.
    for child in ("IndexResourcesWorkflow", "EmbedResourcesWorkflow"):
        query = f"WorkflowType = '{child}' AND Source = 'mitxonline'"
        await eventually(
            lambda q=query: _completed_runs(client, q), query, deadline - loop.time(), every=0.5
        )
    ocw = done["demo/ocw"][0].typed_search_attributes
    assert ocw.get(sa.SOURCE) == "ocw" and ocw.get(sa.OUTCOME) == "ok", ocw
    assert ocw.get(sa.UPSERTED) > 0, ocw  # the demo's OCW site: its page and its file

    # `learn status --data-dir DIR` from another directory finds the stack the env file names.
    status = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "learn_cli.cli", "status", "--data-dir", str(demo_stack.data_dir)],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert status.returncode == 0, status.stderr
    listed = {line.split()[1] for line in status.stdout.splitlines() if line.startswith("│")}
    from sources import all_sources

    assert set(all_sources()) <= listed, status.stdout
    # A source's second schedule (mitpe's news and events, ovs's transcripts) has its own row
    # with its own last run; the catalog counts stay on the source's row.
    rows = {
        cells[0]: cells
        for line in status.stdout.split("content archives", 1)[0].splitlines()
        if line.startswith("│") and (cells := [c.strip() for c in line.strip("│").split("│")])
    }
    for entry in entries:
        if entry.workflow != "IngestSourceWorkflow":
            continue
        name = entry.schedule_id.removeprefix("ingest/")
        upserted = {
            str(r.typed_search_attributes.get(sa.UPSERTED)) for r in done[entry.schedule_id]
        }
        assert rows[name][2] == "ok" and rows[name][3] in upserted, (name, upserted, status.stdout)
        if name != entry.source:
            assert rows[name][6] == f"see {entry.source}", status.stdout
    # the archive runs (no etl_run rows) come from Temporal, with their counts
    assert "content archives" in status.stdout, status.stdout
    archive_rows = {
        line.split()[1]: line
        for line in status.stdout.split("content archives", 1)[1].splitlines()
        if line.startswith("│")
    }
    assert set(archive_rows) == {"canvas", "edx", "mitxonline", "xpro", "ocw"}, status.stdout
    assert all("completed" in row for row in archive_rows.values()), status.stdout
    print(f"demo: {len(done)} schedules/runs completed {took:.1f}s after Temporal answered")


async def test_demo_web_proxy_answers_https_pages_with_verified_tls(tmp_path, monkeypatch):
    """The marketing pages' GETs to real hosts reach the demo's proxy, over TLS the client
    verifies against the demo CA (not with verification turned off); other hosts stay refused."""
    from devstack.demo_web import DemoWebProxy
    from learnflow.http import PermanentHttpError, SourceHttp

    # a client made before (TLS contexts are shared per process) must not pin the old roots
    await SourceHttp({"learn.mit.edu"}).aclose()
    with DemoWebProxy(tmp_path) as proxy:
        for key, value in proxy.env().items():
            monkeypatch.setenv(key, value)
        async with SourceHttp({"learn.mit.edu"}, attempts=1) as http:
            body = await http.get_bytes("https://learn.mit.edu/courses/course-v1:MITxT+18.03x")
            with pytest.raises(PermanentHttpError, match="not among the source's hosts"):
                await http.get_bytes("https://example.org/")
        # the CA alone does not make a client trust the proxy: verification is on
        import httpx

        monkeypatch.delenv("SSL_CERT_FILE")
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            async with httpx.AsyncClient() as plain:
                await plain.get("https://learn.mit.edu/courses/x")
    assert b"<h1>course-v1:MITxT+18.03x</h1>" in body
    assert ("learn.mit.edu", "/courses/course-v1:MITxT+18.03x") in proxy.requests

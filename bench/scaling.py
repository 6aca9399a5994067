"""Scale-out benchmark: `python -m bench.scaling --resources N --json` (issue #17).

Temporal is the distributed engine: worker processes polling the same task queue share its
work. This runs the production topology as processes — `python -m worker --queue default` and
`python -m worker --queue embeddings`, as docker-compose.yml's services do — against a
Temporal dev server, a Postgres, one OpenSearch node (the keyword backend: tantivy's writer
belongs to one process) and the Qdrant REST stand-in (`devstack.harness.qdrant_rest`), and
ingests the same generated catalog (MITx Online + edX, as bench.ingest) once with 1 and once
with 2 processes per queue, each round on a fresh Postgres, Temporal and Qdrant and its own
OpenSearch index:

* `default`: both sources' IngestSourceWorkflow (fetch → transform → upsert → prune → keyword
  index) plus the all-sources index pass, run by the default-queue workers alone, until every
  resource is keyword-findable;
* `embeddings`: the embed children those runs started (one per source) are left waiting on the
  `embeddings` queue; then the embeddings workers start and the round waits for the children
  (every resource vector-findable). The default workers are stopped first, so each figure
  measures its own queue's processes.

`scaling.default` / `scaling.embeddings`: resources per second with 2 processes ÷ with 1. The
machine's cores are shared by the workers, Postgres, Temporal, OpenSearch and the Qdrant
stand-in, so the ratio says how much the stage is bound by one process rather than by the box.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


class WorkerProcess:
    """`python -m worker --queue Q` in its own process group, its output in a log file."""

    def __init__(self, queue: str, env: dict[str, str], log_path: Path):
        self.queue = queue
        self.log_path = log_path
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "worker", "--queue", queue],
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"worker --queue {self.queue} exited {self.proc.returncode}: {tail}")
        return "worker.started" in self.log_path.read_text(errors="replace")

    def stop(self, grace: float = 30.0) -> None:
        if self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


async def start_workers(
    queue: str, count: int, env: dict[str, str], logs: Path
) -> list[WorkerProcess]:
    """`count` worker processes on `queue`, returned once every one polls (deadline 120 s)."""
    workers = [WorkerProcess(queue, env, logs / f"worker-{queue}-{i}.log") for i in range(count)]
    deadline = time.monotonic() + 120
    while not all(w.ready() for w in workers):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{queue} workers not started within 120 s (logs in {logs})")
        await asyncio.sleep(0.2)
    return workers


def start_qdrant(logs: Path) -> tuple[subprocess.Popen, str]:
    from devstack.harness.process import free_port

    port = free_port()
    with open(logs / "qdrant.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "devstack.harness.qdrant_rest", "--port", str(port)],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    import urllib.request

    while True:
        try:
            urllib.request.urlopen(f"{url}/collections", timeout=2).read()
            return proc, url
        except OSError as exc:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"Qdrant stand-in did not start ({logs / 'qdrant.log'})"
                ) from exc
            time.sleep(0.2)


async def one_round(
    processes: int, base_env: dict[str, str], opensearch_url: str, work: Path
) -> dict[str, Any]:
    """Ingest the catalog with `processes` workers per queue on fresh services."""
    from bench.run_history import stage_times
    from devstack.harness.postgres import DebianPostgres
    from devstack.harness.temporal import DevServer
    from learnflow.contracts import (
        EmbedResult,
        IndexInput,
        IndexResult,
        IngestResult,
        IngestSourceInput,
    )
    from worker import connect

    here = work / f"round-{processes}"
    logs = here / "logs"
    logs.mkdir(parents=True)
    pg = DebianPostgres().start()
    temporal = DevServer(db_file=here / "temporal.db", log_file=logs / "temporal.log").start()
    qdrant, qdrant_url = start_qdrant(logs)
    workers: list[WorkerProcess] = []
    try:
        env = {
            **base_env,
            "DATABASE_URL": pg.dsn,
            "TEMPORAL_ADDRESS": temporal.address,
            "DATA_DIR": str(here / "data"),
            "BLOB_STORE_URL": str(here / "blobs"),
            "KEYWORD_BACKEND": "opensearch",
            "OPENSEARCH_URL": opensearch_url,
            "OPENSEARCH_INDEX": f"scaling{processes}",
            "QDRANT_URL": qdrant_url,
            "QDRANT_PATH": "",
        }
        # compose's `migrate` service, before the workers start
        await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "learn_cli.cli", "migrate"],
            cwd=REPO,
            env=env,
            check=True,
            capture_output=True,
        )
        client = await connect(temporal.address)
        load_average = [round(x, 2) for x in os.getloadavg()]

        workers = await start_workers("default", processes, env, logs)
        started = time.perf_counter()
        sources = ["mitxonline", "edx"]
        runs: list[IngestResult] = await asyncio.gather(
            *(
                client.execute_workflow(
                    "IngestSourceWorkflow",
                    IngestSourceInput(source=s),
                    id=f"bench/scaling/{s}",
                    task_queue="default",
                    result_type=IngestResult,
                )
                for s in sources
            )
        )
        rest = await client.execute_workflow(
            "IndexResourcesWorkflow",
            IndexInput(),
            id="bench/scaling/index-all",
            task_queue="default",
            result_type=IndexResult,
        )
        catalog_s = time.perf_counter() - started
        for w in workers:
            w.stop()

        workers = await start_workers("embeddings", processes, env, logs)
        started = time.perf_counter()
        embedded = 0
        for r in runs:
            if r.embed_workflow_id:
                handle = client.get_workflow_handle(r.embed_workflow_id, result_type=EmbedResult)
                embedded += (await handle.result()).embedded
        embed_s = time.perf_counter() - started
        loaded = sum(r.inserted + r.updated + r.unchanged for r in runs)
        stages: dict[str, float] = {}
        for wid in [f"bench/scaling/{s}" for s in sources] + ["bench/scaling/index-all"]:
            for name, seconds in (await stage_times(client, wid)).items():
                stages[name] = stages.get(name, 0.0) + seconds
        return {
            "processes": processes,
            "load_average": load_average,
            "default": {
                "resources": loaded,
                "indexed": sum(r.indexed for r in runs) + rest.indexed,
                "pages": sum(r.pages for r in runs),
                "outcomes": {r.source: r.outcome for r in runs},
                "seconds": round(catalog_s, 2),
                "resources_per_second": round(loaded / catalog_s, 1),
                # summed activity seconds (scheduled → completed, children included)
                "activity_seconds_by_stage": {k: round(v, 2) for k, v in sorted(stages.items())},
            },
            "embeddings": {
                "embedded": embedded,
                "seconds": round(embed_s, 2),
                "docs_per_second": round(embedded / embed_s, 1),
            },
        }
    finally:
        for w in workers:
            w.stop()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(qdrant.pid, signal.SIGTERM)
        qdrant.wait(timeout=10)
        temporal.stop()
        pg.stop()


async def run(n: int, page_size: int, encoder: str) -> dict[str, Any]:
    from bench.ingest import build_catalog, machine
    from devstack.harness.fixture_server import FixtureServer
    from devstack.harness.opensearch import OpenSearchNode
    from sources.edx_demo import install_edx
    from sources.mitxonline_demo import install_mitxonline

    catalog, total = build_catalog(n)
    work = Path(tempfile.mkdtemp(prefix="learnflow-bench-scaling-"))
    server = FixtureServer().start()
    node = OpenSearchNode()
    try:
        opensearch_url = node.start()
        base_env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "LEARNFLOW_ENV_FILE": "",
            "HTTP_ALLOW_PRIVATE_HOSTS": "true",
            "QDRANT_ENCODER": encoder,
            "WORKER_METRICS_BIND": "",
        }
        base_env.update(install_mitxonline(server, *catalog["mitxonline"], page_size=page_size))
        base_env.update(install_edx(server, *catalog["edx"], page_size=page_size))
        rounds = [await one_round(k, base_env, opensearch_url, work) for k in (1, 2)]
    finally:
        node.stop()
        server.stop()
    one, two = rounds

    def ratio(stage: str, key: str) -> float:
        return round(two[stage][key] / one[stage][key], 2)

    return {
        "benchmark": "scaling",
        "resources_requested": n,
        "resources_generated": total,
        "page_size": page_size,
        "encoder": encoder,
        "rounds": rounds,
        "scaling": {
            "default": ratio("default", "resources_per_second"),
            "embeddings": ratio("embeddings", "docs_per_second"),
        },
        "machine": machine(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, default=4000)
    parser.add_argument("--page-size", type=int, default=250)
    parser.add_argument("--encoder", default=os.environ.get("QDRANT_ENCODER", "minilm-int8"))
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    args = parser.parse_args(argv)
    from learnflow.logging import configure_logging

    configure_logging(level="WARNING")
    result = asyncio.run(run(args.resources, args.page_size, args.encoder))
    print(json.dumps(result, indent=None if args.json else 2))
    sys.stdout.flush()


if __name__ == "__main__":
    main()

"""Search under load while ingestion runs: N concurrent gRPC clients (one channel each) send mixed
keyword/vector/hybrid SearchResources calls for `seconds`, while MITx Online ingestions run
back to back through the real workflows. Every failed call is counted by status code.

Used by tests/search/test_grpc_load_and_bad_input.py (the `app` fixture, 20 s by default) and
standalone by the benchmark report, which runs the issue's 60 s:

    python -m tests.search.load --seconds 60 --json

Standalone, it starts its own stack (Temporal dev server, PostgreSQL, a fixture server at MITx
Online's paths, learnflow's workers and gRPC service in-process) and prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field

import grpc
import numpy as np

from search_service.pb import search_pb2 as pb
from search_service.pb import search_pb2_grpc

QUERIES = [
    "differential equations",
    "linear algebra",
    "calculus",
    "matrix methods",
    "fourier series",
    "eigenvalues",
    "introduction",
    "mathematics mit",
    "nonlinear systems",
    "laplace transform",
]
MODES = {
    "keyword": pb.SEARCH_MODE_KEYWORD,
    "vector": pb.SEARCH_MODE_VECTOR,
    "hybrid": pb.SEARCH_MODE_HYBRID,
}
CALL_TIMEOUT = 10.0


@dataclass
class LoadReport:
    clients: int
    seconds: float
    requests: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    by_mode: dict[str, int] = field(default_factory=dict)
    qps: float = 0.0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    ingestions: int = 0
    ingestion_outcomes: dict[str, int] = field(default_factory=dict)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


async def _client(
    address: str, stop_at: float, seed: int, latencies: list[float], modes: Counter, errors: Counter
) -> None:
    rng = random.Random(seed)
    async with grpc.aio.insecure_channel(address) as channel:
        stub = search_pb2_grpc.SearchServiceStub(channel)
        while time.monotonic() < stop_at:
            mode = rng.choice(list(MODES))
            request = pb.SearchResourcesRequest(
                query=rng.choice(QUERIES),
                mode=MODES[mode],
                page_size=rng.choice([5, 10, 20]),
                facets=["platform", "resource_type"] if mode == "keyword" else [],
            )
            start = time.perf_counter()
            try:
                await stub.SearchResources(request, timeout=CALL_TIMEOUT)
            except grpc.aio.AioRpcError as exc:
                errors[exc.code().name] += 1
            except Exception as exc:  # a client-side failure counts too
                errors[type(exc).__name__] += 1
            else:
                latencies.append(time.perf_counter() - start)
                modes[mode] += 1


async def run_load(
    address: str,
    seconds: float,
    clients: int = 16,
    ingest: Callable[[], Awaitable[str]] | None = None,
) -> LoadReport:
    """Load `address` for `seconds`; `ingest()` (returns an outcome) runs back to back meanwhile."""
    report = LoadReport(clients=clients, seconds=seconds)
    latencies: list[float] = []
    modes: Counter = Counter()
    errors: Counter = Counter()
    outcomes: Counter = Counter()
    started = time.monotonic()
    stop_at = started + seconds

    async def ingest_loop() -> None:
        assert ingest is not None
        while True:  # at least one ingestion, then as many as fit in the window
            outcomes[await ingest()] += 1
            if time.monotonic() >= stop_at:
                return

    tasks = [_client(address, stop_at, i, latencies, modes, errors) for i in range(clients)]
    if ingest is not None:
        tasks.append(ingest_loop())
    await asyncio.gather(*tasks)
    elapsed = time.monotonic() - started
    report.requests = len(latencies) + sum(errors.values())
    report.errors = dict(errors)
    report.by_mode = dict(modes)
    report.qps = round(len(latencies) / elapsed, 1)
    if latencies:
        ms = np.array(latencies) * 1000
        report.p50_ms = round(float(np.percentile(ms, 50)), 2)
        report.p95_ms = round(float(np.percentile(ms, 95)), 2)
        report.p99_ms = round(float(np.percentile(ms, 99)), 2)
        report.max_ms = round(float(ms.max()), 2)
    report.ingestions = sum(outcomes.values())
    report.ingestion_outcomes = dict(outcomes)
    return report


def ingest_with(client, task_queue: str = "default") -> Callable[[], Awaitable[str]]:
    """One MITx Online ingestion through the real workflow; returns its outcome."""
    from learnflow.contracts import IngestResult, IngestSourceInput

    async def ingest() -> str:
        result = await client.execute_workflow(
            "IngestSourceWorkflow",
            IngestSourceInput(source="mitxonline"),
            id=f"load/ingest/mitxonline/{uuid.uuid4().hex[:8]}",
            task_queue=task_queue,
            result_type=IngestResult,
        )
        return result.outcome

    return ingest


async def standalone(seconds: float, clients: int) -> dict:
    """Start a stack of real services, seed it with one ingestion, then load it."""
    import os
    import tempfile
    from pathlib import Path

    from devstack.harness.fixture_server import FixtureServer
    from devstack.harness.postgres import DebianPostgres
    from devstack.harness.temporal import DevServer
    from devstack.system import start_app
    from learnflow.settings import reset_settings
    from learnflow.stores import reset_stores
    from tests.conftest import mitxonline_routes

    with (
        tempfile.TemporaryDirectory(prefix="learnflow-load-") as tmp,
        DebianPostgres() as pg,
        DevServer(db_file=Path(tmp) / "temporal.db") as temporal,
        FixtureServer() as fixtures,
    ):
        mitxonline_routes(fixtures)
        os.environ.update(
            {
                "LEARNFLOW_ENV_FILE": "",
                "DATABASE_URL": pg.dsn,
                "TEMPORAL_ADDRESS": temporal.address,
                "DATA_DIR": str(Path(tmp) / "data"),
                "MITX_ONLINE_BASE_URL": fixtures.base_url,
                "HTTP_ALLOW_PRIVATE_HOSTS": "true",
                "GRPC_AUTH_ENABLED": "false",
                "QDRANT_PATH": "",
                "QDRANT_URL": "",
            }
        )
        reset_settings()
        await reset_stores()
        app = await start_app()
        try:
            ingest = ingest_with(app.client)
            seed = await ingest()
            report = await run_load(app.grpc_address, seconds, clients, ingest)
        finally:
            await app.stop()
            await reset_stores()
    out = asdict(report)
    out["seed_outcome"] = seed
    out["error_count"] = report.error_count
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--json", action="store_true", help="print one JSON object (default)")
    args = parser.parse_args(argv)
    result = asyncio.run(standalone(args.seconds, args.clients))
    print(json.dumps({"benchmark": "grpc_load_during_ingestion", **result}))
    sys.stdout.flush()
    # Temporal's Rust threads can abort interpreter finalisation (sdk-python#300).
    import os

    os._exit(0 if result["error_count"] == 0 else 1)


if __name__ == "__main__":
    main()

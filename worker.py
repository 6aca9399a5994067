"""Run learnflow's Temporal workers: `python worker.py [--queue default|edx_content|embeddings]...`.

One worker per task queue, mirroring MIT Learn's Celery workers (in production, one process per
queue: see docker-compose.yml). Production behaviour:

- SIGTERM/SIGINT shut down gracefully: pollers stop at once, in-flight activities get
  `graceful_shutdown_timeout` to finish (long ones heartbeat a resume cursor, so a retry after
  the timeout continues where they stopped). Keep the orchestrator's grace period longer
  (docker-compose `stop_grace_period`).
- Explicit tuning per queue (`TUNING`): slots, pollers, workflow cache, activity rate.
- Prometheus metrics from the SDK runtime (`--metrics-bind 0.0.0.0:9464` → GET /metrics).
- Structured JSON logs (learnflow.logging) carrying workflow/activity ids, secrets redacted.
"""

from __future__ import annotations

import argparse
import asyncio
import os

# The embedded Tika (native) forks `tesseract` probes while holding the GIL. With grpcio's fork
# support on (its default), the child runs gRPC's atfork handlers, which can deadlock before the
# exec; the parent then waits on the child's pipe for ever, GIL held, and the whole process hangs
# (seen in CI: a test stuck in a Canvas archive walk). No child of ours uses gRPC after a fork
# (they exec at once), so turn the handlers off. grpcio reads this when it loads: keep it above
# every import that can load grpc.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
import signal
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

import structlog
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker

from learnflow.contracts import ARCHIVE_QUEUE, DEFAULT_QUEUE, EMBEDDINGS_QUEUE, TASK_QUEUES

log = structlog.get_logger("worker")

# In-flight activities get this long after SIGTERM before they are cancelled.
DEFAULT_GRACEFUL_SHUTDOWN = timedelta(seconds=30)


def queue_registry() -> dict[str, tuple[list, list]]:
    """Workflows and activities each task queue serves, discovered from their modules.

    A module in `workflows/` lists `WORKFLOWS_BY_QUEUE = {queue: [WorkflowClass, ...]}`; a module
    in `activities/` lists `ACTIVITIES_BY_QUEUE = {queue: [activity_fn, ...]}`. Adding a flow is
    adding modules, not editing this file.
    """
    import importlib
    import pkgutil

    import activities
    import workflows

    registry: dict[str, tuple[list, list]] = {q: ([], []) for q in TASK_QUEUES}
    for package, attr, slot in (
        (workflows, "WORKFLOWS_BY_QUEUE", 0),
        (activities, "ACTIVITIES_BY_QUEUE", 1),
    ):
        for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            for queue, items in getattr(module, attr, {}).items():
                target = registry[queue][slot]
                target.extend(i for i in items if i not in target)
    return registry


def registered_workflow_types() -> dict[str, type]:
    """Every workflow type any queue serves, by its Temporal name.

    Our `@workflow.defn`s never pass `name=`, so the type name is the class name (recorded
    histories name them so; the replay suite fails if one diverges)."""
    out: dict[str, type] = {}
    for wfs, _ in queue_registry().values():
        for wf in wfs:
            out[wf.__name__] = wf
    return out


@dataclass(frozen=True)
class QueueTuning:
    """Worker knobs for one task queue, written out so capacity is a reviewed decision."""

    max_concurrent_activities: int
    max_concurrent_workflow_tasks: int
    max_concurrent_activity_task_polls: int = 4
    max_concurrent_workflow_task_polls: int = 4
    max_cached_workflows: int = 500
    # Per-worker cap on activity starts per second (protects rate-limited upstreams), None = no cap.
    max_activities_per_second: float | None = None

    def worker_kwargs(self) -> dict:
        return {
            "max_concurrent_activities": self.max_concurrent_activities,
            "max_concurrent_workflow_tasks": self.max_concurrent_workflow_tasks,
            "max_concurrent_activity_task_polls": self.max_concurrent_activity_task_polls,
            "max_concurrent_workflow_task_polls": self.max_concurrent_workflow_task_polls,
            "max_cached_workflows": self.max_cached_workflows,
            "max_activities_per_second": self.max_activities_per_second,
        }


# Explicit tuning per queue. default: many short HTTP/Postgres activities. edx_content: few heavy
# ones (download, unpack, Tika) that hold local disk and memory. embeddings: few, CPU- or
# API-bound (an LLM proxy has rate limits), capped at a steady start rate.
TUNING: dict[str, QueueTuning] = {
    DEFAULT_QUEUE: QueueTuning(max_concurrent_activities=16, max_concurrent_workflow_tasks=16),
    ARCHIVE_QUEUE: QueueTuning(
        max_concurrent_activities=2,
        max_concurrent_workflow_tasks=4,
        max_concurrent_activity_task_polls=2,
        max_cached_workflows=200,
    ),
    EMBEDDINGS_QUEUE: QueueTuning(
        max_concurrent_activities=2,
        max_concurrent_workflow_tasks=4,
        max_concurrent_activity_task_polls=2,
        max_cached_workflows=200,
        max_activities_per_second=20.0,
    ),
}


def build_workers(
    client: Client,
    queues: Sequence[str] = TASK_QUEUES,
    task_queue_prefix: str = "",
    graceful_shutdown_timeout: timedelta = DEFAULT_GRACEFUL_SHUTDOWN,
) -> list[Worker]:
    """One Worker per queue that has anything registered, tuned by `TUNING`."""
    registry = queue_registry()
    workers = []
    for queue in queues:
        wfs, acts = registry[queue]
        if not wfs and not acts:
            continue
        tuning = TUNING[queue]
        workers.append(
            Worker(
                client,
                task_queue=f"{task_queue_prefix}{queue}",
                workflows=wfs,
                activities=acts,
                # Sync (def) activities run here; async ones ignore it. One thread per slot.
                activity_executor=ThreadPoolExecutor(
                    max_workers=tuning.max_concurrent_activities,
                    thread_name_prefix=f"activity-{queue}",
                ),
                graceful_shutdown_timeout=graceful_shutdown_timeout,
                **tuning.worker_kwargs(),
            )
        )
    if DEFAULT_QUEUE in queues:
        # The default queue's page loads transform in the CPU pool: start its processes now,
        # not on the first page.
        from activities import cpu_pool

        cpu_pool.warm()
    return workers


def metrics_runtime(bind_address: str) -> Runtime:
    """An SDK runtime exporting Prometheus metrics (`temporal_*`) at http://<bind>/metrics.

    Must exist before the client: the runtime is fixed when the client connects.
    """
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=bind_address)))


async def connect(
    address: str, namespace: str = "default", *, runtime: Runtime | None = None
) -> Client:
    """A client with the data converter every worker, starter and replayer shares."""
    return await Client.connect(
        address, namespace=namespace, data_converter=pydantic_data_converter, runtime=runtime
    )


async def serve(workers: Sequence[Worker], stop: asyncio.Event) -> None:
    """Run the workers until `stop` is set, then shut them down gracefully."""
    runner = asyncio.gather(*(w.run() for w in workers))
    stopper = asyncio.ensure_future(stop.wait())
    done, _ = await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
    if runner in done:  # a worker died on its own (fatal poll error): surface it
        stopper.cancel()
        await runner
        return
    log.info("worker.stopping", queues=[w.task_queue for w in workers])
    # shutdown(): stop polling, wait up to graceful_shutdown_timeout for in-flight activities,
    # then cancel them (they see it through heartbeats) and wait for them to return.
    await asyncio.gather(*(w.shutdown() for w in workers))
    await runner


async def run_workers(
    address: str,
    namespace: str,
    queues: Sequence[str],
    *,
    metrics_bind: str = "",
    graceful_shutdown_timeout: timedelta = DEFAULT_GRACEFUL_SHUTDOWN,
    json_logs: bool = True,
    task_queue_prefix: str = "",
) -> None:
    from learnflow import search_attributes
    from learnflow.logging import configure_logging

    configure_logging(json=json_logs)
    runtime = metrics_runtime(metrics_bind) if metrics_bind else None
    client = await connect(address, namespace, runtime=runtime)
    # A production server (docker-compose) starts without our search attributes: add the missing.
    added = await search_attributes.register(client)
    workers = build_workers(
        client,
        queues,
        task_queue_prefix=task_queue_prefix,
        graceful_shutdown_timeout=graceful_shutdown_timeout,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "worker.started",
        queues=[w.task_queue for w in workers],
        namespace=namespace,
        metrics=f"http://{metrics_bind}/metrics" if metrics_bind else None,
        search_attributes_added=added,
        graceful_shutdown_seconds=graceful_shutdown_timeout.total_seconds(),
    )
    await serve(workers, stop)
    from activities import cpu_pool

    cpu_pool.shutdown()  # main() leaves by os._exit, past atexit
    log.info("worker.stopped", queues=[w.task_queue for w in workers])


def main(argv: Sequence[str] | None = None) -> None:
    from learnflow.settings import get_settings

    settings = get_settings()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--queue",
        action="append",
        choices=TASK_QUEUES,
        help="task queue (repeatable); default: all",
    )
    parser.add_argument("--address", default=settings.temporal_address)
    parser.add_argument("--namespace", default=settings.temporal_namespace)
    parser.add_argument(
        "--metrics-bind",
        default=settings.worker_metrics_bind,
        help="host:port for the Prometheus endpoint (empty: no metrics)",
    )
    parser.add_argument(
        "--graceful-shutdown-seconds",
        type=float,
        default=getattr(
            settings,
            "worker_graceful_shutdown_seconds",
            DEFAULT_GRACEFUL_SHUTDOWN.total_seconds(),
        ),
    )
    parser.add_argument("--console-logs", action="store_true", help="human logs instead of JSON")
    parser.add_argument(
        "--task-queue-prefix", default="", help="poll <prefix><queue> (staging, tests)"
    )
    args = parser.parse_args(argv)
    asyncio.run(
        run_workers(
            args.address,
            args.namespace,
            args.queue or TASK_QUEUES,
            metrics_bind=args.metrics_bind,
            graceful_shutdown_timeout=timedelta(seconds=args.graceful_shutdown_seconds),
            json_logs=not args.console_logs,
            task_queue_prefix=args.task_queue_prefix,
        )
    )
    # The SDK's Rust threads can abort interpreter finalisation (sdk-python#300): after a clean
    # shutdown, leave without it so the exit code says "clean".
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()

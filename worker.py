"""Run learnflow's Temporal workers: `python worker.py [--queue default|edx_content|embeddings]...`.

One worker per task queue, mirroring MIT Learn's Celery workers. SIGTERM/SIGINT shut down
gracefully: pollers stop, in-flight activities get `graceful_shutdown_timeout` to finish (long
ones heartbeat a resume cursor, so a retry continues where they stopped).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Sequence
from datetime import timedelta

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from learnflow.contracts import ARCHIVE_QUEUE, DEFAULT_QUEUE, EMBEDDINGS_QUEUE, TASK_QUEUES


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


# Explicit tuning per queue: the archive queue runs few, heavy activities (download, unpack, Tika).
TUNING = {
    DEFAULT_QUEUE: {"max_concurrent_activities": 8, "max_concurrent_workflow_tasks": 8},
    ARCHIVE_QUEUE: {"max_concurrent_activities": 2, "max_concurrent_workflow_tasks": 4},
    EMBEDDINGS_QUEUE: {"max_concurrent_activities": 2, "max_concurrent_workflow_tasks": 4},
}


def build_workers(
    client: Client, queues: Sequence[str] = TASK_QUEUES, task_queue_prefix: str = ""
) -> list[Worker]:
    registry = queue_registry()
    workers = []
    for queue in queues:
        wfs, acts = registry[queue]
        if not wfs and not acts:
            continue
        workers.append(
            Worker(
                client,
                task_queue=f"{task_queue_prefix}{queue}",
                workflows=wfs,
                activities=acts,
                graceful_shutdown_timeout=timedelta(seconds=30),
                **TUNING.get(queue, {}),
            )
        )
    return workers


async def connect(address: str, namespace: str = "default") -> Client:
    return await Client.connect(
        address, namespace=namespace, data_converter=pydantic_data_converter
    )


async def run_workers(address: str, namespace: str, queues: Sequence[str]) -> None:
    from learnflow.logging import configure_logging

    configure_logging()
    client = await connect(address, namespace)
    workers = build_workers(client, queues)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async def run_all() -> None:
        await asyncio.gather(*(w.run() for w in workers))

    runner = asyncio.create_task(run_all())
    await stop.wait()
    await asyncio.gather(*(w.shutdown() for w in workers))
    await runner


def main(argv: Sequence[str] | None = None) -> None:
    from learnflow.settings import get_settings

    settings = get_settings()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--queue",
        action="append",
        choices=TASK_QUEUES,
        help="task queue (repeatable); default: all",
    )
    parser.add_argument("--address", default=settings.temporal_address)
    parser.add_argument("--namespace", default=settings.temporal_namespace)
    args = parser.parse_args(argv)
    asyncio.run(run_workers(args.address, args.namespace, args.queue or TASK_QUEUES))


if __name__ == "__main__":
    main()

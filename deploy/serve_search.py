"""Run the gRPC search service on its own (production: one container, docker-compose `search`).

`learn up` runs it in-process with the workers; here it is alone, against the server-backed
stores (OpenSearch, Qdrant, Postgres). SIGTERM: health goes NOT_SERVING first so balancers
drain, then in-flight RPCs get the grace period (`RunningServer.stop`). `--processes N` (or
SEARCH_PROCESSES; 0 = one per core) serves the address from N processes
(`search_service.processes`); SIGTERM/SIGINT stop them all.
"""

from __future__ import annotations

import asyncio
import signal


async def serve(address: str, grace: float, processes: int | None = None) -> None:
    from learnflow.logging import configure_logging
    from learnflow.settings import get_settings
    from learnflow.stores import get_stores, reset_stores
    from search_service.processes import process_count, start_server_group

    configure_logging()
    # Handlers first: a SIGTERM that arrives while the server starts (health may already say
    # SERVING) still stops it gracefully instead of killing the process.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    stores = await get_stores()
    running = await start_server_group(
        stores, address, process_count(get_settings(), processes), grace=grace
    )
    await stop.wait()
    await running.stop(grace)
    await reset_stores()


def main() -> None:
    import argparse

    from learnflow.settings import get_settings

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--address", default=get_settings().grpc_address)
    parser.add_argument("--grace", type=float, default=10.0, help="seconds for in-flight RPCs")
    parser.add_argument(
        "--processes",
        type=int,
        default=None,
        help="server processes sharing the address (0 = one per core; default SEARCH_PROCESSES)",
    )
    args = parser.parse_args()
    asyncio.run(serve(args.address, args.grace, args.processes))


if __name__ == "__main__":
    main()

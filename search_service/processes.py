"""Serve the search service from several processes on one port (SO_REUSEPORT).

The Python part of a request (gRPC handling, protobuf building, score shaping) runs one at a
time per process (the GIL; the engines release it while they search); `SEARCH_PROCESSES`
(0 = one per core) servers share the address and the kernel spreads connections over them. The first server runs in the calling process with the
caller's stores (in `learn up`, beside the workers that write them); the others are spawned
fresh (never forked: a forked gRPC runtime is unsafe) and open their own stores from settings:
tantivy readers follow the writer's commits through the index's meta file, Postgres, OpenSearch
and a Qdrant server are shared services, and an embedded vector store is searched through the
first process (`shared_vectors.py`). Each process has the same auth interceptor, validation,
health service and page-token key. Stopping the group (or the parent dying) stops them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import multiprocessing
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import structlog

from learnflow.settings import Settings
from learnflow.stores.vector_serving import CONTENT_FILES, RESOURCES
from search_service.auth import AuthConfig
from search_service.server import RunningServer, auth_from_settings, start_server
from search_service.shared_vectors import ShareAddress, VectorShare, use_shared_stores

log = structlog.get_logger(__name__)

START_SECONDS = 120.0  # a process loads its stores and the query encoder before it answers


def process_count(settings: Settings, requested: int | None = None) -> int:
    """`requested` (or SEARCH_PROCESSES); 0 means one per core."""
    n = settings.search_processes if requested is None else requested
    return n if n > 0 else (os.cpu_count() or 1)


@dataclass(frozen=True)
class ChildSpec:
    """What a spawned server needs (pickled to it): where to listen, how to check callers, and
    where its stores come from (`stores_factory` "module:function", awaited with
    `factory_args`; with `share` set, its vector stores are the first process's)."""

    address: str
    auth: AuthConfig | None
    page_token_secret: bytes
    share: ShareAddress | None
    stores_factory: str
    factory_args: tuple = ()
    health_interval: float = 5.0
    grace: float = 5.0


@dataclass
class ServerGroup:
    """The in-process server and the spawned ones, all on `port`."""

    first: RunningServer
    port: int
    children: list[multiprocessing.process.BaseProcess] = field(default_factory=list)
    pipes: list[Connection] = field(default_factory=list)
    share: VectorShare | None = None

    @property
    def processes(self) -> int:
        return 1 + len(self.children)

    async def stop(self, grace: float = 5.0) -> None:
        """Every server drains (health NOT_SERVING, then `grace` for in-flight RPCs); a child
        still running after that is killed."""
        for child in self.children:
            if child.is_alive() and child.pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGTERM)
        await self.first.stop(grace)
        deadline = time.monotonic() + grace + 3
        for child in self.children:
            await asyncio.to_thread(child.join, max(0.1, deadline - time.monotonic()))
            if child.is_alive():
                log.warning("search_process.killed", pid=child.pid)
                child.kill()
                await asyncio.to_thread(child.join, 5)
        for pipe in self.pipes:
            pipe.close()
        if self.share is not None:
            self.share.close()


def _reserve(address: str) -> tuple[str, socket.socket]:
    """A concrete host:port for `address` (port 0 picks a free one), held by an unlistened
    SO_REUSEPORT socket until the servers have bound it so no other program takes it meanwhile."""
    host, _, port = address.rpartition(":")
    bare = host.strip("[]") or "0.0.0.0"  # noqa: S104 - an address without a host, as gRPC reads it
    family = socket.AF_INET6 if ":" in bare else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((bare, int(port)))
    return f"{host}:{sock.getsockname()[1]}", sock


def _embedded_vectors(settings: Settings) -> bool:
    return not settings.qdrant_url


async def start_server_group(
    stores: Any,
    address: str,
    processes: int,
    *,
    auth: AuthConfig | bool | None = True,
    content: Any = None,
    stores_factory: str = "search_service.processes:stores_from_settings",
    factory_args: tuple = (),
    health_interval: float = 5.0,
    grace: float = 5.0,
) -> ServerGroup:
    """Start `processes` servers on `address`: this process's with `stores`, the rest spawned
    (see the module docstring). With one process this is `start_server`."""
    settings = stores.settings
    if processes <= 1:
        first = await start_server(
            stores, address, auth=auth, content=content, health_interval=health_interval
        )
        return ServerGroup(first=first, port=first.port)
    auth_config = auth_from_settings(settings) if auth is True else (auth or None)
    from search_service.page_tokens import token_secret

    configured = settings.search_page_token_secret
    if auth_config is not None or (configured and configured.get_secret_value()):
        secret = token_secret(settings, auth_on=auth_config is not None)
    else:
        secret = os.urandom(32)  # no key configured: one random key for the whole group
    address, held = _reserve(address)
    group: ServerGroup | None = None
    try:
        first = await start_server(
            stores,
            address,
            auth=auth_config,
            content=content,
            health_interval=health_interval,
            reuse_port=True,
            page_token_secret=secret,
        )
        group = ServerGroup(first=first, port=first.port)
        if _embedded_vectors(settings):
            given = {(RESOURCES, stores.encoder_id): stores.vector}
            if content is not None:
                given[(CONTENT_FILES, stores.encoder_id)] = content.vector
            group.share = VectorShare(settings, given, asyncio.get_running_loop())
        spec = ChildSpec(
            address=address,
            auth=auth_config,
            page_token_secret=secret,
            share=group.share.address if group.share else None,
            stores_factory=stores_factory,
            factory_args=factory_args,
            health_interval=health_interval,
            grace=grace,
        )
        ctx = multiprocessing.get_context("spawn")
        for i in range(1, processes):
            ours, theirs = ctx.Pipe()
            child = ctx.Process(
                target=child_main, args=(spec, theirs), name=f"search-{i}", daemon=False
            )
            child.start()
            theirs.close()
            group.children.append(child)
            group.pipes.append(ours)
        for child, pipe in zip(group.children, group.pipes, strict=True):
            ready = await asyncio.to_thread(pipe.poll, START_SECONDS)
            message = pipe.recv() if ready else "no answer"
            if message != "ready":
                raise RuntimeError(f"search process {child.name} did not start: {message}")
    except BaseException:
        if group is not None:
            await group.stop(grace=0)
        raise
    finally:
        held.close()
    log.info("grpc.group_started", port=group.port, processes=group.processes)
    return group


# -- a spawned server ---------------------------------------------------------------------------


async def stores_from_settings() -> tuple[Any, Any]:
    """The stores a spawned server opens: `get_stores()` (start_server adds the content-file
    stores), with the first process's embedded vector stores (`use_shared_stores`)."""
    from learnflow.stores import get_stores

    return await get_stores(), None


def _factory(path: str):
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def child_main(spec: ChildSpec, parent: Connection) -> None:
    """Entry point of a spawned server process."""
    from learnflow.logging import configure_logging

    configure_logging()
    try:
        asyncio.run(_serve_child(spec, parent))
    except Exception as exc:
        log.exception("search_process.failed")
        with contextlib.suppress(OSError):
            parent.send(f"{type(exc).__name__}: {exc}")


async def _serve_child(spec: ChildSpec, parent: Connection) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def watch_parent() -> None:
        # The parent never writes again: EOF means it is gone (killed, os._exit): stop too.
        with contextlib.suppress(EOFError, OSError):
            parent.recv()
        loop.call_soon_threadsafe(stop.set)

    if spec.share is not None:
        use_shared_stores(spec.share)
    stores, content = await _factory(spec.stores_factory)(*spec.factory_args)
    running = await start_server(
        stores,
        spec.address,
        auth=spec.auth,
        content=content,
        health_interval=spec.health_interval,
        reuse_port=True,
        page_token_secret=spec.page_token_secret,
    )
    parent.send("ready")
    threading.Thread(target=watch_parent, daemon=True).start()
    log.info("search_process.started", pid=os.getpid(), address=spec.address)
    await stop.wait()
    await running.stop(spec.grace)
    for closable in (content, stores):
        close = getattr(closable, "close", None)
        if close is not None:
            with contextlib.suppress(Exception):
                await close()

"""The embedded vector stores of one process, searched from the other search processes.

An embedded qdrant-edge shard can be opened by one process only (its WAL is locked), and it
has no reader that follows another process's writes. With several search processes
(`processes.py`) the first one, which owns the stores (in `learn up` the one whose workers
write them), answers the others' vector searches over a Unix socket: `VectorShare` there,
`SharedVectorStore` (search, health, count; no writes) in each other process. Server-backed
Qdrant (QDRANT_URL) needs none of this: every process opens its own client.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import shutil
import tempfile
import threading
from dataclasses import dataclass
from multiprocessing.connection import Client, Connection, Listener
from typing import Any

import numpy as np
import structlog

log = structlog.get_logger(__name__)

# What another process may ask of a shared store: reads only, writes stay with the owner.
READ_METHODS = frozenset({"search", "healthy", "count"})
CALL_SECONDS = 30.0  # the owner's bound on one call (the caller's budget is usually smaller)


@dataclass(frozen=True)
class ShareAddress:
    """Where a `VectorShare` listens, and the key a caller proves it was given (picklable)."""

    path: str
    authkey: bytes
    names: tuple[str, ...]


class VectorShare:
    """Serve `stores` (name -> vector store) to other processes, one thread per connection;
    each call runs on the owner's event loop like its own searches."""

    def __init__(self, stores: dict[str, Any], loop: asyncio.AbstractEventLoop):
        self._stores = stores
        self._loop = loop
        self._dir = tempfile.mkdtemp(prefix="learnflow-vectors-")
        authkey = os.urandom(32)
        path = os.path.join(self._dir, "socket")
        self._listener = Listener(path, family="AF_UNIX", authkey=authkey)
        self.address = ShareAddress(path, authkey, tuple(stores))
        self._closed = False
        self._conns: list[Connection] = []
        threading.Thread(target=self._accept, name="vector-share", daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn = self._listener.accept()
            except Exception as exc:  # closed, or a caller without the key
                if not self._closed:
                    log.warning("vector_share.accept_failed", error=repr(exc))
                continue
            self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: Connection) -> None:
        with conn:
            while True:
                try:
                    name, method, args = conn.recv()
                except (EOFError, OSError):
                    return
                try:
                    if method not in READ_METHODS or name not in self._stores:
                        raise ValueError(f"{name}.{method} is not shared")
                    call = getattr(self._stores[name], method)(*args)
                    value = asyncio.run_coroutine_threadsafe(call, self._loop).result(CALL_SECONDS)
                    reply: tuple[str, Any] = ("ok", value)
                except Exception as exc:
                    reply = ("error", f"{type(exc).__name__}: {exc}")
                try:
                    conn.send(reply)
                except (EOFError, OSError):
                    return

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.close()
        shutil.rmtree(self._dir, ignore_errors=True)


class SharedVectorStore:
    """A read-only view of the owner's store `name`: connections are pooled, one per concurrent
    call (each call blocks a worker thread, as the embedded store's own searches do)."""

    def __init__(self, address: ShareAddress, name: str):
        self._address = address
        self._name = name
        self._idle: queue.SimpleQueue[Connection] = queue.SimpleQueue()

    def _call(self, method: str, *args: Any) -> Any:
        try:
            conn = self._idle.get_nowait()
        except queue.Empty:
            conn = Client(self._address.path, family="AF_UNIX", authkey=self._address.authkey)
        try:
            conn.send((self._name, method, args))
            status, value = conn.recv()
        except BaseException:
            conn.close()  # a half-used connection may hold a stale reply
            raise
        self._idle.put(conn)
        if status != "ok":
            raise RuntimeError(f"vector store (shared by the first search process): {value}")
        return value

    async def search(
        self,
        vector: np.ndarray,
        filters: dict[str, list[str]],
        limit: int,
        offset: int = 0,
        facets: list[str] | None = None,
    ) -> Any:
        vector = np.asarray(vector, dtype=np.float32)
        return await asyncio.to_thread(self._call, "search", vector, filters, limit, offset, facets)

    async def count(self) -> int:
        return await asyncio.to_thread(self._call, "count")

    async def healthy(self) -> bool:
        try:
            return bool(await asyncio.to_thread(self._call, "healthy"))
        except Exception:
            return False

    async def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return

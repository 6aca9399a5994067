"""The embedded vector stores of one process, searched from the other search processes.

An embedded qdrant-edge shard can be opened by one process only (its WAL is locked), and it
has no reader that follows another process's writes. With several search processes
(`processes.py`) the first one, which owns the stores (in `learn up` the one whose workers
write them), answers the others' vector searches over a Unix socket: `VectorShare` there,
`SharedVectorStore` (search, health, count; no writes) in each other process, where
`vector_serving.vector_store` hands them out for every (collection, encoder), the promoted
encoder's included. Server-backed Qdrant (QDRANT_URL) needs none of this: every process opens
its own client.
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

from learnflow.settings import Settings
from learnflow.stores.encoders import collection_name
from learnflow.stores.vector_serving import CONTENT_FILES, RESOURCES, vector_store

log = structlog.get_logger(__name__)

# What another process may ask of a shared store: reads only, writes stay with the owner.
READ_METHODS = frozenset({"search", "documents", "healthy", "count"})
CALL_SECONDS = 30.0  # the owner's bound on one call (the caller's budget is usually smaller)


@dataclass(frozen=True)
class ShareAddress:
    """Where a `VectorShare` listens, and the key a caller proves it was given (picklable)."""

    path: str
    authkey: bytes


class VectorShare:
    """Serve this process's vector stores to other processes, one thread per connection; each
    call runs on the owner's event loop like its own searches. A store is named by (what,
    encoder): one of `given` (the caller's own), else this process's `vector_store`."""

    def __init__(
        self,
        settings: Settings,
        given: dict[tuple[str, str], Any],
        loop: asyncio.AbstractEventLoop,
    ):
        self._settings = settings
        self._given = given
        self._loop = loop
        self._dir = tempfile.mkdtemp(prefix="learnflow-vectors-")
        authkey = os.urandom(32)
        path = os.path.join(self._dir, "socket")
        self._listener = Listener(path, family="AF_UNIX", authkey=authkey)
        self.address = ShareAddress(path, authkey)
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
                    (what, encoder), method, args = conn.recv()
                except (EOFError, OSError):
                    return
                try:
                    if method not in READ_METHODS or what not in (RESOURCES, CONTENT_FILES):
                        raise ValueError(f"{what}.{method} is not shared")
                    store = self._given.get((what, encoder)) or vector_store(
                        self._settings, what, encoder
                    )
                    call = getattr(store, method)(*args)
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
    """A read-only view of the owner's store of `encoder`'s `what` collection: connections are
    pooled, one per concurrent call (each call blocks a worker thread, as the embedded store's
    own searches do)."""

    def __init__(self, address: ShareAddress, what: str, encoder: str, collection: str = ""):
        self._address = address
        self._key = (what, encoder)
        self.collection = collection or f"{what}.{encoder}"
        self._idle: queue.SimpleQueue[Connection] = queue.SimpleQueue()

    def _call(self, method: str, *args: Any) -> Any:
        try:
            conn = self._idle.get_nowait()
        except queue.Empty:
            conn = Client(self._address.path, family="AF_UNIX", authkey=self._address.authkey)
        try:
            conn.send((self._key, method, args))
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
        documents: int | None = None,
    ) -> Any:
        vector = np.asarray(vector, dtype=np.float32)
        return await asyncio.to_thread(
            self._call, "search", vector, filters, limit, offset, facets, documents
        )

    async def documents(self, ids: list[int]) -> dict[int, dict[str, Any]]:
        return await asyncio.to_thread(self._call, "documents", list(ids))

    async def count(self) -> int:
        return await asyncio.to_thread(self._call, "count")

    async def healthy(self) -> bool:
        try:
            return bool(await asyncio.to_thread(self._call, "healthy"))
        except Exception:
            return False

    async def _refused(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the shared vector store is read-only: the first process writes")

    ensure_collection = upsert = delete = delete_where = optimize = optimize_soon = drop = _refused

    async def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


def use_shared_stores(address: ShareAddress) -> None:
    """In a spawned search process: every vector store this process asks for is the first
    process's, searched through `address`."""
    from learnflow.stores import vector_serving

    def factory(settings: Settings, what: str, encoder: str) -> SharedVectorStore:
        name = collection_name(settings.qdrant_collection_prefix, what, encoder)
        return SharedVectorStore(address, what, encoder, name)

    vector_serving.use_store_factory(factory)

"""A search server group over a small tantivy + qdrant-edge corpus in a directory, for
tests/search/test_processes.py: the stores of the first process and of the spawned ones, and a
`python -m tests.search.process_group_app DIR` entry point that serves until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from learnflow.search_doc import embedding_text, filter_values
from learnflow.settings import get_settings
from learnflow.stores import Stores
from learnflow.stores.encoders import HashingProjectionEncoder
from learnflow.stores.tantivy_index import TantivyKeywordIndex
from learnflow.stores.vector import EdgeVectorStore, VectorPoint, payload_for
from learnflow.stores.vector_serving import RESOURCES, configured_encoder, vector_store
from search_service.shared_vectors import SharedVectorStore

COLLECTION = "test.resources"


def make_stores(data_dir: Path, vector: Any, page_token_key: str = "") -> Stores:
    settings = get_settings()
    if page_token_key:  # auth on needs a configured key (not the group's random one)
        settings = settings.model_copy(
            update={"search_page_token_secret": SecretStr(page_token_key)}
        )
    return Stores(
        settings=settings,
        pool=None,  # type: ignore[arg-type]  # search RPCs only
        catalog=None,  # type: ignore[arg-type]
        keyword=TantivyKeywordIndex(data_dir / "keyword"),
        vector=vector,
        blobs=None,  # type: ignore[arg-type]
        _encoder=HashingProjectionEncoder(),
    )


def first_stores(data_dir: Path, page_token_key: str = "") -> Stores:
    """The owning process's stores: the index writer and the vector shard live here."""
    vector = EdgeVectorStore(path=str(data_dir / "qdrant"), collection=COLLECTION)
    return make_stores(data_dir, vector, page_token_key)


async def child_stores(data_dir: str) -> tuple[Stores, None]:
    """A spawned server's stores (`search_service.processes`): its own tantivy reader, the
    first process's vector shard (`vector_store` hands out the shared one)."""
    settings = get_settings()
    vector = vector_store(settings, RESOURCES, configured_encoder(settings))
    assert isinstance(vector, SharedVectorStore), "only the first process opens the shard"
    return make_stores(Path(data_dir), vector), None


async def index(stores: Stores, docs: list[dict]) -> None:
    """Write `docs` to both indexes as the indexing and embedding activities do."""
    await stores.keyword.upsert(docs)
    encoder = stores.encoder
    await stores.vector.ensure_collection(encoder.dim, encoder.name)
    vectors = encoder.encode([embedding_text(d) for d in docs])
    await stores.vector.upsert(
        [
            VectorPoint(str(d["id"]), v, payload_for(d, filter_values(d)))
            for d, v in zip(docs, vectors, strict=True)
        ]
    )


async def start_group(stores: Stores, data_dir: Path, processes: int, auth: Any = None):
    """`processes` servers on a free port: this process's over `stores`, the rest spawned."""
    from search_service.processes import start_server_group

    return await start_server_group(
        stores,
        "127.0.0.1:0",
        processes,
        auth=auth,
        stores_factory="tests.search.process_group_app:child_stores",
        factory_args=(str(data_dir),),
        grace=1,
    )


async def serve(data_dir: Path, processes: int) -> None:
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    stores = first_stores(data_dir)
    group = await start_group(stores, data_dir, processes)
    state = {"port": group.port, "children": [c.pid for c in group.children], "pid": os.getpid()}
    (data_dir / "group.json").write_text(json.dumps(state))
    await stop.wait()
    await group.stop(grace=1)
    await stores.vector.close()


if __name__ == "__main__":
    asyncio.run(serve(Path(sys.argv[1]), int(sys.argv[2])))

"""The content-file search stores: a keyword index and the `<prefix>.content_files` Qdrant
collection of 512-word chunks, one pair per process (like `get_stores()`).

The keyword index follows the resource index's engine (`make_keyword_index`): a second tantivy
index in the embedded configuration; with OpenSearch, MIT Learn's layout — content files as child
documents of the course/program indexes (`OpenSearchContentFileIndex`).

Kept beside `Stores` rather than in it so the resource stores stay as they are; both are created
from the same settings, so the indexing activities and the gRPC service see the same data.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from learnflow.settings import Settings
from learnflow.stores.blobs import BlobStore
from learnflow.stores.encoders import LEGACY_ENCODER, encoder_id
from learnflow.stores.keyword import KeywordIndex
from learnflow.stores.tantivy_index import TantivyContentFileIndex
from learnflow.stores.vector import VectorStore
from learnflow.stores.vector_serving import CONTENT_FILES, close_vector_stores, vector_store

# Where the content-file passes keep their high-water mark (updated_on of the last pass).
WATERMARK_KEY = "search-state/content_files.json"


@dataclass
class ContentStores:
    keyword: KeywordIndex  # TantivyContentFileIndex or OpenSearchContentFileIndex
    vector: VectorStore

    async def close(self) -> None:
        await self.keyword.close()
        await self.vector.close()


_content: dict[tuple, ContentStores] = {}


def uses_opensearch(settings: Settings) -> bool:
    """The same choice as `stores.make_keyword_index`."""
    return settings.keyword_backend == "opensearch" or bool(settings.opensearch_url)


def make_content_keyword_index(settings: Settings) -> KeywordIndex:
    if uses_opensearch(settings):
        from learnflow.stores.opensearch import (  # type: ignore[import-not-found]
            OpenSearchContentFileIndex,
        )

        return OpenSearchContentFileIndex(settings.opensearch_url, settings.opensearch_index)
    return TantivyContentFileIndex(
        Path(settings.data_dir) / "content_files",
        column_cache_bytes=settings.keyword_column_cache_mb * 1_000_000,
    )


def content_stores(settings: Settings) -> ContentStores:
    """The process's content-file stores for these settings (created on first use)."""
    key = (
        str(settings.data_dir),
        settings.qdrant_url,
        settings.qdrant_path,
        uses_opensearch(settings),
        settings.opensearch_url,
        settings.opensearch_index,
        settings.qdrant_encoder,
        settings.qdrant_dense_model,
    )
    if key not in _content:
        _content[key] = ContentStores(
            keyword=make_content_keyword_index(settings),
            vector=vector_store(
                settings,
                CONTENT_FILES,
                encoder_id(settings.qdrant_encoder, settings.qdrant_dense_model),
            ),
        )
    return _content[key]


async def reset_content_stores() -> None:
    for stores in _content.values():
        await stores.close()
    _content.clear()
    await close_vector_stores()


def embedded_mark(encoder: str) -> str:
    """The watermark of `encoder`'s content-file embedding pass (the legacy encoder's keeps its
    old name): a new encoder's pass starts from the first file, filling its own collection, and
    the mark exists once an all-sources pass has gone through every file."""
    return "embedded" if encoder == LEGACY_ENCODER else f"embedded.{encoder}"


async def read_watermarks(blobs: BlobStore) -> dict[str, str]:
    try:
        return json.loads(await blobs.get(WATERMARK_KEY))
    except (FileNotFoundError, KeyError, ValueError):
        return {}
    except Exception as exc:  # S3 NoSuchKey comes as a botocore ClientError
        if "NoSuchKey" in str(exc) or "404" in str(exc):
            return {}
        raise


async def write_watermark(blobs: BlobStore, name: str, value: str) -> None:
    marks = await read_watermarks(blobs)
    marks[name] = value
    await blobs.put(WATERMARK_KEY, json.dumps(marks, sort_keys=True).encode())


async def forget_watermark(blobs: BlobStore, name: str) -> None:
    marks = await read_watermarks(blobs)
    if marks.pop(name, None) is not None:
        await blobs.put(WATERMARK_KEY, json.dumps(marks, sort_keys=True).encode())


async def new_generation(
    blobs: BlobStore,
    name: str,
    index: object,
    reset: Callable[[], Awaitable[None]] | None = None,
) -> bool:
    """Whether `index` is a generation the `name` pass has not indexed into yet (a new tantivy
    schema starts empty): the caller then indexes everything again. `reset` (forget what was
    indexed) runs before the generation is recorded, so a crash in between resets again. The
    `name` pass's watermark is dropped in the same write, so it starts from the first file."""
    generation = getattr(index, "generation", None)
    if generation is None:  # OpenSearch: rebuilt by `learn index reindex`, never in place
        return False
    marks = await read_watermarks(blobs)
    key = f"generation:{name}"
    if marks.get(key) == generation:
        return False
    if reset is not None:
        await reset()
    marks[key] = generation
    marks.pop(name, None)
    await blobs.put(WATERMARK_KEY, json.dumps(marks, sort_keys=True).encode())
    return True

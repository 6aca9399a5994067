"""The CPU-bound half of `load_page` (and of `transform_page`): parse a raw page, run the
source's pure transform, build the rows to COPY and the keyword documents (`load_page`) or the
batch `upsert_batch` reads. Module-level functions of picklable arguments, run in the process
pool (activities/cpu_pool.py) or inline.
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from learnflow import reference
from learnflow.db.catalog import resource_rows
from learnflow.http import collector_paused, loads
from learnflow.models import Quarantined, Resource, TransformOutput
from learnflow.search_doc import to_search_document
from learnflow.settings import reset_settings
from sources import get_source
from sources._blocklist import apply_blocklist, parse_blocklist
from sources.base import IndexedPage, Source, transforming


def decode_page(raw: bytes):
    """Pages are JSON unless they are not (RSS, CSV, HTML, Parquet): those go to the transform as-is."""
    stripped = raw.lstrip()[:1]
    if stripped in (b"{", b"["):
        return loads(raw)
    return raw


def batch_bytes(out: TransformOutput, page_hash: str | None) -> bytes:
    """A transformed page as the batch `upsert_batch` reads: DB-ready resource rows, the rest of
    the output, and the page hash to remember once it is loaded (None: never skip)."""
    batch = {
        "page_hash": page_hash,
        "resource_rows": resource_rows(out.resources),
        "output": out.model_copy(update={"resources": []}).model_dump(mode="json"),
    }
    return json.dumps(batch, separators=(",", ":")).encode()


def _sync_env(env: dict[str, str]) -> None:
    """A pool process sees the worker's environment as of this call (settings read it; tests and
    operators point sources elsewhere without a restart)."""
    if env != dict(os.environ):
        os.environ.clear()
        os.environ.update(env)
        reset_settings()
        reference.reference_data.cache_clear()


# Context pages by (source, kind, sha256), as their transforms look items up (`IndexedPage`):
# built when a page that is another kind's context is transformed (or first read as context),
# kept while they hold under INDEXED_BYTES_KEPT (bench.ingest at 100k: ~150 MB, every edX and
# MITx Online course page), the least recently used dropped first.
INDEXED_BYTES_KEPT = 384 << 20
_indexed: OrderedDict[tuple[str, str, str], IndexedPage] = OrderedDict()
_indexed_lock = threading.Lock()


@dataclass(frozen=True)
class HeldContext:
    """A context page sent to the pool by its digest, not its bytes: the worker cannot know
    which pool process holds it indexed, so it asks first (`load_page` at 100k: ~90 MB of course
    pages read and piped per edX programs page otherwise, for a process that holds them)."""

    kind: str
    sha256: str


class ContextNotHeld(Exception):
    """This process does not hold a context page sent as `HeldContext`: the worker sends the
    bytes of every such page (the next process to take the page may hold none of them)."""


def indexed_context(source_name: str, kind: str, sha256: str | None) -> IndexedPage | None:
    """The indexed context page of these bytes, when this process holds it."""
    if sha256 is None:
        return None
    with _indexed_lock:
        page = _indexed.get((source_name, kind, sha256))
        if page is not None:
            _indexed.move_to_end((source_name, kind, sha256))
        return page


def forget_indexed() -> None:
    """Drop every indexed context page (bench.load_page_cpu: each pass as a fresh worker)."""
    with _indexed_lock:
        _indexed.clear()


def _remember(source: Source, kind: str, sha256: str | None, page: Any) -> IndexedPage | None:
    """Index a parsed page that is a context kind of its source, and keep it by its sha256."""
    if source.index_context is None or sha256 is None:
        return None
    key = (source.name, kind, sha256)
    with _indexed_lock:
        if key in _indexed:
            return _indexed[key]
    try:
        indexed = source.index_context(page)
    except Exception:  # not indexable (its shape): the transform reads the parsed page
        return None
    with _indexed_lock:
        _indexed[key] = indexed
        held = sum(p.size for p in _indexed.values())
        while held > INDEXED_BYTES_KEPT and len(_indexed) > 1:
            held -= _indexed.popitem(last=False)[1].size
    return indexed


def _context_pages(
    source: Source, kinds: list[str] | None, context_raw: list[bytes | IndexedPage | HeldContext],
    digests: list[str | None] | None,
) -> list[Any]:  # fmt: skip
    """The context pages as the transform reads them: parsed, or indexed (`IndexedPage`: as
    `load_page` found it, or as this process holds these bytes, e.g. a pool process)."""
    out: list[Any] = []
    for n, raw in enumerate(context_raw):
        if isinstance(raw, HeldContext):
            held_page = indexed_context(source.name, raw.kind, raw.sha256)
            if held_page is None:
                raise ContextNotHeld(raw)
            out.append(held_page)
            continue
        held = None
        if kinds and digests and not isinstance(raw, IndexedPage):
            held = indexed_context(source.name, kinds[n], digests[n])
        if isinstance(raw, IndexedPage) or held is not None:
            out.append(held or raw)
            continue
        page = decode_page(raw)
        if kinds and digests:
            _remember(source, kinds[n], digests[n], page)
        out.append(page)
    return out


def _is_context(source: Source, kind: str) -> bool:
    return any(kind in kinds for kinds in source.context_kinds.values())


def _transform(
    source_name: str, kind: str, page_key: str, raw: bytes,
    context_raw: list[bytes | IndexedPage | HeldContext], blocklist: bytes, sha256: str | None = None,
    context_kinds: list[str] | None = None, context_sha256: list[str | None] | None = None,
) -> TransformOutput:  # fmt: skip
    """The page's transform; `sha256` and the context pages' kinds and sha256 let a page that
    is context for another kind (edX's, MITx Online's course pages) be indexed as it is
    parsed, for the programs pages that read it (`IndexedPage`)."""
    source = get_source(source_name)
    context = _context_pages(source, context_kinds, context_raw, context_sha256)
    try:
        payload = decode_page(raw)
        indexed = None
        if source.index_context is not None and _is_context(source, kind):
            indexed = _remember(source, kind, sha256, payload)
        # the page's transform may leave in `indexed` what its readers would compute again
        with transforming(indexed):
            out = source.transform_payload(kind, payload, context)
        return apply_blocklist(out, parse_blocklist(blocklist))
    except ValueError as exc:
        # The whole page is unreadable (truncated JSON, wrong shape): quarantine it, load the rest.
        return TransformOutput(
            quarantined=[
                Quarantined(
                    source=source_name,
                    item_key=page_key,
                    reason=f"unreadable page: {type(exc).__name__}: {exc}"[:2000],
                    raw=raw.decode("utf-8", "replace")[:1_000_000],
                )
            ]
        )


def _counts(out: TransformOutput) -> dict[str, int]:
    return {
        "resources": len(out.resources),
        "feed_items": len(out.feed_items),
        "content_files": len(out.content_files),
        "view_events": len(out.view_events),
        "quarantined": len(out.quarantined),
    }


def _skippable_hash(out: TransformOutput, page_hash: str | None) -> str | None:
    """Only a page that gave resources and nothing else is remembered: feed items, content
    files, view events and quarantined items go through the upsert every time."""
    only_resources = out.resources and not (
        out.feed_items or out.content_files or out.view_events or out.quarantined
    )
    return page_hash if only_resources else None


def transform_to_batch(
    env: dict[str, str] | None,
    source_name: str,
    kind: str,
    page_key: str,
    raw: bytes,
    context_raw: list[bytes | IndexedPage | HeldContext],
    blocklist: bytes,
    page_hash: str,
    digests: tuple[str | None, list[str], list[str | None]] | None = None,
) -> tuple[bytes, dict[str, int]]:
    """Transform one page; return the batch's bytes and its counts (TransformResult fields).
    `digests`: the page's sha256, its context pages' kinds and sha256 (`_transform`)."""
    if env is not None:
        _sync_env(env)
    with collector_paused():  # see transform_to_load
        out = _transform(source_name, kind, page_key, raw, context_raw, blocklist, *(digests or ()))
        batch = batch_bytes(out, _skippable_hash(out, page_hash)), _counts(out)
        del out  # see transform_to_load
    return batch


@dataclass
class PageLoad:
    """A transformed page as `load_page` writes it, plain data (it crosses the pool's pipe):
    DB-ready resource rows, each published resource's keyword document by natural key (built
    from the models the transform made: no second validation, no read back from Postgres; the
    catalog id and created_on are filled in after the upsert), and the rest of the output."""

    rows: list[dict[str, Any]]
    documents: dict[tuple[str, str, str], dict[str, Any]]
    rest: TransformOutput
    counts: dict[str, int]
    page_hash: str | None


def transform_to_load(
    env: dict[str, str] | None,
    source_name: str,
    kind: str,
    page_key: str,
    raw: bytes,
    context_raw: list[bytes | IndexedPage | HeldContext],
    blocklist: bytes,
    page_hash: str,
    digests: tuple[str | None, list[str], list[str | None]] | None = None,
) -> PageLoad:
    """Transform one page for `load_page`: rows, keyword documents, the rest (`PageLoad`).
    `digests`: the page's sha256, its context pages' kinds and sha256 (`_transform`)."""
    if env is not None:
        _sync_env(env)
    # A page's models, rows and documents are ~10^6 objects and no cycles: with the collector
    # on, that burst set off full collections of the worker's heap (bench.load_page_cpu: ~50 µs
    # of ~440 per resource, mostly landing on the documents).
    with collector_paused():
        out = _transform(source_name, kind, page_key, raw, context_raw, blocklist, *(digests or ()))
        load = PageLoad(
            rows=resource_rows(out.resources),
            documents=page_documents(out.resources),
            rest=out.model_copy(update={"resources": []}),
            counts=_counts(out),
            page_hash=_skippable_hash(out, page_hash),
        )
        # The models go while the collector is still off. Every object the pause leaves alive
        # is in the youngest generation, and the first allocation after it runs a collection
        # over them all: with the models alive that was ~16 µs a resource, ~8 without (the
        # rows and documents, which are the result). gc.freeze()/unfreeze() would skip even
        # that, but they move every object of the process and undo a freeze someone else
        # made (bench.ingest freezes its catalog in the worker's process).
        del out
    return load


def page_documents(resources: list[Resource]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Each published resource's keyword document by natural key (id and created_on unset)."""
    return {
        (str(r.platform), r.readable_id, str(r.resource_type)): to_search_document(r, 0)
        for r in resources
        if r.published
    }


def placed_document(doc: dict[str, Any], resource_id: int, created_on: datetime) -> dict[str, Any]:
    """A `PageLoad` document with what the catalog gave its row: as `to_search_document` builds
    it from the stored row (the id and created_on are its only inputs from the row)."""
    return {**doc, "id": resource_id, "created_on": created_on.isoformat()}

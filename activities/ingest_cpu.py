"""The CPU-bound half of `load_page` (and of `transform_page`): parse a raw page, run the
source's pure transform, build the rows to COPY and the keyword documents (`load_page`) or the
batch `upsert_batch` reads. Module-level functions of picklable arguments, run in the process
pool (activities/cpu_pool.py) or inline.
"""

from __future__ import annotations

import json
import os
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


def _transform(
    source_name: str, kind: str, page_key: str, raw: bytes, context_raw: list[bytes],
    blocklist: bytes,
) -> TransformOutput:  # fmt: skip
    source = get_source(source_name)
    context = [decode_page(c) for c in context_raw]
    try:
        out = source.transform_payload(kind, decode_page(raw), context)
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
    context_raw: list[bytes],
    blocklist: bytes,
    page_hash: str,
) -> tuple[bytes, dict[str, int]]:
    """Transform one page; return the batch's bytes and its counts (TransformResult fields)."""
    if env is not None:
        _sync_env(env)
    with collector_paused():  # see transform_to_load
        out = _transform(source_name, kind, page_key, raw, context_raw, blocklist)
        return batch_bytes(out, _skippable_hash(out, page_hash)), _counts(out)


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
    context_raw: list[bytes],
    blocklist: bytes,
    page_hash: str,
) -> PageLoad:
    """Transform one page for `load_page`: rows, keyword documents, the rest (`PageLoad`)."""
    if env is not None:
        _sync_env(env)
    # A page's models, rows and documents are ~10^6 objects and no cycles: with the collector
    # on, that burst set off full collections of the worker's heap (bench.load_page_cpu: ~50 µs
    # of ~440 per resource, mostly landing on the documents).
    with collector_paused():
        out = _transform(source_name, kind, page_key, raw, context_raw, blocklist)
        return PageLoad(
            rows=resource_rows(out.resources),
            documents=page_documents(out.resources),
            rest=out.model_copy(update={"resources": []}),
            counts=_counts(out),
            page_hash=_skippable_hash(out, page_hash),
        )


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

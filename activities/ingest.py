"""Ingestion activities: fetch raw pages, transform a page, upsert a batch, prune, record the run.

Each takes one model and returns one model; pages and batches move between them as blob keys.
"""

from __future__ import annotations

import json

import structlog
from temporalio import activity

from learnflow.contracts import (
    DEFAULT_QUEUE,
    FetchInput,
    FetchResult,
    IngestResult,
    PageRef,
    PruneInput,
    PruneResult,
    TransformInput,
    TransformResult,
    UpsertInput,
    UpsertResult,
)
from learnflow.http import PermanentHttpError, SourceHttp, TransientHttpError
from learnflow.models import TransformOutput
from learnflow.settings import get_settings
from learnflow.stores import get_stores
from sources import get_source
from sources.base import ExtractContext

log = structlog.get_logger(__name__)


def _page_key(source: str, run_id: str, n: int, kind: str) -> str:
    return f"raw/{source}/{run_id}/{n:05d}-{kind}"


@activity.defn
async def fetch_source_pages(req: FetchInput) -> FetchResult:
    """Extract every raw page of a source into the blob store; heartbeat per page.

    A permanent error part-way returns what was fetched with `complete=False` (the prune guard
    then refuses); a transient one raises so Temporal retries the activity.
    """
    stores = await get_stores()
    settings = get_settings()  # live: sources are pointed elsewhere without a restart
    source = get_source(req.source)
    if source.extract is None:
        return FetchResult(complete=False, skipped_reason=f"source {req.source} has no extractor")
    if source.unavailable is not None:
        reason = source.unavailable(settings)
        if reason:
            log.warning("source.skipped", source=req.source, reason=reason)
            return FetchResult(complete=False, skipped_reason=reason)
    http = SourceHttp(
        source.allowed_hosts(settings) or None,
        timeout=settings.http_timeout_seconds,
        max_bytes=settings.http_max_response_bytes,
        user_agent=settings.http_user_agent,
        allow_private=settings.http_allow_private_hosts,
    )
    result = FetchResult()
    try:
        ctx = ExtractContext(http=http, settings=settings, options=dict(req.options))
        async for n, page in _enumerate(source.extract(ctx)):
            key = await stores.blobs.put(_page_key(req.source, req.run_id, n, page.kind), page.body)
            result.pages.append(PageRef(kind=page.kind, key=key, item_count=page.item_count))
            activity.heartbeat(len(result.pages))
    except TransientHttpError:
        raise  # the activity's retry policy retries the whole fetch (page keys are deterministic)
    except (PermanentHttpError, ValueError) as exc:
        log.error("fetch.failed", source=req.source, error=str(exc), pages=len(result.pages))
        result.complete = False
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        await http.aclose()
    manifest = [p.model_dump() for p in result.pages]
    result.manifest_key = await stores.blobs.put(
        f"raw/{req.source}/{req.run_id}/manifest.json", json.dumps(manifest).encode()
    )
    log.info("fetch.done", source=req.source, pages=len(result.pages), items=result.item_count)
    return result


async def _enumerate(aiter):
    n = 0
    async for item in aiter:
        yield n, item
        n += 1


@activity.defn
async def transform_page(req: TransformInput) -> TransformResult:
    """Run the source's pure transform on one stored page; store the batch, return counts."""
    stores = await get_stores()
    source = get_source(req.source)
    raw = await stores.blobs.get(req.page.key)
    context_refs = list(req.context)
    wanted = source.context_kinds.get(req.page.kind, ())
    if req.manifest_key and wanted:
        manifest = json.loads(await stores.blobs.get(req.manifest_key))
        context_refs += [PageRef(**p) for p in manifest if p["kind"] in wanted]
    context = [_decode(await stores.blobs.get(c.key)) for c in context_refs]
    try:
        payload = _decode(raw)
        out = source.transform_payload(req.page.kind, payload, context)
    except ValueError as exc:
        # The whole page is unreadable (truncated JSON, wrong shape): quarantine it, load the rest.
        from learnflow.models import Quarantined

        out = TransformOutput(
            quarantined=[
                Quarantined(
                    source=req.source,
                    item_key=req.page.key,
                    reason=f"unreadable page: {type(exc).__name__}: {exc}"[:2000],
                    raw=raw.decode("utf-8", "replace")[:1_000_000],
                )
            ]
        )
    batch_key = req.page.key.replace("raw/", "batch/", 1) + ".json"
    await stores.blobs.put(batch_key, out.model_dump_json().encode())
    return TransformResult(
        batch_key=batch_key,
        resources=len(out.resources),
        feed_items=len(out.feed_items),
        content_files=len(out.content_files),
        view_events=len(out.view_events),
        quarantined=len(out.quarantined),
    )


def _decode(raw: bytes):
    """Pages are JSON unless they are not (RSS, CSV, HTML, Parquet): those go to the transform as-is."""
    stripped = raw.lstrip()[:1]
    if stripped in (b"{", b"["):
        return json.loads(raw)
    return raw


@activity.defn
async def upsert_batch(req: UpsertInput) -> UpsertResult:
    """Load one transformed batch into Postgres (idempotent; unchanged rows are not rewritten)."""
    stores = await get_stores()
    out = TransformOutput.model_validate_json(await stores.blobs.get(req.batch_key))
    result = await stores.catalog.upsert_resources(req.run_id, out.resources)
    feed = await stores.catalog.upsert_feed_items(req.run_id, out.feed_items)
    await stores.catalog.record_view_events(out.view_events)
    result.inserted += feed.inserted
    result.updated += feed.updated
    result.unchanged += feed.unchanged
    result.quarantined = await stores.catalog.quarantine(req.run_id, out.quarantined)
    return result


@activity.defn
async def prune_source(req: PruneInput) -> PruneResult:
    stores = await get_stores()
    source = get_source(req.source)
    result = await stores.catalog.prune(
        etl_source=source.etl_source,
        run_id=req.run_id,
        resource_types=source.resource_types,
        feed_types=source.feed_types,
        fetch_complete=req.fetch_complete,
        max_share=stores.settings.prune_max_share,
        force=req.force,
    )
    if result.refused:
        log.warning("prune.refused", source=req.source, reason=result.reason)
    return result


@activity.defn
async def start_run(req: FetchInput) -> None:
    stores = await get_stores()
    await stores.catalog.start_run(req.run_id, req.source)


@activity.defn
async def finish_run(req: IngestResult) -> None:
    stores = await get_stores()
    await stores.catalog.finish_run(req.run_id, req.outcome, req.model_dump(mode="json"))
    await stores.blobs.delete_prefix(f"raw/{req.source}/{req.run_id}")
    await stores.blobs.delete_prefix(f"batch/{req.source}/{req.run_id}")


ACTIVITIES_BY_QUEUE = {
    DEFAULT_QUEUE: [
        fetch_source_pages,
        transform_page,
        upsert_batch,
        prune_source,
        start_run,
        finish_run,
    ]
}

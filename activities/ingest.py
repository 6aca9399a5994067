"""Ingestion activities: fetch raw pages, transform a page, upsert a batch, prune, record the run.

Each takes one model and returns one model; pages and batches move between them as blob keys.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os
import time
import weakref
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

import structlog
from temporalio import activity
from temporalio.client import WorkflowHandle

import sources
from activities import cpu_pool
from activities.ingest_cpu import (
    ContextNotHeld,
    HeldContext,
    PageLoad,
    batch_bytes,
    indexed_context,
    placed_document,
    transform_to_batch,
    transform_to_load,
)
from activities.progress import Progress, heartbeat, heartbeating
from activities.search import index_in_line, keyword_generation_is_new, write_index
from learnflow import models, reference
from learnflow.contracts import (
    DEFAULT_QUEUE,
    PAGE_FETCHED_SIGNAL,
    FetchInput,
    FetchResult,
    IngestResult,
    PageLoadResult,
    PageRef,
    PruneInput,
    PruneResult,
    TransformInput,
    TransformResult,
    UpsertInput,
    UpsertResult,
)
from learnflow.db.catalog import RowsLoaded, resource_rows
from learnflow.db.content_files import upsert_resource_files
from learnflow.http import PermanentHttpError, SourceHttp, TransientHttpError
from learnflow.models import Quarantined, TransformOutput
from learnflow.settings import get_settings
from learnflow.stores import get_stores
from sources import get_source
from sources._blocklist import blocklist_key, read_blocklist
from sources.base import ExtractContext, IndexedPage, Source

T = TypeVar("T")
log = structlog.get_logger(__name__)


def _page_key(source: str, run_id: str, n: int, kind: str) -> str:
    return f"raw/{source}/{run_id}/{n:05d}-{kind}"


@activity.defn
async def fetch_source_pages(req: FetchInput) -> FetchResult:
    """Extract every raw page of a source into the blob store; heartbeat per page.

    A permanent error part-way returns what was fetched with `complete=False` (the prune guard
    then refuses); a transient one raises so Temporal retries the activity.
    """
    started = time.perf_counter()
    stores = await get_stores()
    settings = get_settings()  # live: sources are pointed elsewhere without a restart
    source = get_source(req.source)
    if req.record_run:  # fetch-skips-v1: `start_run`'s work, without its round trip
        await stores.catalog.start_run(req.run_id, req.source, req.options)
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
        page_prefetch=settings.http_page_prefetch,
    )
    result = FetchResult()
    blocklist = b""
    stream: _PageStream | None = None
    seconds: dict[str, float] = {}

    def lap(step: str) -> None:  # the step's wall seconds, for the fetch's log line
        seconds[step] = time.perf_counter() - started - sum(seconds.values())

    lap("start")
    try:
        if _reads_blocklist(source):
            # Read before any page: a list that cannot be read fails the run as a page would.
            blocklist = await read_blocklist(settings)
            await stores.blobs.put(blocklist_key(req.source, req.run_id), blocklist)
        ctx = ExtractContext(
            http=http, settings=settings, options=dict(req.options), pool=stores.pool
        )
        stream = await _PageStream.open(stores, source, blocklist) if req.stream_pages else None
        async for n, page in _enumerate(source.extract(ctx)):
            key = await stores.blobs.put(_page_key(req.source, req.run_id, n, page.kind), page.body)
            digest = (page.sha256 or hashlib.sha256(page.body).digest()).hex()
            ref = PageRef(kind=page.kind, key=key, item_count=page.item_count, sha256=digest)
            result.pages.append(ref)
            if stream is not None:
                await stream.offer(ref)
            heartbeat(Progress(stage="fetch", counts={"pages": len(result.pages)}))
    except TransientHttpError:
        raise  # the activity's retry policy retries the whole fetch (page keys are deterministic)
    except (PermanentHttpError, ValueError) as exc:
        log.error("fetch.failed", source=req.source, error=str(exc), pages=len(result.pages))
        result.complete = False
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        await http.aclose()
    lap("pages")
    manifest = [p.model_dump() for p in result.pages]
    result.manifest_key = await stores.blobs.put(
        f"raw/{req.source}/{req.run_id}/manifest.json", json.dumps(manifest).encode()
    )
    streamed = stream.offered if stream is not None else set()
    # A retried fetch streaming again does not know what its earlier attempt streamed: those
    # pages may be loaded and recorded by now, and look unchanged.
    may_have_streamed = bool(streamed) or (req.stream_pages and activity.info().attempt > 1)
    if req.skip_unchanged:
        await _mark_unchanged(stores, source, req.run_id, result.pages, blocklist, streamed)
    lap("mark")
    if (
        req.prune_if_unchanged
        and result.complete
        and not may_have_streamed  # those pages load (or loaded) after all
        and all(p.seen is not None for p in result.pages)
    ):
        # Nothing to load: the prune follows now, as it would after the pages (fetch-prunes-v1).
        # Its guard is the same: an empty fetch of a published catalog is refused.
        prune_in = PruneInput(
            source=req.source,
            run_id=req.run_id,
            fetch_complete=True,
            force=req.force_prune,
            options=req.options,
            written=0,
        )
        result.prune = await _prune(stores, prune_in)
        lap("prune")
        idle = not (result.prune.refused or result.prune.unpublished or result.prune.index_pending)
        if req.finish_if_idle and idle:
            # Nothing pruned, nothing to index or embed: the run's outcome, as the workflow would
            # record it after its prune (fetch-finishes-v1), and no finish round trip.
            result.finished = IngestResult(
                source=req.source,
                run_id=req.run_id,
                outcome="ok",
                pages=len(result.pages),
                items=result.item_count,
                unchanged=sum(p.seen or 0 for p in result.pages),
            )
            await _finish(stores, result.finished)
            lap("finish")
    log.info(
        "fetch.done",
        source=req.source,
        pages=len(result.pages),
        unchanged_pages=sum(p.seen is not None for p in result.pages),
        items=result.item_count,
        seconds={k: round(v, 3) for k, v in seconds.items()},
    )
    return result


async def _mark_unchanged(
    stores,
    source: Source,
    run_id: str,
    pages: list[PageRef],
    blocklist: bytes,
    streamed: Collection[str] = (),
) -> None:
    """fetch-skips-v1: with every page in hand, decide the skips `load_page` would (the same
    page hashes, from the digests: `_digest_page_hash`) and mark the unchanged pages' resources
    seen in one transaction; the run then loads only the others (`PageRef.seen`), without a
    round of activities per window of pages. Only marks: nothing is written but what the
    prune reads, so a truncated fetch is still refused by the prune's guard. A retried fetch
    marks again (idempotent); a page it no longer lists keeps the earlier attempt's marks, so
    the prune unpublishes less, never more."""
    blocklist_digest = _sha256(blocklist)
    hashes = [
        None  # streamed (fetch-streams-v1): its load decides, the workflow counts that
        if page.key in streamed
        else _digest_page_hash(source, page, _context_refs(source, page, pages), blocklist_digest)
        for page in pages
    ]
    try:
        seen = await stores.catalog.mark_pages_seen(source.name, [h for h in hashes if h], run_id)
    except Exception as exc:  # the skip is an optimisation: the pages load the long way
        log.warning("page_skip.unavailable", source=source.name, error=str(exc))
        return
    for page, page_hash in zip(pages, hashes, strict=True):
        page.seen = seen.get(page_hash) if page_hash else None


class _PageStream:
    """fetch-streams-v1: hands the run's workflow (`PAGE_FETCHED_SIGNAL`) each stored page it
    can load before the fetch ends, so the first pages are transformed while the rest are still
    fetched (against a slow API, the whole fetch's wait before any load). Only pages of the
    fetch's first kind that read no context page (later kinds may link to the first: they load
    after it, from the manifest), and only while no other kind came; not a page whose hash an
    earlier run recorded (most likely unchanged: the marking after the fetch decides, and a
    re-run stays one activity). A page offered is not marked seen by the fetch, whether its
    signal went through or not: the workflow loads it either way (`load_page` skips it by hash
    if it was unchanged after all)."""

    def __init__(
        self, source: Source, recorded: set[str], blocklist_digest: bytes, workflow: WorkflowHandle
    ) -> None:
        self.workflow = workflow  # the run's workflow, signalled each page
        self.source = source
        self.recorded = recorded
        self.blocklist_digest = blocklist_digest
        self.kind: str | None = None
        self.closed = False
        self.offered: set[str] = set()  # page keys

    @classmethod
    async def open(cls, stores, source: Source, blocklist: bytes) -> _PageStream | None:
        try:
            recorded = await stores.catalog.recorded_page_hashes(source.name)
            info = activity.info()
            workflow = activity.client().get_workflow_handle(
                info.workflow_id, run_id=info.workflow_run_id
            )
        except Exception as exc:  # streaming is an optimisation: the pages load after the fetch
            log.warning("fetch.stream_unavailable", source=source.name, error=str(exc))
            return None
        return cls(source, recorded, _sha256(blocklist), workflow)

    async def offer(self, page: PageRef) -> None:
        if self.closed:
            return
        self.kind = self.kind or page.kind
        if page.kind != self.kind or self.source.context_kinds.get(page.kind):
            self.closed = True
            return
        if _digest_page_hash(self.source, page, [], self.blocklist_digest) in self.recorded:
            return
        self.offered.add(page.key)
        try:
            await self.workflow.signal(PAGE_FETCHED_SIGNAL, page)
        except Exception as exc:  # not streamed, or not known to be: it loads after the fetch
            log.warning("fetch.stream_failed", source=self.source.name, error=str(exc))
            self.closed = True


def _context_refs(source: Source, page: PageRef, manifest: list[PageRef]) -> list[PageRef]:
    """The pages a page's transform reads beside it (`Source.context_kinds`), in fetch order."""
    wanted = source.context_kinds.get(page.kind, ())
    return [p for p in manifest if p.kind in wanted] if wanted else []


def _digest_page_hash(
    source: Source, page: PageRef, context: list[PageRef], blocklist_digest: bytes
) -> str | None:
    """`_page_hash` from the digests the fetch recorded; None when a page lacks its digest."""
    refs = [page, *context]
    if not all(r.sha256 for r in refs):
        return None
    digests = [bytes.fromhex(r.sha256 or "") for r in refs]
    return _page_hash(source, page.kind, [*digests, blocklist_digest])


def _reads_blocklist(source: Source) -> bool:
    return "course" in source.resource_types


async def _run_blocklist(stores, source: Source, run_id: str) -> bytes:
    """The blocklist the run's fetch stored; none for a run fetched before it was stored."""
    if not _reads_blocklist(source):
        return b""
    try:
        return await stores.blobs.get(blocklist_key(source.name, run_id))
    except FileNotFoundError:
        return b""
    except Exception as exc:  # S3: only a missing key means "no list"
        code = getattr(exc, "response", {}).get("Error", {}).get("Code")
        if code in ("NoSuchKey", "404"):
            return b""
        raise


async def _enumerate(aiter):
    n = 0
    async for item in aiter:
        yield n, item
        n += 1


@activity.defn
async def transform_page(req: TransformInput) -> TransformResult:
    """Run the source's pure transform on one stored page; store the batch, return counts.

    A page whose hash (`_page_hash`) matches a page already loaded, whose resources still carry
    the hashes it gave them, is not transformed: its resources are marked seen for the prune and
    the batch says so. The batch holds DB-ready resource rows (`catalog.resource_rows`), so the
    upsert does no model work.
    """
    stores = await get_stores()
    page = await _read_page(stores, req)
    batch_key = req.page.key.replace("raw/", "batch/", 1) + ".json"
    if page.seen is not None:
        await stores.blobs.put(batch_key, json.dumps({"unchanged_page": page.seen}).encode())
        return TransformResult(batch_key=batch_key, resources=page.seen)
    # Parse + transform + batch rows: CPU only, in the pool (other cores, the loop stays free).
    data, counts = await _transformed(stores, transform_to_batch, page, req)
    await stores.blobs.put(batch_key, data)
    return TransformResult(batch_key=batch_key, **counts)


@dataclasses.dataclass
class _RawPage:
    raw: bytes
    context_raw: list[bytes | IndexedPage | HeldContext]
    blocklist: bytes
    page_hash: str
    seen: int | None  # skipped by hash: how many resources it marked seen
    context_refs: list[PageRef] = dataclasses.field(default_factory=list)

    def cpu_args(self, req: TransformInput) -> tuple:
        """The arguments of the pool's transform functions (`activities/ingest_cpu.py`)."""
        env = dict(os.environ) if cpu_pool.pooled() else None
        digests = (req.page.sha256, [c.kind for c in self.context_refs],
                   [c.sha256 for c in self.context_refs])  # fmt: skip
        return (env, req.source, req.page.kind, req.page.key, self.raw, self.context_raw,
                self.blocklist, self.page_hash, digests)  # fmt: skip


async def _read_page(stores, req: TransformInput) -> _RawPage:
    """A stored page, its context pages and blocklist, its hash; and whether it is skipped
    (`mark_page_seen`: loaded before, its resources intact, now marked seen by this run).
    When the fetch recorded the pages' digests (`PageRef.sha256`), the skip is decided from
    them: an unchanged page and its context pages (edX's programs page reads every course
    page) are not read back; only a page that is transformed is."""
    source = get_source(req.source)
    context_refs = list(req.context)
    if req.manifest_key and source.context_kinds.get(req.page.kind):
        manifest = json.loads(await stores.blobs.get(req.manifest_key))
        context_refs += _context_refs(source, req.page, [PageRef(**p) for p in manifest])
    blocklist = await _run_blocklist(stores, source, req.run_id)
    page_hash = _digest_page_hash(source, req.page, context_refs, _sha256(blocklist))
    if page_hash is not None:
        seen = await _mark_seen(stores, req, page_hash)
        if seen is not None:
            return _RawPage(b"", [], blocklist, page_hash, seen)
    raw = await stores.blobs.get(req.page.key)
    if page_hash is not None:
        # Not skipped: the bytes read are those digests' (a fetch retry rewrites a run's pages
        # and returns their new digests), so the hash stands and asking again finds nothing.
        # A context page this process holds indexed by its digest is not read again.
        context_raw = [await _context_page(stores, source, c) for c in context_refs]
        return _RawPage(raw, context_raw, blocklist, page_hash, None, context_refs)
    context_bytes = [await stores.blobs.get(c.key) for c in context_refs]
    digests = [_sha256(b) for b in (raw, *context_bytes, blocklist)]
    page_hash = _page_hash(source, req.page.kind, digests)
    seen = await _mark_seen(stores, req, page_hash)
    return _RawPage(raw, list(context_bytes), blocklist, page_hash, seen)


async def _context_page(stores, source: Source, ref: PageRef) -> bytes | IndexedPage | HeldContext:
    """A context page as the transform gets it: its `IndexedPage` when the transform runs in this
    process (no pool) and holds it by the digest the fetch recorded; with the pool, its digest
    (`HeldContext`: the pool process that took the course pages holds them); else its bytes."""
    if source.index_context is not None and ref.sha256:
        if cpu_pool.pooled():
            return HeldContext(ref.kind, ref.sha256)
        indexed = indexed_context(source.name, ref.kind, ref.sha256)
        if indexed is not None:
            return indexed
    return await stores.blobs.get(ref.key)


async def _transformed(stores, fn: Callable[..., T], page: _RawPage, req: TransformInput) -> T:
    """`fn` (a pool transform) of the page; when the pool process that took it does not hold a
    context page sent by its digest (another process of the pool, a restarted one), again with
    those pages' bytes."""
    try:
        return await cpu_pool.run_cpu(fn, *page.cpu_args(req))
    except ContextNotHeld:
        page.context_raw = [
            await stores.blobs.get(ref.key) if isinstance(raw, HeldContext) else raw
            for raw, ref in zip(page.context_raw, page.context_refs, strict=True)
        ]
        return await cpu_pool.run_cpu(fn, *page.cpu_args(req))


async def _mark_seen(stores, req: TransformInput, page_hash: str) -> int | None:
    try:
        return await stores.catalog.mark_page_seen(req.source, page_hash, req.run_id)
    except Exception as exc:  # the skip is an optimisation, never a reason to fail
        # Database down: transform the long way; the upsert then meets the outage and retries.
        log.warning("page_skip.unavailable", source=req.source, error=str(exc))
        return None


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


async def put_batch(stores, batch_key: str, out: TransformOutput, page_hash: str | None) -> None:
    """Store a transformed output as the batch `upsert_batch` reads (`batch_bytes`)."""
    await stores.blobs.put(batch_key, batch_bytes(out, page_hash))


@lru_cache(maxsize=8)
def _transform_version(reference_dir: str) -> str:
    """What else decides a transform's output: the transform code (sources/, the models) and
    the reference data (topics, offerors). A deploy that changes either re-transforms all."""
    digest = hashlib.sha256()
    code = sorted(Path(sources.__file__).parent.glob("*.py"))
    for path in [*code, Path(models.__file__), Path(reference.__file__)]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    ref = dataclasses.asdict(reference.reference_data())
    digest.update(json.dumps(ref, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def _page_hash(source: Source, kind: str, digests: list[bytes]) -> str:
    """The page's identity for skipping, from the sha256 digests of its bytes, of the context
    pages the transform reads and of the blocklist (in that order), the transform version and,
    for a transform that compares with "now", the UTC day."""
    digest = hashlib.sha256()
    digest.update(_transform_version(str(get_settings().reference_data_dir)).encode())
    digest.update(f"\0{source.name}\0{kind}\0".encode())
    if source.reads_clock:
        digest.update(datetime.now(UTC).date().isoformat().encode())
    for part in digests:
        digest.update(part)
    return digest.hexdigest()


@activity.defn
async def upsert_batch(req: UpsertInput) -> UpsertResult:
    """Load one transformed batch into Postgres (idempotent; unchanged rows are not rewritten)."""
    stores = await get_stores()
    batch = json.loads(await stores.blobs.get(req.batch_key))
    if "unchanged_page" in batch:  # skipped by hash: its resources are already marked seen
        return UpsertResult(unchanged=int(batch["unchanged_page"]))
    if "resource_rows" in batch:
        rows, page_hash = batch["resource_rows"], batch.get("page_hash")
        out = TransformOutput.model_validate(batch["output"])
    else:  # a batch written before resource rows (a run in flight across a deploy)
        out = TransformOutput.model_validate(batch)
        rows, page_hash = resource_rows(out.resources), None
    loaded = await stores.catalog.upsert_resource_rows(req.run_id, rows)
    result = loaded.result
    await _load_rest(stores, req.source, req.run_id, out, result)
    if page_hash:
        await stores.catalog.record_page(req.source, page_hash, req.run_id, loaded)
    return result


async def _load_rest(
    stores, source: str, run_id: str, out: TransformOutput, result: UpsertResult
) -> None:
    """A page's feed items, view events, content files and quarantined items (counted into
    `result`): everything but its resources."""
    feed = await stores.catalog.upsert_feed_items(run_id, out.feed_items)
    await stores.catalog.record_view_events(out.view_events)
    result.inserted += feed.inserted
    result.updated += feed.updated
    result.unchanged += feed.unchanged
    # Content files a transform gives by url (marketing pages) attach to the published
    # course/program with that url; the run's index and embed passes pick them up by file type.
    files = await upsert_resource_files(stores.pool, out.content_files)
    result.inserted += files.counts.inserted
    result.updated += files.counts.updated
    result.unchanged += files.counts.unchanged
    content_by_key = {f.key: f.content for f in out.content_files}
    quarantined = out.quarantined + [
        Quarantined(
            source=source,
            item_key=key,
            reason="no published course or program has this url",
            raw=(content_by_key[key] or "")[:1_000_000],
        )
        for key in files.unmatched
    ]
    result.quarantined = await stores.catalog.quarantine(run_id, quarantined)


@activity.defn
async def load_page(req: TransformInput) -> PageLoadResult:
    """One page fetch-side to keyword-findable (page-load-v1): transform (in the pool when it
    is on), upsert, and index the page's resources the keyword index does not hold as stored,
    from the documents the transform built: no batch blob, no second Temporal round trip, no
    read back and re-validation of the rows. Idempotent as the two steps it replaces: a retry
    finds the rows unchanged and indexes what an earlier attempt left unindexed. The run's
    index child still follows, for the prune's unpublished rows (and whatever this missed)."""
    async with heartbeating(Progress(stage="load page", key=req.page.key)):
        return await _load_page(req)


async def _load_page(req: TransformInput) -> PageLoadResult:
    stores = await get_stores()
    page = await _read_page(stores, req)
    if page.seen is not None:  # skipped by hash: its resources are already marked seen
        return PageLoadResult(unchanged=page.seen)
    load: PageLoad = await _transformed(stores, transform_to_load, page, req)
    loaded = await stores.catalog.upsert_resource_rows(req.run_id, load.rows)
    result = PageLoadResult.model_validate(loaded.result.model_dump())
    await _index_loaded(stores, req.source, load, loaded, result)
    await _load_rest(stores, req.source, req.run_id, load.rest, result)
    if load.page_hash:
        await stores.catalog.record_page(req.source, load.page_hash, req.run_id, loaded)
    return result


# per event loop (a lock is bound to the loop it first waits on)
_generation_locks: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_generations_seen: set[str] = set()


async def _keyword_generation_recorded(stores) -> None:
    """Before a page writes the keyword index: a generation nothing indexed into yet (a new
    deployment, a new schema) is recorded first, forgetting what an older one held, as the
    index pass does, so the run's index child does not take the pages' rows for a new index's
    and index them all again. Once per process and generation (one page at a time here; pages
    in another process that race it only forget marks the index child then redoes)."""
    generation = str(getattr(stores.keyword, "generation", None))
    if generation in _generations_seen:
        return
    lock = _generation_locks.setdefault(asyncio.get_running_loop(), asyncio.Lock())
    async with lock:
        if generation not in _generations_seen:
            await keyword_generation_is_new(stores)
            _generations_seen.add(generation)


async def _index_loaded(
    stores, source: str, load: PageLoad, loaded: RowsLoaded, result: PageLoadResult
) -> None:
    """Index the page's rows the keyword index lags (`RowsLoaded.index_stale`). The index is
    an optimisation here, not the guarantee: a failure (an engine down, a writer another
    process holds) is logged and left to the run's index child, which reads what is pending."""
    docs: list[dict] = []
    gone: list[int] = []
    marks: list[tuple[int, str]] = []
    for row in loaded.index_stale:
        if not row["published"]:
            gone.append(row["id"])
        else:
            doc = load.documents.get((row["platform"], row["readable_id"], row["resource_type"]))
            if doc is None:  # not this page's version of the row: the index pass takes it
                continue
            docs.append(placed_document(doc, row["id"], row["created_on"]))
        marks.append((row["id"], row["content_hash"]))
    if not marks:
        return
    try:
        await _keyword_generation_recorded(stores)
        await write_index(stores, docs, gone, marks)
    except Exception as exc:
        log.warning("load_page.index_deferred", source=source, error=f"{type(exc).__name__}: {exc}")
        return
    result.indexed += len(docs)
    result.deindexed += len(gone)


def pruned_types(source: Source, options: dict[str, str]) -> tuple[tuple[str, ...], ...]:
    """The resource and feed types a run of these options owns. A source split over schedules
    by kind (mitpe: courses / news,events) must not let one schedule's run prune the other's
    items: every run would see them as vanished, and the guard would refuse every run."""
    from sources._catalog import wanted_kinds

    wanted = set(wanted_kinds(options, source.kinds))
    if wanted >= set(source.kinds):
        return source.resource_types, source.feed_types
    feed_types = tuple(t for t in source.feed_types if t in wanted)
    # kinds that are not feed types are the catalog's (courses, programs, ...)
    resource_types = source.resource_types if wanted - set(source.feed_types) else ()
    return resource_types, feed_types


@activity.defn
async def prune_source(req: PruneInput) -> PruneResult:
    return await _prune(await get_stores(), req)


async def _prune(stores, req: PruneInput) -> PruneResult:
    """Unpublish what the run did not see (guarded), forget the pages it did not meet, and say
    whether the source's indexes lag: `prune_source`, and the fetch of an unchanged run."""
    source = get_source(req.source)
    resource_types, feed_types = pruned_types(source, req.options)
    result = await stores.catalog.prune(
        etl_source=source.etl_source,
        run_id=req.run_id,
        resource_types=resource_types,
        feed_types=feed_types,
        fetch_complete=req.fetch_complete,
        max_share=stores.settings.prune_max_share,
        force=req.force,
        written=req.written,
    )
    if result.refused:
        log.warning("prune.refused", source=req.source, reason=result.reason)
    if req.fetch_complete:
        # Pages this run did not meet changed or went: their skip state is dead weight.
        await stores.catalog.forget_pages_except(req.source, req.run_id)
    try:
        result.index_pending = not await index_in_line(stores, req.source)
    except Exception as exc:  # skipping the index child is an optimisation: run it
        log.warning("prune.index_check_failed", source=req.source, error=str(exc))
    return result


@activity.defn
async def start_run(req: FetchInput) -> None:
    stores = await get_stores()
    await stores.catalog.start_run(req.run_id, req.source, req.options)


@activity.defn
async def finish_run(req: IngestResult) -> None:
    await _finish(await get_stores(), req)


async def _finish(stores, req: IngestResult) -> None:
    """Record the run's outcome and counts; drop its raw pages and batches."""
    await stores.catalog.finish_run(req.run_id, req.outcome, req.model_dump(mode="json"))
    await stores.blobs.delete_prefix(f"raw/{req.source}/{req.run_id}")
    await stores.blobs.delete_prefix(f"batch/{req.source}/{req.run_id}")


ACTIVITIES_BY_QUEUE = {
    DEFAULT_QUEUE: [
        fetch_source_pages,
        transform_page,
        upsert_batch,
        load_page,
        prune_source,
        start_run,
        finish_run,
    ]
}

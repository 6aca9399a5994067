"""IngestSourceWorkflow: one run of one source — fetch → per page transform → upsert → keyword
index (one `load_page` activity, page-load-v1) → prune → index child (what the prune unpublished),
then the embed child started on its own queue and left to catch up (embed-async-v1)."""

from __future__ import annotations

import asyncio

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from learnflow import search_attributes as sa
    from learnflow.contracts import (
        DEFAULT_QUEUE,
        EMBEDDINGS_QUEUE,
        PAGE_FETCHED_SIGNAL,
        EmbedInput,
        EmbedResult,
        FetchInput,
        FetchResult,
        IndexInput,
        IndexResult,
        IngestResult,
        IngestSourceInput,
        PageLoadResult,
        PageRef,
        PruneInput,
        PruneResult,
        TransformInput,
        TransformResult,
        UpsertInput,
        UpsertResult,
        embed_workflow_id,
        index_workflow_id,
    )
    from learnflow.policies import PAGE_LOAD, SOURCE_FETCH, SOURCE_STEP


# How many pages of one kind load at once (bounded so one source cannot flood the workers).
PAGE_WINDOW = 4


class StageProgress:
    """A `progress` query and current details naming the stage and its counts (no commands:
    queries and details are not part of the history's command sequence)."""

    def __init__(self) -> None:
        self._progress: dict[str, object] = {"stage": "starting"}

    @workflow.query
    def progress(self) -> dict[str, object]:
        """Live progress for operators (also shown as the workflow's current details)."""
        return dict(self._progress)

    def _stage(self, stage: str, **counts: object) -> None:
        self._progress.update(stage=stage, **counts)
        workflow.set_current_details(
            f"**{stage}** — "
            + ", ".join(f"{k}: {v}" for k, v in self._progress.items() if k != "stage")
        )


@workflow.defn
class IngestSourceWorkflow(StageProgress):
    def __init__(self) -> None:
        super().__init__()
        self._fetched: list[PageRef] = []  # pages the fetch streamed, not yet started

    @workflow.signal(name=PAGE_FETCHED_SIGNAL)
    def page_fetched(self, page: PageRef) -> None:
        """fetch-streams-v1: a page the fetch stored that can load before the fetch ends."""
        self._fetched.append(page)

    @workflow.run
    async def run(self, req: IngestSourceInput) -> IngestResult:
        info = workflow.info()
        if workflow.patched("run-id-random-tail"):
            # Run ids are UUIDv7: their head is a timestamp shared by runs started together,
            # so the tail (random bits) is what keeps concurrent runs' ids apart.
            run_id = f"{workflow.now():%Y%m%dT%H%M%S}-{info.run_id.replace('-', '')[-12:]}"
        else:
            run_id = f"{workflow.now():%Y%m%dT%H%M%S}-{info.run_id[:8]}"
        workflow.upsert_search_attributes([sa.SOURCE.value_set(req.source)])
        result = IngestResult(source=req.source, run_id=run_id, outcome="ok")
        opts = SOURCE_STEP

        # The fetch records the run and marks the pages that did not change seen (fetch-skips-v1):
        # an unchanged re-run is start, fetch, prune, finish, with no round of page activities.
        fetch_skips = workflow.patched("fetch-skips-v1")
        # ... and, when no page changed, prunes too (fetch-prunes-v1): start, fetch, finish.
        fetch_prunes = fetch_skips and workflow.patched("fetch-prunes-v1")
        # ... and, when that prune leaves nothing to do, records the outcome (fetch-finishes-v1):
        # an unchanged re-run is one activity.
        fetch_finishes = fetch_prunes and workflow.patched("fetch-finishes-v1")
        # ... and hands over, as it stores them, the pages of its first kind that no page loaded
        # before (fetch-streams-v1): those load while the rest is fetched (`_stream_loads`).
        fetch_streams = fetch_finishes and workflow.patched("fetch-streams-v1")
        fetch_in = FetchInput(
            source=req.source,
            run_id=run_id,
            options=req.options,
            record_run=fetch_skips,
            skip_unchanged=fetch_skips,
            prune_if_unchanged=fetch_prunes,
            force_prune=req.force_prune,
            finish_if_idle=fetch_finishes,
            stream_pages=fetch_streams,
        )
        if not fetch_skips:
            await workflow.execute_activity("start_run", fetch_in, summary="record the run", **opts)
        self._stage("fetching")
        fetching = asyncio.ensure_future(
            workflow.execute_activity(
                "fetch_source_pages",
                fetch_in,
                result_type=FetchResult,
                **SOURCE_FETCH,
                summary=f"fetch {req.source}",
            )
        )
        streamed: dict[tuple[str, str | None], PageLoadResult] = {}
        if fetch_streams:
            streamed = await self._stream_loads(req.source, run_id, fetching)
        fetch: FetchResult = await fetching
        result.pages = len(fetch.pages)
        for up in streamed.values():
            _add_load(result, up)
        result.items = fetch.item_count
        if fetch.skipped_reason:
            result.outcome = "skipped"
            return await self._finish(result, opts)

        # Kinds load in the order the source fetched them (courses before the programs that link them).
        kinds: list[str] = []
        for page in fetch.pages:
            if page.kind not in kinds:
                kinds.append(page.kind)
        # Pages of one kind load a few at a time; context pages are read from the manifest.
        windowed = workflow.patched("page-windows-v1")
        window = PAGE_WINDOW if windowed else 1
        # One activity per page (transform → upsert → keyword index), where histories from
        # before page-load-v1 ran transform_page then upsert_batch and indexed in the child only.
        whole = windowed and workflow.patched("page-load-v1")
        pages_done = len(streamed)
        for kind in kinds:
            # A streamed page loaded already; what the fetch then said of it does not count.
            pages = [p for p in fetch.pages if p.kind == kind and (p.key, p.sha256) not in streamed]
            if fetch_skips:  # unchanged pages: their resources are marked seen already
                skipped = [p for p in pages if p.seen is not None]
                result.unchanged += sum(p.seen or 0 for p in skipped)
                pages_done += len(skipped)
                pages = [p for p in pages if p.seen is None]
            for start in range(0, len(pages), window):
                self._stage(
                    "loading",
                    kind=kind,
                    upserted=result.inserted + result.updated,
                    pages_done=pages_done,
                    pages_total=len(fetch.pages),
                )
                batch = pages[start : start + window]
                loads = [
                    self._load_page(req.source, run_id, page, fetch, windowed, whole, opts)
                    for page in batch
                ]
                for up in await asyncio.gather(*loads):
                    pages_done += 1
                    _add_load(result, up)

        prune = fetch.prune  # the fetch pruned: no page changed (fetch-prunes-v1)
        if prune is None:
            self._stage("pruning")
            prune = await workflow.execute_activity(
                "prune_source",
                PruneInput(
                    source=req.source,
                    run_id=run_id,
                    fetch_complete=fetch.complete,
                    force=req.force_prune,
                    options=req.options,
                    written=result.inserted + result.updated,
                ),
                result_type=PruneResult,
                summary="unpublish what vanished upstream (guarded)",
                **opts,
            )
        if fetch.finished is not None:  # idle, and recorded by the fetch (fetch-finishes-v1)
            self._attributes(fetch.finished)
            self._stage("done", outcome=fetch.finished.outcome)
            return fetch.finished
        result.unpublished = prune.unpublished
        if prune.refused:
            result.outcome = "prune_refused"
            result.prune_refused_reason = prune.reason
        elif not fetch.complete:
            result.outcome = "failed_partial"

        # A run that found nothing to do (every page skipped by hash, nothing pruned: an
        # unchanged re-run) starts no child that would find nothing either: ~0.3 s of its ~1.5.
        idle_skips = workflow.patched("rerun-idle-v1")
        # (the prune checked whether the keyword and content indexes lag the source's rows)
        if not idle_skips or prune.index_pending:
            self._stage("indexing")
            indexed: IndexResult = await workflow.execute_child_workflow(
                "IndexResourcesWorkflow",
                IndexInput(source=req.source, run_id=run_id),
                id=index_workflow_id(req.source, run_id),
                search_attributes=sa.for_source(req.source),
                result_type=IndexResult,
                static_summary=f"index {req.source} run {run_id}",
            )
            result.indexed += indexed.indexed
        if idle_skips and not (result.inserted or result.updated or result.unpublished):
            # Nothing this run wrote needs an embedding; what an earlier run left unembedded
            # is the all-sources embeddings schedule's (every 30 minutes).
            return await self._finish(result, opts)
        embed = {
            "id": embed_workflow_id(req.source, run_id),
            "task_queue": EMBEDDINGS_QUEUE,
            "search_attributes": sa.for_source(req.source),
            "static_summary": f"embed {req.source} run {run_id}",
        }
        embed_in = EmbedInput(source=req.source, run_id=run_id)
        if workflow.patched("embed-async-v1"):
            # The catalog is loaded and keyword-findable here; embedding (the slow encoder) catches
            # up on its own queue, as MIT Learn does, and outlives this run (ABANDON): the run
            # waits only for the child to start, never for it to finish.
            self._stage("embedding started")
            await workflow.start_child_workflow(
                "EmbedResourcesWorkflow",
                embed_in,
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                **embed,
            )
            result.embed_workflow_id = embed["id"]
        else:  # histories recorded before embed-async-v1 waited for the embed child
            self._stage("embedding")
            embedded: EmbedResult = await workflow.execute_child_workflow(
                "EmbedResourcesWorkflow", embed_in, result_type=EmbedResult, **embed
            )
            result.embedded = embedded.embedded
        return await self._finish(result, opts)

    async def _stream_loads(
        self, source: str, run_id: str, fetching: asyncio.Future
    ) -> dict[tuple[str, str | None], PageLoadResult]:
        """Load the pages the fetch streams (`page_fetched`) while it runs, `PAGE_WINDOW` at a
        time; return their results by (key, sha256) once the fetch and they are done. The fetch
        streams only pages of its first kind that read no context page, so they load in the
        order a whole fetch would have loaded them, before any later kind. A retried fetch
        streams its pages again: the same bytes are not loaded twice, and changed bytes load
        once the earlier attempt's load of that key ended (never two at once), meanwhile the
        pages streamed after them start."""
        loads: dict[tuple[str, str | None], asyncio.Task] = {}
        by_key: dict[str, asyncio.Task] = {}

        def next_page() -> int | None:
            """The first streamed page that can start now (or is a repeat, to drop)."""
            if sum(not t.done() for t in loads.values()) >= PAGE_WINDOW:
                return None
            for n, page in enumerate(self._fetched):
                earlier = by_key.get(page.key)
                if (page.key, page.sha256) in loads or earlier is None or earlier.done():
                    return n
            return None

        while True:
            await workflow.wait_condition(
                lambda: next_page() is not None or (fetching.done() and not self._fetched)
            )
            n = next_page()
            if n is None:  # the fetch ended and every page it streamed started
                break
            page = self._fetched.pop(n)
            if (page.key, page.sha256) in loads:
                continue
            self._stage("fetching and loading", pages_loading=len(loads) + 1)
            task = asyncio.ensure_future(self._load_streamed(source, run_id, page))
            loads[(page.key, page.sha256)] = by_key[page.key] = task
        await asyncio.gather(*loads.values(), return_exceptions=True)
        return {k: t.result() for k, t in loads.items()}  # the first failure, in stream order

    async def _load_streamed(self, source: str, run_id: str, page: PageRef) -> PageLoadResult:
        return await workflow.execute_activity(
            "load_page",
            TransformInput(source=source, run_id=run_id, page=page),
            result_type=PageLoadResult,
            summary=f"load {page.kind} page ({page.item_count} items, streamed)",
            **PAGE_LOAD,
        )

    async def _load_page(
        self,
        source: str,
        run_id: str,
        page: PageRef,
        fetch: FetchResult,
        windowed: bool,
        whole: bool,
        opts: dict,
    ) -> UpsertResult:
        """Load one stored page: `load_page` (page-load-v1), else transform it, then upsert the
        batch it produced."""
        if windowed:
            tin = TransformInput(
                source=source, run_id=run_id, page=page, manifest_key=fetch.manifest_key
            )
            if whole:
                return await workflow.execute_activity(
                    "load_page",
                    tin,
                    result_type=PageLoadResult,
                    summary=f"load {page.kind} page ({page.item_count} items)",
                    **PAGE_LOAD,
                )
        else:  # histories recorded before page-windows-v1 passed every other kind's pages inline
            context = [p for p in fetch.pages if p.kind != page.kind]
            tin = TransformInput(source=source, run_id=run_id, page=page, context=context)
        tr: TransformResult = await workflow.execute_activity(
            "transform_page",
            tin,
            result_type=TransformResult,
            summary=f"transform {page.kind} page",
            **opts,
        )
        return await workflow.execute_activity(
            "upsert_batch",
            UpsertInput(source=source, run_id=run_id, batch_key=tr.batch_key),
            result_type=UpsertResult,
            summary=f"upsert {tr.resources + tr.feed_items} items",
            **opts,
        )

    async def _finish(self, result: IngestResult, opts: dict) -> IngestResult:
        self._attributes(result)
        await workflow.execute_activity("finish_run", result, summary="record the outcome", **opts)
        self._stage("done", outcome=result.outcome)
        return result

    def _attributes(self, result: IngestResult) -> None:
        workflow.upsert_search_attributes(
            [
                sa.OUTCOME.value_set(result.outcome),
                sa.UPSERTED.value_set(result.inserted + result.updated),
                sa.UNPUBLISHED.value_set(result.unpublished),
                sa.QUARANTINED.value_set(result.quarantined),
            ]
        )


def _add_load(result: IngestResult, up: UpsertResult) -> None:
    result.indexed += getattr(up, "indexed", 0)
    result.inserted += up.inserted
    result.updated += up.updated
    result.unchanged += up.unchanged
    result.quarantined += up.quarantined


WORKFLOWS_BY_QUEUE = {DEFAULT_QUEUE: [IngestSourceWorkflow]}

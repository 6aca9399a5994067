"""LoadResourcesWorkflow: `learn load FILE.jsonl` — resources given as JSON lines (what
`learn transform` prints) into the catalog and both indexes, through the ingestion's activities.

split into pages → per page: read lines (bad ones quarantined) → upsert_batch → index → embed.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from learnflow import search_attributes as sa
    from learnflow.contracts import (
        DEFAULT_QUEUE,
        EMBEDDINGS_QUEUE,
        LOAD_SOURCE,
        EmbedInput,
        EmbedResult,
        FetchInput,
        IndexInput,
        IndexResult,
        IngestResult,
        LoadPageInput,
        LoadPageResult,
        LoadResourcesInput,
        LoadResult,
        LoadSplitResult,
        PageRef,
        UpsertInput,
        UpsertResult,
        embed_workflow_id,
        index_workflow_id,
    )
    from learnflow.policies import HEARTBEAT_TIMEOUT, SOURCE_STEP
    from workflows.ingest import PAGE_WINDOW, StageProgress

# The console shows this many bad lines; every one of them is in the quarantine table.
MAX_PROBLEMS = 100


@workflow.defn
class LoadResourcesWorkflow(StageProgress):
    """Progress (`progress` query): splitting → loading (pages, counts) → indexing → embedding."""

    @workflow.run
    async def run(self, req: LoadResourcesInput) -> LoadResult:
        run_id = req.load_id
        workflow.upsert_search_attributes([sa.SOURCE.value_set(LOAD_SOURCE)])
        result = LoadResult(source=LOAD_SOURCE, run_id=run_id, outcome="ok")
        opts = SOURCE_STEP
        await workflow.execute_activity(
            "start_run",
            FetchInput(source=LOAD_SOURCE, run_id=run_id),
            summary="record the run",
            **opts,
        )
        self._stage("splitting")
        split: LoadSplitResult = await workflow.execute_activity(
            "split_jsonl",
            req,
            result_type=LoadSplitResult,
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            summary=f"split {req.file_name or 'the file'} into pages",
            **opts,
        )
        result.lines = split.lines
        result.pages = len(split.pages)
        per_page = max(1, req.lines_per_page)
        for start in range(0, len(split.pages), PAGE_WINDOW):
            self._stage(
                "loading",
                lines=split.lines,
                pages_done=start,
                pages_total=len(split.pages),
                loaded=result.inserted + result.updated,
                unchanged=result.unchanged,
                quarantined=result.quarantined,
            )
            loads = [
                self._load_page(req, split.pages[n], n * per_page + 1, opts)
                for n in range(start, min(start + PAGE_WINDOW, len(split.pages)))
            ]
            for page, up in await asyncio.gather(*loads):
                result.items += page.resources + page.other_items
                result.inserted += up.inserted
                result.updated += up.updated
                result.unchanged += up.unchanged
                result.quarantined += up.quarantined
                room = MAX_PROBLEMS - len(result.problems)
                result.problems += page.problems[: max(0, room)]

        self._stage(
            "indexing",
            pages_done=len(split.pages),
            loaded=result.inserted + result.updated,
            unchanged=result.unchanged,
            quarantined=result.quarantined,
        )
        # The children bring the engines in line with every pending row: the loaded resources
        # may come from many sources, and anything else pending is due anyway.
        indexed: IndexResult = await workflow.execute_child_workflow(
            "IndexResourcesWorkflow",
            IndexInput(run_id=run_id),
            id=index_workflow_id(LOAD_SOURCE, run_id),
            result_type=IndexResult,
            static_summary=f"index load {run_id}",
        )
        result.indexed = indexed.indexed
        self._stage("embedding", indexed=result.indexed)
        embedded: EmbedResult = await workflow.execute_child_workflow(
            "EmbedResourcesWorkflow",
            EmbedInput(run_id=run_id),
            id=embed_workflow_id(LOAD_SOURCE, run_id),
            task_queue=EMBEDDINGS_QUEUE,
            result_type=EmbedResult,
            static_summary=f"embed load {run_id}",
        )
        result.embedded = embedded.embedded
        workflow.upsert_search_attributes(
            [
                sa.OUTCOME.value_set(result.outcome),
                sa.UPSERTED.value_set(result.inserted + result.updated),
                sa.QUARANTINED.value_set(result.quarantined),
            ]
        )
        # finish_run records the counts and deletes the file and its pages and batches.
        record = IngestResult.model_validate(result.model_dump(exclude={"lines", "problems"}))
        await workflow.execute_activity("finish_run", record, summary="record the outcome", **opts)
        self._stage("done", outcome=result.outcome, embedded=result.embedded)
        return result

    async def _load_page(
        self, req: LoadResourcesInput, ref: PageRef, first_line: int, opts: dict
    ) -> tuple[LoadPageResult, UpsertResult]:
        """Read one page of lines into a batch, then upsert it as an ingestion would."""
        page: LoadPageResult = await workflow.execute_activity(
            "read_jsonl_page",
            LoadPageInput(
                load_id=req.load_id,
                page=ref,
                first_line=first_line,
                file_name=req.file_name,
            ),
            result_type=LoadPageResult,
            summary=f"read lines {first_line}…",
            **opts,
        )
        up: UpsertResult = await workflow.execute_activity(
            "upsert_batch",
            UpsertInput(source=LOAD_SOURCE, run_id=req.load_id, batch_key=page.batch_key),
            result_type=UpsertResult,
            summary=f"upsert {page.resources + page.other_items} items",
            **opts,
        )
        return page, up


WORKFLOWS_BY_QUEUE = {DEFAULT_QUEUE: [LoadResourcesWorkflow]}

"""Content archives (edX, MITx Online, xPRO, OLL, Canvas) and OCW site data into content files.

* `IngestArchivesWorkflow` — one scheduled run of one archive source: discover the newest archive
  per course, one child `IngestArchiveWorkflow` per course (id `archive/<source>/<course>`, a
  sliding window of `max_concurrent`), continue-as-new after each discovery page or when Temporal
  suggests it, then index.
* `IngestArchiveWorkflow` — one archive by S3 key (also what the content_files webhook starts).
* `IngestOcwWorkflow` — OCW sites by prefix (webhook) or all of `courses/` (on demand).
* `UnpublishOcwCourseWorkflow` — the OCW webhook's `unpublished` case: unpublish the site's
  course and its files, then index and embed so it leaves keyword and vector search.
* `DeleteCourseContentWorkflow`, `PurgeContentFilesWorkflow` — the delete webhook and the daily
  purge of unpublished files.

Archives move between activities by S3 key; bytes never enter a workflow payload. The models
here are the workflows' and activities' inputs and outputs (import-light: pydantic only).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ChildWorkflowError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from learnflow import search_attributes as sa
    from learnflow.contracts import (
        ARCHIVE_QUEUE,
        DEFAULT_QUEUE,
        EMBEDDINGS_QUEUE,
        EmbedInput,
        EmbedResult,
        IndexInput,
        IndexResult,
        IngestSourceInput,
        OcwUnpublishInput,
        OcwUnpublishResult,
        embed_workflow_id,
        index_workflow_id,
    )
    from learnflow.contracts.archives import (
        ArchiveIngestResult,
        ArchiveRef,
        ArchivesTotals,
        ArchiveWebhookInput,
        DeleteCourseContentInput,
        DeleteCourseContentResult,
        DiscoverArchivesInput,
        DiscoverArchivesResult,
        DiscoverOcwInput,
        DiscoverOcwResult,
        IngestArchivesInput,
        IngestArchivesResult,
        IngestOcwResult,
        OcwSiteInput,
        PurgeContentFilesInput,
        PurgeContentFilesResult,
    )
    from learnflow.errors import InvalidPurge
    from learnflow.policies import ARCHIVE_LONG, ARCHIVE_PURGE, ARCHIVE_SHORT


# -- helpers ------------------------------------------------------------------------------------


R = TypeVar("R")
_MAX_ID_PART = 200


def archive_workflow_id(source: str, course_id: str) -> str:
    """`archive/<source>/<course>`; an over-long course id keeps its head plus a digest."""
    if len(course_id.encode()) > _MAX_ID_PART:
        digest = hashlib.sha256(course_id.encode()).hexdigest()[:24]
        course_id = f"{course_id[:120]}~{digest}"
    return f"archive/{source}/{course_id}"


async def _start_index(source: str, tag: str) -> str:
    """Start indexing (resources and content files) and return its workflow id.

    Not awaited: the index pass works from watermarks and content hashes, so a slow or failing
    pass delays search, never the archive run, and any later pass catches up."""
    index_id = f"{workflow.info().workflow_id}/index/{tag}"
    # Already running (an earlier run's pass): the next pass picks up what that one misses.
    with contextlib.suppress(WorkflowAlreadyStartedError):
        await workflow.start_child_workflow(
            "IndexResourcesWorkflow",
            IndexInput(source=source),
            id=index_id,
            task_queue=DEFAULT_QUEUE,
            search_attributes=sa.for_source(source),
            parent_close_policy=ParentClosePolicy.ABANDON,
            static_summary=f"index {source} after content files",
        )
    return index_id


async def _step(source: str, name: str, req: Any, result_type: type[R], summary: str, options):
    """A one-activity step as the archive workflows run it: the source as a search attribute,
    the activity, then its outcome as a search attribute (what `learn status` lists)."""
    workflow.upsert_search_attributes([sa.SOURCE.value_set(source)])
    result = await workflow.execute_activity(
        name, req, result_type=result_type, summary=summary[:200], **options
    )
    workflow.upsert_search_attributes([sa.OUTCOME.value_set(result.outcome)])  # type: ignore[attr-defined]
    return result


# -- workflows ----------------------------------------------------------------------------------


@workflow.defn
class IngestArchiveWorkflow:
    """One course archive by key: match the run, skip if unchanged, load its content files."""

    @workflow.run
    async def run(self, req: ArchiveWebhookInput) -> ArchiveIngestResult:
        result = await _step(
            req.source, "ingest_course_archive", req, ArchiveIngestResult,
            f"ingest {req.content_path}", ARCHIVE_LONG,
        )  # fmt: skip
        workflow.set_current_details(
            f"**{result.outcome}** {result.run_id or result.course_id or ''}: "
            f"{result.loaded} files, {result.extractor_calls} extracted, {result.failed} failed"
        )
        # Started on its own (webhook): index now. Under IngestArchivesWorkflow the parent
        # indexes once at the end instead of once per course.
        if workflow.info().parent is None and result.outcome == "loaded":
            result.index_workflow_id = await _start_index(result.source, "0")
        return result


@workflow.defn
class IngestArchivesWorkflow:
    """A source's archives: discover, fan out one child per course, continue as new, index."""

    @workflow.run
    async def run(self, req: IngestArchivesInput) -> IngestArchivesResult:
        workflow.upsert_search_attributes([sa.SOURCE.value_set(req.source)])
        totals = req.totals
        discovered: DiscoverArchivesResult = await workflow.execute_activity(
            "discover_course_archives",
            DiscoverArchivesInput(
                source=req.source, after_course=req.after_course, limit=req.page_size
            ),
            result_type=DiscoverArchivesResult,
            summary=f"list {req.source} archives after {req.after_course or 'the start'}"[:200],
            **ARCHIVE_SHORT,
        )
        source = discovered.source
        # a list, not a set: workflow.wait keeps the order deterministic
        pending: list[asyncio.Task[ArchiveIngestResult | None]] = []

        async def one(ref: ArchiveRef) -> ArchiveIngestResult | None:
            try:
                return await workflow.execute_child_workflow(
                    IngestArchiveWorkflow.run,
                    ArchiveWebhookInput(
                        source=source, content_path=ref.key, overwrite=req.overwrite
                    ),
                    id=archive_workflow_id(source, ref.course_id),
                    task_queue=ARCHIVE_QUEUE,
                    parent_close_policy=ParentClosePolicy.TERMINATE,
                    static_summary=f"{source} archive {ref.course_id}"[:200],
                )
            except ChildWorkflowError:
                # The child failed after its retries: count it and go on with the other courses.
                return ArchiveIngestResult(
                    source=source, key=ref.key, course_id=ref.course_id, outcome="failed"
                )
            except WorkflowAlreadyStartedError:
                # The same course is being ingested already (a webhook delivery): leave it be.
                totals.already_running += 1
                return None

        launched: list[ArchiveRef] = []
        for ref in discovered.archives:
            if workflow.info().is_continue_as_new_suggested():
                break  # finish what runs, then continue as new after the last course launched
            while len(pending) >= max(1, req.max_concurrent):
                done, pending = await workflow.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if (r := task.result()) is not None:
                        totals.add(r)
            pending.append(asyncio.ensure_future(one(ref)))
            launched.append(ref)
            workflow.set_current_details(
                f"**{source}** generation {req.generation}: {totals.courses} courses done, "
                f"{len(pending)} running, after {req.after_course or '-'}"
            )
        while pending:
            done, pending = await workflow.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if (r := task.result()) is not None:
                    totals.add(r)

        if launched and (discovered.more or len(launched) < len(discovered.archives)):
            # Every page starts a fresh history: the source's course count does not bound it.
            workflow.continue_as_new(
                req.model_copy(
                    update={
                        "source": source,
                        "after_course": launched[-1].course_id,
                        "totals": totals,
                        "generation": req.generation + 1,
                    }
                )
            )
        index_id = None
        if req.index and (totals.outcomes.get("loaded") or totals.resources):
            index_id = await _start_index(source, str(req.generation))
        workflow.upsert_search_attributes(
            [
                sa.OUTCOME.value_set(
                    "ok" if not totals.outcomes.get("failed") else "failed_partial"
                ),
                sa.UPSERTED.value_set(totals.loaded),
                sa.UNPUBLISHED.value_set(totals.retired),
            ]
        )
        return IngestArchivesResult(
            source=source,
            totals=totals,
            generations=req.generation + 1,
            index_workflow_id=index_id,
        )


@workflow.defn
class IngestOcwWorkflow:
    """OCW sites (`courses/<slug>/`): the webhook's prefixes, or every site when none given.

    Takes the OCW webhook's `IngestSourceInput(source="ocw", options={"prefixes": "a,b"})`."""

    @workflow.run
    async def run(self, req: IngestSourceInput) -> IngestOcwResult:
        options = dict(req.options)
        overwrite = str(options.get("overwrite", "")).lower() in ("1", "true", "yes")
        max_concurrent = int(options.get("max_concurrent", "4") or 4)
        prefixes = [p.strip() for p in (options.get("prefixes") or "").split(",") if p.strip()]
        workflow.upsert_search_attributes([sa.SOURCE.value_set("ocw")])
        found: DiscoverOcwResult = await workflow.execute_activity(
            "discover_ocw_sites",
            DiscoverOcwInput(prefixes=prefixes),
            result_type=DiscoverOcwResult,
            summary="list OCW sites",
            **ARCHIVE_SHORT,
        )
        totals = ArchivesTotals()
        pending: list[asyncio.Task[ArchiveIngestResult]] = []
        for prefix in found.prefixes:
            while len(pending) >= max(1, max_concurrent):
                done, pending = await workflow.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    totals.add(task.result())
            pending.append(
                asyncio.ensure_future(
                    workflow.execute_activity(
                        "ingest_ocw_site",
                        OcwSiteInput(prefix=prefix, overwrite=overwrite),
                        result_type=ArchiveIngestResult,
                        summary=f"ingest {prefix}"[:200],
                        **ARCHIVE_LONG,
                    )
                )
            )
        while pending:
            done, pending = await workflow.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                totals.add(task.result())
        index_id = None
        if totals.outcomes.get("loaded") or totals.resources:
            index_id = await _start_index("ocw", "0")
        # Counts in the UI like every other source's run; histories from before have none.
        if workflow.patched("ocw-counts-v1"):
            workflow.upsert_search_attributes(
                [
                    sa.OUTCOME.value_set(
                        "ok" if not totals.outcomes.get("failed") else "failed_partial"
                    ),
                    sa.UPSERTED.value_set(totals.loaded),
                    sa.UNPUBLISHED.value_set(totals.retired),
                ]
            )
        return IngestOcwResult(
            totals=totals, rejected_prefixes=found.rejected, index_workflow_id=index_id
        )


@workflow.defn
class DeleteCourseContentWorkflow:
    """The content_files/delete webhook: unpublish the course(s) and their files, deindex."""

    @workflow.run
    async def run(self, req: DeleteCourseContentInput) -> DeleteCourseContentResult:
        result = await _step(
            req.source, "delete_course_content", req, DeleteCourseContentResult,
            f"unpublish {req.source} {req.course_id}", ARCHIVE_SHORT,
        )  # fmt: skip
        if result.resources or result.content_files:
            result.index_workflow_id = await _start_index(req.source, "0")
        return result


@workflow.defn
class UnpublishOcwCourseWorkflow:
    """The OCW webhook's `site_uid` + `unpublished: true` (MIT Learn: unpublish the course,
    `resource_unpublished_actions`): unpublish the course and its content files, then wait for
    the index and embed passes, so when this completes the course is out of both searches."""

    @workflow.run
    async def run(self, req: OcwUnpublishInput) -> OcwUnpublishResult:
        result = await _step(
            "ocw", "unpublish_ocw_course", req, OcwUnpublishResult,
            f"unpublish OCW site {req.site_uid}", ARCHIVE_SHORT,
        )  # fmt: skip
        if result.outcome != "unknown":
            # Also after `already_unpublished`: a first attempt may have stopped before its
            # passes ran, and a pass with nothing to do is cheap.
            run = f"unpublish-{req.site_uid[:64]}-{workflow.info().run_id[:8]}"
            result.indexed = await workflow.execute_child_workflow(
                "IndexResourcesWorkflow",
                IndexInput(source="ocw"),
                id=index_workflow_id("ocw", run),
                task_queue=DEFAULT_QUEUE,
                search_attributes=sa.for_source("ocw"),
                result_type=IndexResult,
                static_summary=f"index ocw after unpublishing {req.site_uid}"[:200],
            )
            result.embedded = await workflow.execute_child_workflow(
                "EmbedResourcesWorkflow",
                EmbedInput(source="ocw"),
                id=embed_workflow_id("ocw", run),
                task_queue=EMBEDDINGS_QUEUE,
                search_attributes=sa.for_source("ocw"),
                result_type=EmbedResult,
                static_summary=f"embed ocw after unpublishing {req.site_uid}"[:200],
            )
        workflow.set_current_details(
            f"**{result.outcome}** {result.readable_id or req.site_uid}:"
            f" {result.content_files} content files unpublished"
        )
        return result


@workflow.defn
class PurgeContentFilesWorkflow:
    """Daily: hard-delete content files unpublished more than `retention_days` ago."""

    @workflow.run
    async def run(self, req: PurgeContentFilesInput) -> PurgeContentFilesResult:
        if req.retention_days < 1:
            raise InvalidPurge("retention_days must be at least 1")
        return await workflow.execute_activity(
            "purge_content_files",
            req,
            result_type=PurgeContentFilesResult,
            **ARCHIVE_PURGE,
            summary=f"purge files unpublished > {req.retention_days} days",
        )


WORKFLOWS_BY_QUEUE = {
    ARCHIVE_QUEUE: [IngestArchivesWorkflow, IngestArchiveWorkflow, IngestOcwWorkflow],
    DEFAULT_QUEUE: [
        DeleteCourseContentWorkflow,
        PurgeContentFilesWorkflow,
        UnpublishOcwCourseWorkflow,
    ],
}

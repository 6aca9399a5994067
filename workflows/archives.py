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
from datetime import datetime, timedelta

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError, ChildWorkflowError, WorkflowAlreadyStartedError
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
    from learnflow.webhooks.models import ArchiveWebhookInput, DeleteCourseContentInput


# -- models ------------------------------------------------------------------------------------


class ArchiveRef(BaseModel):
    """The newest archive of one course in the bucket."""

    course_id: str
    key: str
    last_modified: datetime | None = None


class DiscoverArchivesInput(BaseModel):
    source: str
    after_course: str | None = None  # resume cursor: course ids are listed in sorted order
    limit: int = 100


class DiscoverArchivesResult(BaseModel):
    source: str  # the canonical (ETL) source name
    archives: list[ArchiveRef] = Field(default_factory=list)
    more: bool = False
    courses_total: int = 0


class FileFailureOut(BaseModel):
    key: str
    reason: str


class ArchiveIngestResult(BaseModel):
    """What happened to one archive. `outcome`:
    loaded | empty | unchanged_key | unchanged_checksum | no_run | retired | rejected |
    all_failed | missing."""

    source: str
    key: str
    outcome: str
    course_id: str | None = None
    run_id: str | None = None
    readable_id: str | None = None
    reason: str | None = None
    checksum: str | None = None
    loaded: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    reused: int = 0
    textless: int = 0
    extractor_calls: int = 0
    retired: int = 0  # unpublished (soft) or, for Canvas, deleted
    failed: int = 0
    failures: list[FileFailureOut] = Field(default_factory=list)  # the first few, for operators
    resumed_from_chunk: int = 0
    resources_upserted: int = 0  # Canvas/OCW create or update their course resource
    index_workflow_id: str | None = None  # started when this ran on its own (webhook)


class ArchivesTotals(BaseModel):
    courses: int = 0
    outcomes: dict[str, int] = Field(default_factory=dict)
    loaded: int = 0
    extractor_calls: int = 0
    retired: int = 0
    failed: int = 0
    already_running: int = 0
    resources: int = 0

    def add(self, r: ArchiveIngestResult) -> None:
        self.courses += 1
        self.resources += r.resources_upserted
        self.outcomes[r.outcome] = self.outcomes.get(r.outcome, 0) + 1
        self.loaded += r.loaded
        self.extractor_calls += r.extractor_calls
        self.retired += r.retired
        self.failed += r.failed


class IngestArchivesInput(BaseModel):
    """One run of one archive source. The schedule passes only `source` (canvas, edx/mit_edx,
    mitxonline, xpro, oll); the rest is for operators, tests and continue-as-new."""

    source: str
    overwrite: bool = False
    max_concurrent: int = 4
    page_size: int = 100  # courses per discovery page; the workflow continues as new after each
    after_course: str | None = None
    totals: ArchivesTotals = Field(default_factory=ArchivesTotals)
    generation: int = 0  # how many times this run continued as new
    index: bool = True


class IngestArchivesResult(BaseModel):
    source: str
    totals: ArchivesTotals
    generations: int = 0
    index_workflow_id: str | None = None


class OcwSiteInput(BaseModel):
    prefix: str  # courses/<slug>
    overwrite: bool = False


class DiscoverOcwInput(BaseModel):
    prefixes: list[str] = Field(default_factory=list)  # empty: every site under courses/


class DiscoverOcwResult(BaseModel):
    prefixes: list[str] = Field(default_factory=list)
    rejected: list[str] = Field(default_factory=list)


class IngestOcwResult(BaseModel):
    totals: ArchivesTotals
    rejected_prefixes: list[str] = Field(default_factory=list)
    index_workflow_id: str | None = None


class DeleteCourseContentResult(BaseModel):
    source: str
    course_id: str
    outcome: str  # deleted | refused | nothing
    reason: str | None = None
    resources: int = 0
    content_files: int = 0
    index_workflow_id: str | None = None


class PurgeContentFilesInput(BaseModel):
    retention_days: int = 14
    batch_size: int = 1000


class PurgeContentFilesResult(BaseModel):
    deleted: int = 0


# -- helpers ------------------------------------------------------------------------------------

RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=2),
    maximum_attempts=6,
    non_retryable_error_types=["UnknownArchiveSource", "InvalidArchiveRequest"],
)
SHORT = {"start_to_close_timeout": timedelta(minutes=5), "retry_policy": RETRY}
# One course: download, unpack, Tika. Heartbeats carry the resume cursor (the chunk index).
LONG = {
    "start_to_close_timeout": timedelta(hours=2),
    "heartbeat_timeout": timedelta(minutes=2),
    "retry_policy": RETRY,
}

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
            parent_close_policy=ParentClosePolicy.ABANDON,
            static_summary=f"index {source} after content files",
        )
    return index_id


# -- workflows ----------------------------------------------------------------------------------


@workflow.defn
class IngestArchiveWorkflow:
    """One course archive by key: match the run, skip if unchanged, load its content files."""

    @workflow.run
    async def run(self, req: ArchiveWebhookInput) -> ArchiveIngestResult:
        workflow.upsert_search_attributes([sa.SOURCE.value_set(req.source)])
        result: ArchiveIngestResult = await workflow.execute_activity(
            "ingest_course_archive",
            req,
            result_type=ArchiveIngestResult,
            summary=f"ingest {req.content_path}"[:200],
            **LONG,
        )
        workflow.upsert_search_attributes([sa.OUTCOME.value_set(result.outcome)])
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
            **SHORT,
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
            **SHORT,
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
                        **LONG,
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
        workflow.upsert_search_attributes([sa.SOURCE.value_set(req.source)])
        result: DeleteCourseContentResult = await workflow.execute_activity(
            "delete_course_content",
            req,
            result_type=DeleteCourseContentResult,
            summary=f"unpublish {req.source} {req.course_id}"[:200],
            **SHORT,
        )
        workflow.upsert_search_attributes([sa.OUTCOME.value_set(result.outcome)])
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
        workflow.upsert_search_attributes([sa.SOURCE.value_set("ocw")])
        result: OcwUnpublishResult = await workflow.execute_activity(
            "unpublish_ocw_course",
            req,
            result_type=OcwUnpublishResult,
            summary=f"unpublish OCW site {req.site_uid}"[:200],
            **SHORT,
        )
        workflow.upsert_search_attributes([sa.OUTCOME.value_set(result.outcome)])
        if result.outcome != "unknown":
            # Also after `already_unpublished`: a first attempt may have stopped before its
            # passes ran, and a pass with nothing to do is cheap.
            run = f"unpublish-{req.site_uid[:64]}-{workflow.info().run_id[:8]}"
            result.indexed = await workflow.execute_child_workflow(
                "IndexResourcesWorkflow",
                IndexInput(source="ocw"),
                id=index_workflow_id("ocw", run),
                task_queue=DEFAULT_QUEUE,
                result_type=IndexResult,
                static_summary=f"index ocw after unpublishing {req.site_uid}"[:200],
            )
            result.embedded = await workflow.execute_child_workflow(
                "EmbedResourcesWorkflow",
                EmbedInput(source="ocw"),
                id=embed_workflow_id("ocw", run),
                task_queue=EMBEDDINGS_QUEUE,
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
            raise ApplicationError("retention_days must be at least 1", type="InvalidPurge")
        return await workflow.execute_activity(
            "purge_content_files",
            req,
            result_type=PurgeContentFilesResult,
            start_to_close_timeout=timedelta(minutes=30),
            heartbeat_timeout=timedelta(minutes=2),
            retry_policy=RETRY,
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

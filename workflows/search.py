"""Child workflows that bring the search engines in line with the catalog."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from learnflow.contracts import (
        DEFAULT_QUEUE,
        EMBEDDINGS_QUEUE,
        EmbedInput,
        EmbedResult,
        IndexInput,
        IndexResult,
        PromoteResult,
        RetireInput,
        RetireResult,
    )
    from learnflow.policies import EMBED_PASS, INDEX_PASS, PROMOTE_STEP

R = TypeVar("R")


async def _passes(req: Any, result_type: type[R], options: dict, verb: str, patch: str) -> R:
    """The resources pass (`{verb}_pending`), then the content files pass
    (`{verb}_content_files`), which joined later behind `patch`: histories from before have no
    such activity."""
    scope = req.source or "all sources"
    result = await workflow.execute_activity(
        f"{verb}_pending", req, result_type=result_type, **options, summary=f"{verb} {scope}"
    )
    if workflow.patched(patch):
        files = await workflow.execute_activity(
            f"{verb}_content_files",
            req,
            result_type=result_type,
            **options,
            summary=f"{verb} content files of {scope}",
        )
        workflow.logger.info("content files %s: %s", verb, files.model_dump())
    return result


@workflow.defn
class IndexResourcesWorkflow:
    """Index new and changed resources of a source (or all) and changed content files,
    deindex unpublished ones."""

    @workflow.run
    async def run(self, req: IndexInput) -> IndexResult:
        return await _passes(req, IndexResult, INDEX_PASS, "index", "index-content-files")


@workflow.defn
class EmbedResourcesWorkflow:
    """Embed resources whose embedding text changed and content files changed since the last
    pass; remove unpublished ones (every 30 minutes, and after each ingestion)."""

    @workflow.run
    async def run(self, req: EmbedInput) -> EmbedResult:
        result = await _passes(req, EmbedResult, EMBED_PASS, "embed", "embed-content-files")
        if workflow.patched("embed-promote"):
            await _promote(req)
        return result


async def _promote(req: EmbedInput) -> None:
    """After a change of encoder: serve the new encoder's collections once complete, then drop
    the old ones after a grace, when every search service reads the new ones (the keyword
    index's alias swap, for vectors)."""
    promoted = await workflow.execute_activity(
        "promote_embeddings",
        req,
        result_type=PromoteResult,
        **PROMOTE_STEP,
        summary="promote the configured encoder's collections when complete",
    )
    workflow.logger.info("embeddings promote: %s", promoted.model_dump())
    if promoted.retire:
        if promoted.grace_seconds > 0:
            await workflow.sleep(timedelta(seconds=promoted.grace_seconds))
        await workflow.execute_activity(
            "retire_embeddings",
            RetireInput(encoder=promoted.retire),
            result_type=RetireResult,
            **PROMOTE_STEP,
            summary=f"drop the collections of {promoted.retire}",
        )


WORKFLOWS_BY_QUEUE = {
    DEFAULT_QUEUE: [IndexResourcesWorkflow],
    EMBEDDINGS_QUEUE: [EmbedResourcesWorkflow],
}

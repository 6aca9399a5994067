"""Child workflows that bring the search engines in line with the catalog."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from learnflow.contracts import (
        DEFAULT_QUEUE,
        EMBEDDINGS_QUEUE,
        EmbedInput,
        EmbedResult,
        IndexInput,
        IndexResult,
    )
    from learnflow.policies import EMBED_PASS, INDEX_PASS


@workflow.defn
class IndexResourcesWorkflow:
    """Index new and changed resources of a source (or all) and changed content files,
    deindex unpublished ones."""

    @workflow.run
    async def run(self, req: IndexInput) -> IndexResult:
        result = await workflow.execute_activity(
            "index_pending",
            req,
            result_type=IndexResult,
            **INDEX_PASS,
            summary=f"index {req.source or 'all sources'}",
        )
        # Content files joined later: histories from before have no such activity.
        if workflow.patched("index-content-files"):
            files = await workflow.execute_activity(
                "index_content_files",
                req,
                result_type=IndexResult,
                **INDEX_PASS,
                summary=f"index content files of {req.source or 'all sources'}",
            )
            workflow.logger.info(
                "content files indexed=%d deindexed=%d", files.indexed, files.deindexed
            )
        return result


@workflow.defn
class EmbedResourcesWorkflow:
    """Embed resources whose embedding text changed and content files changed since the last
    pass; remove unpublished ones (every 30 minutes, and after each ingestion)."""

    @workflow.run
    async def run(self, req: EmbedInput) -> EmbedResult:
        result = await workflow.execute_activity(
            "embed_pending",
            req,
            result_type=EmbedResult,
            **EMBED_PASS,
            summary=f"embed {req.source or 'all sources'}",
        )
        # Content-file chunks joined later: histories from before have no such activity.
        if workflow.patched("embed-content-files"):
            files = await workflow.execute_activity(
                "embed_content_files",
                req,
                result_type=EmbedResult,
                **EMBED_PASS,
                summary=f"embed content files of {req.source or 'all sources'}",
            )
            workflow.logger.info(
                "content files embedded=%d removed=%d", files.embedded, files.removed
            )
        return result


WORKFLOWS_BY_QUEUE = {
    DEFAULT_QUEUE: [IndexResourcesWorkflow],
    EMBEDDINGS_QUEUE: [EmbedResourcesWorkflow],
}

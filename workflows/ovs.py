"""The OVS webhook's workflows: a video changed (upsert it) or was deleted (unpublish it), then
the search engines follow (index and embed children, as after a crawl).

Started by the webhook service (`webhook_service/targets.py`) with ids
`webhook/ovs_videos/<key>/…` and `webhook/ovs_videos_delete/<key>/…`.
"""

from __future__ import annotations

from typing import Any, TypeVar

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from learnflow import search_attributes as sa
    from learnflow.contracts import (
        DEFAULT_QUEUE,
        EMBEDDINGS_QUEUE,
        EmbedInput,
        EmbedResult,
        IndexInput,
        IndexResult,
        PruneResult,
        UpsertResult,
        embed_workflow_id,
        index_workflow_id,
    )
    from learnflow.contracts.ovs import OvsVideoDeleteInput, OvsVideoWebhookInput
    from learnflow.policies import WEBHOOK_STEP

SOURCE = "ovs"
R = TypeVar("R")


async def _follow_in_search(run: str) -> tuple[IndexResult, EmbedResult]:
    """Index, then embed, what changed in the OVS catalog (both only touch changed rows)."""
    indexed: IndexResult = await workflow.execute_child_workflow(
        "IndexResourcesWorkflow",
        IndexInput(source=SOURCE),
        id=index_workflow_id(SOURCE, run),
        search_attributes=sa.for_source(SOURCE),
        result_type=IndexResult,
        static_summary=f"index {SOURCE} after webhook {run}",
    )
    embedded: EmbedResult = await workflow.execute_child_workflow(
        "EmbedResourcesWorkflow",
        EmbedInput(source=SOURCE),
        id=embed_workflow_id(SOURCE, run),
        task_queue=EMBEDDINGS_QUEUE,
        search_attributes=sa.for_source(SOURCE),
        result_type=EmbedResult,
        static_summary=f"embed {SOURCE} after webhook {run}",
    )
    return indexed, embedded


def _run_name(key: str) -> str:
    return f"webhook-{key}-{workflow.info().run_id[:8]}"


async def _apply(name: str, req: Any, result_type: type[R], summary: str) -> R:
    """The webhook's one change to the catalog, then both searches follow it."""
    result = await workflow.execute_activity(
        name, req, result_type=result_type, **WEBHOOK_STEP, summary=summary
    )
    await _follow_in_search(_run_name(req.key))
    return result


@workflow.defn
class IngestOvsVideoWorkflow:
    @workflow.run
    async def run(self, req: OvsVideoWebhookInput) -> UpsertResult:
        return await _apply("upsert_ovs_video", req, UpsertResult, f"upsert OVS video {req.key}")


@workflow.defn
class DeleteOvsVideoWorkflow:
    @workflow.run
    async def run(self, req: OvsVideoDeleteInput) -> PruneResult:
        summary = f"unpublish OVS video {req.key}"
        return await _apply("unpublish_ovs_video", req, PruneResult, summary)


WORKFLOWS_BY_QUEUE = {DEFAULT_QUEUE: [IngestOvsVideoWorkflow, DeleteOvsVideoWorkflow]}

"""The OVS webhook workflows on the real stack: a posted video is upserted exactly as the crawl
loads it, searchable; a delete unpublishes it and removes it from search."""

from __future__ import annotations

import json

import pytest

from learnflow.contracts import PruneResult, UpsertResult
from learnflow.contracts.ovs import OvsVideoDeleteInput, OvsVideoWebhookInput
from tests.conftest import TEST_JSON, unique_id
from tests.sources.test_every_source import _search

pytestmark = [pytest.mark.temporal, pytest.mark.postgres, pytest.mark.e2e, pytest.mark.webhooks]

VIDEO = json.loads((TEST_JSON / "ovs_videos.json").read_bytes())["results"][0]


async def _state(app, key: str) -> tuple[bool, str] | None:
    async with app.stores.pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT published, title FROM learning_resource WHERE etl_source = 'ovs'"
            " AND readable_id = $1 AND resource_type = 'video'",
            key,
        )
    return (row["published"], row["title"]) if row else None


async def test_webhook_upsert_then_delete(sources_app):
    app = sources_app
    key = unique_id("ovs").replace("-", "")[:20].ljust(32, "0")
    video = {**VIDEO, "key": key, "title": f"Webhook lecture {key[:6]} on topology"}

    async def run(workflow: str, arg, result_type):
        return await app.client.execute_workflow(
            workflow,
            arg,
            id=f"webhook/{unique_id(workflow)}",
            task_queue="default",
            result_type=result_type,
        )

    first = await run(
        "IngestOvsVideoWorkflow", OvsVideoWebhookInput(key=key, video=video), UpsertResult
    )
    assert (first.inserted, first.quarantined) == (1, 0)
    assert await _state(app, key) == (True, video["title"])
    assert key in await _search(app.grpc_address, f"Webhook lecture {key[:6]}")

    # The same video again (a redelivery) rewrites nothing.
    again = await run(
        "IngestOvsVideoWorkflow", OvsVideoWebhookInput(key=key, video=video), UpsertResult
    )
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 1)

    gone = await run("DeleteOvsVideoWorkflow", OvsVideoDeleteInput(key=key), PruneResult)
    assert gone.unpublished == 1
    assert await _state(app, key) == (False, video["title"])
    assert key not in await _search(app.grpc_address, f"Webhook lecture {key[:6]}")
    assert (
        await run("DeleteOvsVideoWorkflow", OvsVideoDeleteInput(key=key), PruneResult)
    ).unpublished == 0


async def test_webhook_private_video_is_unpublished(sources_app):
    app = sources_app
    key = unique_id("ovsp").replace("-", "")[:20].ljust(32, "1")
    video = {**VIDEO, "key": key, "title": "Soon private"}
    await app.client.execute_workflow(
        "IngestOvsVideoWorkflow",
        OvsVideoWebhookInput(key=key, video=video),
        id=f"webhook/{unique_id('ovs')}",
        task_queue="default",
        result_type=UpsertResult,
    )
    assert await _state(app, key) == (True, "Soon private")
    await app.client.execute_workflow(
        "IngestOvsVideoWorkflow",
        OvsVideoWebhookInput(key=key, video={**video, "is_public": False}),
        id=f"webhook/{unique_id('ovs')}",
        task_queue="default",
        result_type=UpsertResult,
    )
    assert await _state(app, key) == (False, "Soon private")

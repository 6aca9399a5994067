"""The OVS webhook activities on their own (ActivityEnvironment), against the session's real
Postgres: a deleted video is unpublished once (a redelivery changes nothing), and a posted video
that is no longer loadable (private, not transcoded) is unpublished rather than upserted."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.testing import ActivityEnvironment

from activities.ovs import unpublish_ovs_video, upsert_ovs_video
from learnflow.contracts.ovs import OvsVideoDeleteInput, OvsVideoWebhookInput
from learnflow.models import Resource, ResourceType
from sources import ovs
from tests.conftest import unique_id

pytestmark = [pytest.mark.postgres]


@pytest.fixture
async def video(app) -> AsyncIterator[str]:
    """A published OVS video of the test's own (its key is its readable id); deleted after."""
    key = unique_id("ovs-video")
    resource = Resource(
        readable_id=key,
        platform=ovs.PLATFORM,
        resource_type=ResourceType.video,
        etl_source=ovs.ETL_SOURCE,
        title=f"Video {key}",
    )
    run_id = unique_id("ovs-load")
    await app.stores.catalog.upsert_resources(run_id, [resource])
    async with app.stores.pool.acquire() as conn:
        await conn.execute("DELETE FROM etl_seen WHERE run_id = $1", run_id)  # never pruned
    yield key
    async with app.stores.pool.acquire() as conn:
        await conn.execute("DELETE FROM learning_resource WHERE readable_id = $1", key)


async def _stored(app, key: str) -> tuple[bool, str]:
    async with app.stores.pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT published, content_hash FROM learning_resource WHERE readable_id = $1", key
        )
    return row["published"], row["content_hash"]


async def test_a_deleted_video_is_unpublished_once(app, video):
    first = await ActivityEnvironment().run(unpublish_ovs_video, OvsVideoDeleteInput(key=video))
    assert first.unpublished == 1
    # the hash is cleared as the prune does: the video coming back rewrites its row
    assert await _stored(app, video) == (False, "pruned")
    again = await ActivityEnvironment().run(unpublish_ovs_video, OvsVideoDeleteInput(key=video))
    assert again.unpublished == 0


@pytest.mark.parametrize(
    "change",
    [{"is_public": False}, {"status": "Transcoding"}, {"collection": None}],
    ids=["private", "not-transcoded", "no-collection"],
)
async def test_a_video_no_longer_loadable_is_unpublished_not_upserted(app, video, change):
    posted = {
        "key": video,
        "is_public": True,
        "status": "Complete",
        "collection": {"key": "a-collection"},
        "title": "Changed title",
        **change,
    }
    assert not ovs.is_loadable(posted)
    out = await ActivityEnvironment().run(
        upsert_ovs_video, OvsVideoWebhookInput(key=video, video=posted)
    )
    assert out.inserted == 0 and out.updated == 0
    assert await _stored(app, video) == (False, "pruned")

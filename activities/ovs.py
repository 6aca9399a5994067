"""OVS webhook activities: load one video the ODL Video Service pushed, or unpublish one it deleted.

MIT Learn's OVS webhook upserts the posted video through the same transform as the scheduled crawl
(`sources/ovs.py`), so a webhook and a crawl agree row for row (same content hash: no rewrite).
A video that is no longer loadable (private, not transcoded, out of its collection) is treated as
removed. Playlists follow at the next scheduled crawl, which sees the whole collection.
"""

from __future__ import annotations

import structlog
from temporalio import activity

from learnflow.contracts import DEFAULT_QUEUE, PruneResult, UpsertResult
from learnflow.contracts.ovs import OvsVideoDeleteInput, OvsVideoWebhookInput
from learnflow.db.by_key import stored_transcripts, unpublish_resource
from learnflow.http import SourceHttp
from learnflow.models import ResourceType
from learnflow.settings import get_settings
from learnflow.stores import get_stores
from sources import ovs

log = structlog.get_logger(__name__)


def webhook_run_id(key: str) -> str:
    """The etl run id a webhook load records its rows under (the activity's workflow run)."""
    info = activity.info()
    return f"webhook-ovs-{key}-{info.workflow_run_id[:8]}"


@activity.defn
async def upsert_ovs_video(req: OvsVideoWebhookInput) -> UpsertResult:
    """Transform the posted video as the crawl does and upsert it; unloadable → unpublish."""
    stores = await get_stores()
    if not ovs.is_loadable(req.video):
        gone = await unpublish_resource(
            stores.pool, ovs.ETL_SOURCE, ovs.PLATFORM, req.key, ResourceType.video
        )
        log.info("ovs_webhook.not_loadable", key=req.key, unpublished=gone)
        return UpsertResult()
    texts = await _transcript(stores, req)
    out = ovs.transform("videos", {"results": [req.video]}, [{"transcripts": texts}])
    run_id = webhook_run_id(req.key)
    result = await stores.catalog.upsert_resources(run_id, out.resources)
    result.quarantined = await stores.catalog.quarantine(run_id, out.quarantined)
    # A webhook never prunes: drop what the upsert marked as seen for a prune.
    async with stores.pool.acquire() as conn:
        await conn.execute("DELETE FROM etl_seen WHERE run_id = $1", run_id)
    log.info("ovs_webhook.upserted", key=req.key, **result.model_dump())
    return result


async def _transcript(stores, req: OvsVideoWebhookInput) -> dict[str, str]:
    """The posted video's English captions as text, fetched as the transcripts schedule does;
    when they cannot be read, the transcript the catalog already holds (never dropped)."""
    settings = get_settings()
    http = SourceHttp(
        ovs.SOURCE.allowed_hosts(settings) or None,
        timeout=settings.http_timeout_seconds,
        max_bytes=settings.http_max_response_bytes,
        user_agent=settings.http_user_agent,
        allow_private=settings.http_allow_private_hosts,
    )
    try:
        fetched = await ovs.fetch_transcripts(http, [req.video], ovs.settings_for())
    finally:
        await http.aclose()
    return fetched or await stored_transcripts(stores.pool, ovs.ETL_SOURCE, [req.key])


@activity.defn
async def unpublish_ovs_video(req: OvsVideoDeleteInput) -> PruneResult:
    """OVS deleted the video: unpublish it (the index pass then removes it from search)."""
    stores = await get_stores()
    gone = await unpublish_resource(
        stores.pool, ovs.ETL_SOURCE, ovs.PLATFORM, req.key, ResourceType.video
    )
    log.info("ovs_webhook.deleted", key=req.key, unpublished=gone)
    return PruneResult(unpublished=gone)


ACTIVITIES_BY_QUEUE = {DEFAULT_QUEUE: [upsert_ovs_video, unpublish_ovs_video]}

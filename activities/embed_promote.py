"""The embeddings workflow's promote step: when the configured encoder (QDRANT_ENCODER) differs
from the one the search service reads, its collections fill in the background; once they hold
every published resource and an all-sources content-file pass has gone through every file, the
configured encoder is promoted (`vector_serving`), and the previous one's collections are
dropped after a grace (`retire_embeddings`). The keyword index's alias swap, for vectors."""

from __future__ import annotations

import structlog
from temporalio import activity

from learnflow.contracts import (
    EMBEDDINGS_QUEUE,
    EmbedInput,
    PromoteResult,
    RetireInput,
    RetireResult,
)
from learnflow.db.vector_serving import catch_up, promote, read_serving, retired
from learnflow.stores import get_stores
from learnflow.stores.content_search import embedded_mark, forget_watermark, read_watermarks
from learnflow.stores.vector_serving import ServingVectors, drop_collections, serving_vectors

log = structlog.get_logger(__name__)


async def served_elsewhere(stores) -> ServingVectors | None:
    """The promoted encoder and its collections while another encoder catches up: they are kept
    fresh meanwhile (new and changed resources embedded with it too, removals), so a learner
    never waits for the promotion to find a change."""
    record = await read_serving(stores.pool)
    if record is None or record.encoder == stores.encoder_id:
        return None
    return serving_vectors(stores.settings, record.encoder, record.kind, record.model)


@activity.defn
async def promote_embeddings(req: EmbedInput) -> PromoteResult:
    """Promote the configured encoder if its collections are complete; name an old encoder
    still to retire (this promotion's, or one an earlier run promoted away from)."""
    stores = await get_stores()
    settings = stores.settings
    configured = stores.encoder_id
    record = await read_serving(stores.pool)
    progress = await catch_up(stores.pool, configured)
    # The mark is written only when an all-sources pass ends: then every file went through.
    content_done = embedded_mark(configured) in await read_watermarks(stores.blobs)
    result = PromoteResult(
        serving=record.encoder if record else "",
        configured=configured,
        published=progress.published,
        embedded=progress.embedded,
        content_files_complete=content_done,
        grace_seconds=settings.vector_retire_grace_seconds,
    )
    if record is not None and record.encoder == configured:
        result.retire = record.retiring
        return result
    if not (progress.complete and content_done):
        log.info(
            "embed.promote.waiting",
            serving=result.serving,
            configured=configured,
            published=progress.published,
            embedded=progress.embedded,
            content_files_complete=content_done,
        )
        return result
    model = settings.qdrant_dense_model if settings.qdrant_encoder == "litellm" else ""
    result.retire = await promote(stores.pool, configured, settings.qdrant_encoder, model)
    result.promoted, result.serving = True, configured
    log.info("embed.promoted", encoder=configured, previous=result.retire, source=req.source)
    return result


@activity.defn
async def retire_embeddings(req: RetireInput) -> RetireResult:
    """Drop a previous encoder's collections and its content-file watermark (a later switch
    back to it starts afresh), unless it is configured or served again meanwhile."""
    stores = await get_stores()
    record = await read_serving(stores.pool)
    result = RetireResult()
    if req.encoder not in (stores.encoder_id, record.encoder if record else None):
        result.dropped = await drop_collections(stores.settings, req.encoder)
        await forget_watermark(stores.blobs, embedded_mark(req.encoder))
    await retired(stores.pool, req.encoder)
    log.info("embed.retired", encoder=req.encoder, dropped=result.dropped)
    return result


ACTIVITIES_BY_QUEUE = {EMBEDDINGS_QUEUE: [promote_embeddings, retire_embeddings]}

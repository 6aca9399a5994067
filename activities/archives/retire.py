"""Retiring course content: unpublish a course's content (the delete webhook), unpublish an OCW
site (the OCW unpublish webhook), and purge files unpublished longer than the retention."""

from __future__ import annotations

from datetime import timedelta

import structlog
from temporalio import activity

from activities.archives.common import deindex_content_files
from activities.progress import Progress, heartbeat
from learnflow.contracts import OcwUnpublishInput, OcwUnpublishResult
from learnflow.contracts.archives import (
    DeleteCourseContentInput,
    DeleteCourseContentResult,
    PurgeContentFilesInput,
    PurgeContentFilesResult,
)
from learnflow.db.by_key import unpublish_resource
from learnflow.db.content_files import ContentFileStore
from learnflow.settings import get_settings
from learnflow.stores import get_stores
from sources import ARCHIVE_ALIASES

log = structlog.get_logger("activities.archives")


@activity.defn
async def delete_course_content(req: DeleteCourseContentInput) -> DeleteCourseContentResult:
    """Unpublish the source's courses whose readable_id starts with `course_id` (Canvas:
    `course_id-`), and their content files; the workflow then deindexes them."""
    s = get_settings()
    result = DeleteCourseContentResult(
        source=req.source, course_id=req.course_id, outcome="refused"
    )
    etl_source = ARCHIVE_ALIASES.get(req.source, req.source)
    course_id = req.course_id.strip()
    if len(course_id) < s.delete_min_prefix_chars:
        result.reason = (
            f"course_id {course_id!r} is shorter than {s.delete_min_prefix_chars} characters:"
            " as a prefix it could match unrelated courses"
        )
        return result
    prefix = f"{course_id}-" if etl_source == "canvas" else course_id
    stores = await get_stores()
    resources, files = await ContentFileStore(stores.pool).unpublish_course_content(
        etl_source, prefix
    )
    result.outcome = "deleted" if resources or files else "nothing"
    result.resources, result.content_files = resources, files
    log.info("course_content.deleted", source=etl_source, prefix=prefix, resources=resources)
    return result


def ocw_run_ids(site_uid: str) -> list[str]:
    """The run ids an OCW site uid can have been stored under: OCW's transform drops the
    dashes (`run_id = site_uid.replace("-", "")`); the uid as sent is kept too, for runs
    written before that rule."""
    uid = site_uid.strip()
    return sorted({uid, uid.replace("-", ""), uid.lower().replace("-", "")})


_OCW_COURSE_BY_RUN = """
SELECT lr.id AS resource_id, lr.readable_id, lr.resource_type, lr.published, lr.test_mode,
       r.run_id
FROM learning_resource_run r JOIN learning_resource lr ON lr.id = r.resource_id
WHERE lr.platform = 'ocw' AND lr.etl_source = 'ocw' AND lr.resource_type = 'course'
  AND (r.run_id = ANY($1::text[]) OR lr.data #>> '{details,site_uid}' = $2)
ORDER BY lr.published DESC, lr.id DESC
LIMIT 1
"""


@activity.defn
async def unpublish_ocw_course(req: OcwUnpublishInput) -> OcwUnpublishResult:
    """The OCW webhook's unpublish: the OCW course whose run is the site, and its content files.

    Idempotent: every statement only touches rows still published, so a retry (or a second
    delivery) changes nothing and says `already_unpublished`. The workflow then deindexes.
    """
    stores = await get_stores()
    result = OcwUnpublishResult(site_uid=req.site_uid, outcome="unknown")
    async with stores.pool.acquire() as conn:
        course = await conn.fetchrow(
            _OCW_COURSE_BY_RUN, ocw_run_ids(req.site_uid), req.site_uid.strip()
        )
        if course is None:
            log.info("ocw.unpublish_unknown", site_uid=req.site_uid)
            return result
        result.run_id, result.readable_id = course["run_id"], course["readable_id"]
        async with conn.transaction():
            # MIT Learn keeps a test-mode course's files searchable; OCW has none, but the rule
            # is the index pass's too (files of test-mode courses stay visible).
            if not course["test_mode"]:
                status = await conn.execute(
                    "UPDATE content_file SET published = false, unpublished_on = now(),"
                    " updated_on = now() WHERE resource_id = $1 AND published",
                    course["resource_id"],
                )
                result.content_files = int(status.split()[-1])
            # Forget the site checksum: a republished site must reload its (now unpublished)
            # files instead of being skipped as unchanged.
            await conn.execute(
                "UPDATE learning_resource_run SET checksum = NULL WHERE resource_id = $1"
                " AND checksum IS NOT NULL",
                course["resource_id"],
            )
    # Last, so a retry after a failure above still finds the files to unpublish.
    gone = await unpublish_resource(
        stores.pool, "ocw", "ocw", course["readable_id"], course["resource_type"]
    )
    result.outcome = "unpublished" if gone else "already_unpublished"
    log.info(
        "ocw.unpublished",
        site_uid=req.site_uid,
        readable_id=result.readable_id,
        outcome=result.outcome,
        content_files=result.content_files,
    )
    return result


@activity.defn
async def purge_content_files(req: PurgeContentFilesInput) -> PurgeContentFilesResult:
    """Hard-delete files unpublished more than `retention_days` ago, in batches."""
    stores = await get_stores()
    cstore = ContentFileStore(stores.pool)
    result = PurgeContentFilesResult()
    while True:
        ids = await cstore.purgeable_ids(timedelta(days=req.retention_days), req.batch_size)
        await deindex_content_files(stores, ids)  # normally gone already: they were unpublished
        result.deleted += await cstore.delete_files(ids)
        heartbeat(Progress(stage="purge", counts={"deleted": result.deleted}))
        if len(ids) < req.batch_size:
            break
    log.info("content_files.purged", deleted=result.deleted, retention_days=req.retention_days)
    return result

"""Discovery: which course archives (newest per course) and which OCW sites to load."""

from __future__ import annotations

import asyncio

import structlog
from temporalio import activity

from activities.archives.common import list_objects, s3_client
from activities.archives.ocw import ocw_prefix
from learnflow.contracts.archives import (
    ArchiveRef,
    DiscoverArchivesInput,
    DiscoverArchivesResult,
    DiscoverOcwInput,
    DiscoverOcwResult,
)
from learnflow.settings import Settings, get_settings
from sources import archive_source
from sources.archives.spec import ArchiveSource, newest_per_course

log = structlog.get_logger("activities.archives")


def discover_archives_sync(src: ArchiveSource, s: Settings) -> list[ArchiveRef]:
    """Newest archive per course under the source's prefix, sorted by course id."""
    prefix = src.prefix(s)
    objects = (
        (o["Key"], o.get("LastModified"))
        for o in list_objects(s3_client(), s.course_archive_bucket_name, prefix)
    )
    newest = newest_per_course(src, prefix, objects)
    return [newest[c] for c in sorted(newest)]


@activity.defn
async def discover_course_archives(req: DiscoverArchivesInput) -> DiscoverArchivesResult:
    """A page of the source's courses (sorted ids after `after_course`) with newest archives."""
    src = archive_source(req.source)
    refs = await asyncio.to_thread(discover_archives_sync, src, get_settings())
    after = [r for r in refs if req.after_course is None or r.course_id > req.after_course]
    page = after[: max(1, req.limit)]
    log.info("archives.discovered", source=src.name, courses=len(refs), page=len(page))
    return DiscoverArchivesResult(
        source=src.name, archives=page, more=len(after) > len(page), courses_total=len(refs)
    )


@activity.defn
async def discover_ocw_sites(req: DiscoverOcwInput) -> DiscoverOcwResult:
    """The webhook's prefixes, validated; or every `courses/<slug>/` in the OCW bucket."""
    if req.prefixes:
        good = sorted({p for raw in req.prefixes if (p := ocw_prefix(raw))})
        bad = sorted({raw for raw in req.prefixes if ocw_prefix(raw) is None})
        return DiscoverOcwResult(prefixes=good, rejected=bad)
    s = get_settings()

    def listing() -> list[str]:
        return sorted(
            p
            for o in list_objects(s3_client(), s.ocw_live_bucket, "courses/", delimiter="/")
            if "Prefix" in o and (p := ocw_prefix(o["Prefix"]))
        )

    return DiscoverOcwResult(prefixes=await asyncio.to_thread(listing))

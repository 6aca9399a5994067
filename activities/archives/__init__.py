"""Archive activities: discover course archives in S3, load one archive (or one OCW site) into
content files with three levels of change detection, unpublish a course's content, purge.

Every activity takes one model and returns one model; archives are named by S3 key and
downloaded here, into a temporary directory that is always removed. Blocking work (S3, unpacking,
Tika) runs in threads while the event loop keeps heartbeating (`activities.progress`); the
heartbeat carries a resume cursor (the archive checksum and the next chunk of files), and the rows
written per chunk let a retry reuse every text extracted before it failed.

- `discover`: newest archive per course, OCW site prefixes
- `load`: the skeleton every load runs; `olx`, `canvas`, `ocw`: what differs per kind
- `retire`: delete a course's content, unpublish an OCW site, purge
"""

from __future__ import annotations

from temporalio import activity

from activities.archives.canvas import ingest_canvas
from activities.archives.discover import discover_course_archives, discover_ocw_sites
from activities.archives.load import Loading
from activities.archives.ocw import ingest_ocw
from activities.archives.olx import ingest_olx
from activities.archives.retire import (
    delete_course_content,
    purge_content_files,
    unpublish_ocw_course,
)
from learnflow.contracts import ARCHIVE_QUEUE, DEFAULT_QUEUE
from learnflow.contracts.archives import ArchiveIngestResult, ArchiveWebhookInput, OcwSiteInput
from sources import archive_source
from sources.archives.spec import course_id_for_key


async def ingest_archive(req: ArchiveWebhookInput) -> ArchiveIngestResult:
    """Load one archive (the activity body; also callable from the CLI without Temporal)."""
    src = archive_source(req.source)
    result = ArchiveIngestResult(source=src.name, key=req.content_path, outcome="rejected")
    job = await Loading.start(req.content_path, req.overwrite, result)
    prefix = src.prefix(job.s)
    result.course_id = course_id_for_key(src, req.content_path, prefix)
    if result.course_id is None:
        # Only archives under the source's own prefix are read: a webhook cannot point the
        # worker at any other object in the bucket.
        return await job.reject(f"key is not a {'/'.join(src.suffixes)} archive under {prefix!r}")
    if src.kind == "canvas":
        return await ingest_canvas(req, src, job)
    return await ingest_olx(req, src, job)


@activity.defn
async def ingest_course_archive(req: ArchiveWebhookInput) -> ArchiveIngestResult:
    """One course archive by S3 key into content files (three-level change detection)."""
    return await ingest_archive(req)


@activity.defn
async def ingest_ocw_site(req: OcwSiteInput) -> ArchiveIngestResult:
    """One OCW site: course resource + page/resource content files (md5 reuse, soft retire)."""
    return await ingest_ocw(req)


ACTIVITIES_BY_QUEUE = {
    ARCHIVE_QUEUE: [
        discover_course_archives,
        ingest_course_archive,
        discover_ocw_sites,
        ingest_ocw_site,
    ],
    DEFAULT_QUEUE: [delete_course_content, purge_content_files, unpublish_ocw_course],
}

"""Canvas course exports (`.imscc`): the course resource (a test-mode placeholder unless it
exists) and its published files, pages and assignments as content files. Unpublished items are
deleted at once (MIT Learn's Canvas rule), not soft-retired."""

from __future__ import annotations

import asyncio
import contextlib
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from activities.archives.common import Missing, download, failures_out, text_extractor
from activities.archives.load import Loading, load_archive
from learnflow.contracts.archives import ArchiveIngestResult, ArchiveWebhookInput
from learnflow.models import Resource, Run
from sources.archives.canvas import (
    canvas_content_files,
    course_info,
    parse_url_config,
    published_items,
    zip_reader,
)
from sources.archives.checksum import canvas_archive_checksum
from sources.archives.safe_extract import UnsafeArchiveError
from sources.archives.spec import CANVAS_SUFFIXES, ArchiveSource, strip_suffix

log = structlog.get_logger("activities.archives")

_MAX_MEMBER_BYTES = 32 * 1024 * 1024


def _read_canvas(
    archive: Path, folder: str, url_config: dict[str, Any] | None, now: datetime, max_bytes: int
):
    with zipfile.ZipFile(archive) as zf:
        read = zip_reader(zf, max_bytes)
        course = course_info(read, folder)
        published = published_items(read, now=now, url_config=url_config)
    checksum = canvas_archive_checksum(
        archive, [(p, i.title) for p, i in published.items()], url_config
    )
    return course, published, checksum


def _canvas_metadata_key(key: str) -> str:
    return strip_suffix(key, CANVAS_SUFFIXES) + ".metadata.json"


async def _url_config(job: Loading, s3, work: Path) -> dict[str, Any] | None:
    """The export's optional `<name>.metadata.json` (how item URLs are built), if readable."""
    meta = work / "metadata.json"
    with contextlib.suppress(Missing):
        await asyncio.to_thread(
            download,
            s3,
            job.s.course_archive_bucket_name,
            _canvas_metadata_key(job.key),
            meta,
            _MAX_MEMBER_BYTES,
        )
        try:
            return parse_url_config(meta.read_bytes())
        except (ValueError, AttributeError) as exc:
            log.warning("canvas.metadata_unreadable", key=job.key, error=str(exc))
    return None


async def ingest_canvas(
    req: ArchiveWebhookInput, src: ArchiveSource, job: Loading
) -> ArchiveIngestResult:
    if not req.overwrite and await job.cstore.runs_with_archive_key(src.name, req.content_path):
        job.result.outcome = "unchanged_key"
        return job.result
    now = datetime.now(UTC)

    async def walk(job: Loading, s3, archive: Path, work: Path) -> None:
        await _walk_canvas(job, src, s3, archive, work, now)

    return await load_archive(job, "course.imscc", walk)


async def _walk_canvas(
    job: Loading, src: ArchiveSource, s3, archive: Path, work: Path, now: datetime
) -> None:
    result, cstore = job.result, job.cstore
    folder = result.course_id or ""
    url_config = await _url_config(job, s3, work)
    try:
        course, _published, checksum = await asyncio.to_thread(
            _read_canvas, archive, folder, url_config, now, _MAX_MEMBER_BYTES
        )
    except (UnsafeArchiveError, zipfile.BadZipFile, KeyError, OSError) as exc:
        await job.reject(f"{type(exc).__name__}: {exc}")
        return
    result.checksum = checksum

    # The course resource: MIT Learn creates a test-mode placeholder; an existing one keeps its
    # flags. Other courses in the same folder (another course code) are orphans and unpublished.
    flags = await cstore.resource_flags(src.platform, course.readable_id)
    published_flag, test_mode = flags if flags else (False, True)
    resource = Resource(
        readable_id=course.readable_id,
        platform=src.platform,
        resource_type="course",
        etl_source=src.name,
        title=course.title,
        url=course.url,
        published=published_flag,
        test_mode=test_mode,
        runs=[
            Run(
                run_id=course.run_id,
                title=course.title,
                url=course.url,
                start_date=course.start_at,
                end_date=course.conclude_at,
            )
        ],
    )
    await job.upsert_course("canvas", resource)
    await cstore.unpublish_resources(src.name, f"{folder}-", keep_readable_id=course.readable_id)
    run = await cstore.run_of(src.platform, course.readable_id, course.run_id)
    if run is None:  # pragma: no cover - upsert_resources just wrote it
        raise RuntimeError(f"canvas run {course.run_id} missing after upsert")
    result.run_id, result.readable_id = run.run_id, run.readable_id
    if await job.unchanged(run, checksum):
        return

    previous = await cstore.previous_files(run.id)
    job.progress.stage, job.progress.checksum = "extract", checksum
    try:
        walked = await asyncio.to_thread(
            canvas_content_files,
            archive,
            folder,
            extractor=text_extractor(job.s),
            previous=previous,
            url_config=url_config,
            overwrite=job.overwrite,
            now=now,
            max_workers=job.s.archive_extract_workers,
        )
    except (UnsafeArchiveError, zipfile.BadZipFile) as exc:
        await job.reject(f"{type(exc).__name__}: {exc}")
        return
    result.extractor_calls = walked.extractor_calls
    result.textless = len(walked.empty)
    result.failures = failures_out(walked.failures)
    await job.load(run, walked.files, walked.empty)
    await job.finish(
        run,
        {f.key for f in walked.files},
        {f.key for f in walked.failures},
        textless=set(walked.empty),
        hard_delete=True,  # Canvas: unpublished items are deleted at once
    )

"""Archive activities: discover course archives in S3, load one archive (or one OCW site) into
content files with three levels of change detection, unpublish a course's content, purge.

Every activity takes one model and returns one model; archives are named by S3 key and
downloaded here, into a temporary directory that is always removed. Blocking work (S3, unpacking,
Tika) runs in threads while the event loop keeps heartbeating; the heartbeat carries a resume
cursor (the archive checksum and the next chunk of files), and the rows written per chunk let a
retry reuse every text extracted before it failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import structlog
from temporalio import activity

from learnflow.contracts import (
    ARCHIVE_QUEUE,
    DEFAULT_QUEUE,
    OcwUnpublishInput,
    OcwUnpublishResult,
)
from learnflow.contracts.archives import (
    ArchiveIngestResult,
    ArchiveRef,
    ArchiveWebhookInput,
    DeleteCourseContentInput,
    DeleteCourseContentResult,
    DiscoverArchivesInput,
    DiscoverArchivesResult,
    DiscoverOcwInput,
    DiscoverOcwResult,
    FileFailureOut,
    OcwSiteInput,
    PurgeContentFilesInput,
    PurgeContentFilesResult,
)
from learnflow.db.by_key import unpublish_resource
from learnflow.db.content_files import ArchiveRun, ContentFileStore
from learnflow.errors import MissingBucket, UnknownArchiveSource
from learnflow.models import ContentFile, Department, Quarantined, Resource, Run, Topic
from learnflow.settings import Settings, get_settings
from learnflow.stores import Stores, get_stores
from learnflow.textextract import (
    EmbeddedTikaExtractor,
    TextExtractor,
    TikaServerExtractor,
)
from sources.archives.canvas import (
    canvas_content_files,
    course_info,
    parse_url_config,
    published_items,
    zip_reader,
)
from sources.archives.checksum import canvas_archive_checksum, tar_header_checksum
from sources.archives.ocw import read_ocw_site, transform_course
from sources.archives.olx import (
    FileFailure,
    edx_module_id,
    find_olx_root,
    iter_olx_files,
    walk_olx,
)
from sources.archives.safe_extract import ExtractionLimits, UnsafeArchiveError, safe_extract

log = structlog.get_logger(__name__)


# -- sources ------------------------------------------------------------------------------------

OLX_SUFFIXES = (".tar.gz", ".tgz", ".tar")
CANVAS_SUFFIXES = (".imscc",)


@dataclass(frozen=True)
class ArchiveSource:
    name: str  # MIT Learn's ETL source
    platform: str
    kind: str  # olx | canvas
    prefix_setting: str
    base_url_setting: str | None
    course_id_from: str  # folder | filename | canvas_folder

    def prefix(self, s: Settings) -> str:
        return str(getattr(s, self.prefix_setting)).strip("/") + "/"

    def base_url(self, s: Settings) -> str | None:
        return getattr(s, self.base_url_setting) if self.base_url_setting else None

    @property
    def suffixes(self) -> tuple[str, ...]:
        return CANVAS_SUFFIXES if self.kind == "canvas" else OLX_SUFFIXES


ARCHIVE_SOURCES = {
    s.name: s
    for s in (
        ArchiveSource(
            "mit_edx", "edx", "olx", "edx_course_bucket_prefix", "content_base_url_edx", "folder"
        ),
        ArchiveSource(
            "mitxonline",
            "mitxonline",
            "olx",
            "mitx_online_course_bucket_prefix",
            "content_base_url_mitxonline",
            "folder",
        ),
        ArchiveSource(
            "xpro", "xpro", "olx", "xpro_course_bucket_prefix", "content_base_url_xpro", "folder"
        ),
        ArchiveSource(
            "oll", "oll", "olx", "oll_course_bucket_prefix", "content_base_url_oll", "filename"
        ),
        ArchiveSource(
            "canvas", "canvas", "canvas", "canvas_course_bucket_prefix", None, "canvas_folder"
        ),
    )
}
# The schedule table names catalog sources; `edx` is MIT Learn's `mit_edx` ETL source.
SOURCE_ALIASES = {"edx": "mit_edx"}


def archive_source(name: str) -> ArchiveSource:
    src = ARCHIVE_SOURCES.get(SOURCE_ALIASES.get(name, name))
    if src is None:
        raise UnknownArchiveSource(
            f"no archive source {name!r}; known: {', '.join(sorted(ARCHIVE_SOURCES))}"
        )
    return src


def _strip_suffix(name: str, suffixes: Iterable[str]) -> str:
    lowered = name.lower()
    for suffix in suffixes:
        if lowered.endswith(suffix):
            return name[: -len(suffix)]
    return name


def course_id_for_key(src: ArchiveSource, key: str, prefix: str) -> str | None:
    """The course an archive key belongs to (MIT Learn: parent folder; OLL: the file name;
    Canvas: the first folder under the prefix). None for keys that are not archives."""
    if not key.startswith(prefix) or not key.lower().endswith(src.suffixes):
        return None
    rest = key[len(prefix) :]
    parts = [p for p in rest.split("/") if p]
    if not parts:
        return None
    if src.course_id_from == "canvas_folder":
        return parts[0] if len(parts) > 1 else None
    if src.course_id_from == "folder" and len(parts) > 1:
        return parts[-2]
    return _strip_suffix(parts[-1], src.suffixes) or None


def newest_per_course(
    src: ArchiveSource, prefix: str, objects: Iterable[tuple[str, datetime | None]]
) -> dict[str, ArchiveRef]:
    """The most recently modified archive of each course (ties: the greater key)."""
    newest: dict[str, ArchiveRef] = {}
    floor = datetime.min.replace(tzinfo=UTC)
    for key, modified in objects:
        course = course_id_for_key(src, key, prefix)
        if course is None:
            continue
        seen = newest.get(course)
        if seen is None or ((modified or floor), key) > ((seen.last_modified or floor), seen.key):
            newest[course] = ArchiveRef(course_id=course, key=key, last_modified=modified)
    return newest


def normalise_run_id(etl_source: str, run_id: str) -> str:
    """MIT Learn's run matching: edX ids compare with `-`/`+` as `.`, lowercased, without
    `course.v1:`; OLL also `_` as `.` and no `mitx.` prefix; other sources compare exactly."""
    if etl_source not in ("mit_edx", "oll"):
        return run_id
    value = re.sub(r"[-+]", ".", run_id.lower()).removeprefix("course.v1:")
    if etl_source == "oll":
        value = value.replace("_", ".").removeprefix("mitx.")
    return value


def match_run(etl_source: str, course_id: str, runs: Iterable[ArchiveRun]) -> list[ArchiveRun]:
    wanted = normalise_run_id(etl_source, course_id)
    return [r for r in runs if normalise_run_id(etl_source, r.run_id) == wanted]


# -- plumbing: S3, heartbeats, extractors ------------------------------------------------------


def _s3_client():
    import boto3
    from botocore.config import Config

    s = get_settings()
    return boto3.client(
        "s3",
        endpoint_url=s.s3_endpoint_url,
        aws_access_key_id=s.aws_access_key_id,
        aws_secret_access_key=s.aws_secret_access_key.get_secret_value(),
        region_name=s.aws_region,
        config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=10),
    )


def _client_error_code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def _list_objects(
    s3, bucket: str, prefix: str, delimiter: str | None = None
) -> Iterator[dict[str, Any]]:
    from botocore.exceptions import ClientError

    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    if delimiter:
        kwargs["Delimiter"] = delimiter
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(**kwargs):
            if delimiter:
                for cp in page.get("CommonPrefixes", []):
                    yield {"Prefix": cp["Prefix"]}
            yield from page.get("Contents", [])
    except ClientError as exc:
        if _client_error_code(exc) == "NoSuchBucket":
            raise MissingBucket(f"bucket {bucket!r} does not exist") from exc
        raise


class _Missing(Exception):
    pass


class _TooLarge(Exception):
    pass


def _download(s3, bucket: str, key: str, dest: Path, max_bytes: int) -> int:
    from botocore.exceptions import ClientError

    try:
        size = int(s3.head_object(Bucket=bucket, Key=key)["ContentLength"])
    except ClientError as exc:
        if _client_error_code(exc) in ("404", "NoSuchKey", "NotFound"):
            raise _Missing(key) from exc
        raise
    if size > max_bytes:
        raise _TooLarge(f"{size} bytes > {max_bytes}")
    s3.download_file(bucket, key, str(dest))
    return size


def _heartbeat(details: dict[str, Any]) -> None:
    if activity.in_activity():
        activity.heartbeat(details)


def _resume_details() -> dict[str, Any]:
    if not activity.in_activity():
        return {}
    details = activity.info().heartbeat_details
    return details[0] if details and isinstance(details[0], dict) else {}


@contextlib.asynccontextmanager
async def _auto_heartbeat(progress: dict[str, Any], every_s: float = 5.0):
    """Heartbeat `progress` (mutated by the caller) while a blocking step runs in a thread."""

    async def beat() -> None:
        while True:
            _heartbeat(dict(progress))
            await asyncio.sleep(every_s)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@lru_cache(maxsize=4)
def _extractor(endpoint: str, timeout_s: float, ocr_strategy: str, token: str | None, workers: int):
    """One extractor per configuration per process (the embedded one owns a thread pool)."""
    if endpoint:
        return TikaServerExtractor(
            endpoint, timeout_s=timeout_s, ocr_strategy=ocr_strategy, access_token=token
        )
    return EmbeddedTikaExtractor(timeout_s=timeout_s, max_workers=max(2, workers))


def text_extractor(s: Settings) -> TextExtractor:
    return _extractor(
        s.tika_server_endpoint,
        s.tika_timeout,
        s.tika_ocr_strategy,
        s.tika_access_token.get_secret_value() if s.tika_access_token else None,
        s.archive_extract_workers,
    )


@contextlib.contextmanager
def _work_dir(s: Settings) -> Iterator[Path]:
    """A fresh directory for one archive (download + unpacked tree), always removed."""
    parent = s.archive_work_dir
    if parent is not None:
        Path(parent).mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix="learnflow-archive-", dir=parent))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _failures(items: Iterable[FileFailure], limit: int = 20) -> list[FileFailureOut]:
    return [FileFailureOut(key=f.key, reason=f.reason[:500]) for f in list(items)[:limit]]


async def _quarantine(stores: Stores, source: str, key: str, reason: str) -> None:
    """A rejected archive leaves a row operators can list (`learn quarantine`), nothing else."""
    await stores.catalog.quarantine(
        f"archives/{source}",
        [
            Quarantined(
                source=source,
                item_key=key[:1000],
                reason=reason[:2000],
                raw=json.dumps({"key": key}),
            )
        ],
    )


# -- discovery ----------------------------------------------------------------------------------


def discover_archives_sync(src: ArchiveSource, s: Settings) -> list[ArchiveRef]:
    """Newest archive per course under the source's prefix, sorted by course id."""
    prefix = src.prefix(s)
    s3 = _s3_client()
    objects = (
        (o["Key"], o.get("LastModified"))
        for o in _list_objects(s3, s.course_archive_bucket_name, prefix)
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


# -- one archive --------------------------------------------------------------------------------


def _chunks_of_keys(olx_root: Path, src_root: Path, run_id: str, size: int) -> list[set[str]]:
    """Source paths grouped so that every key's files (OLX pointer + body) share a chunk."""
    by_key: dict[str, list[str]] = {}
    for path in iter_olx_files(olx_root):
        rel = path.relative_to(src_root).as_posix()
        by_key.setdefault(edx_module_id(rel, run_id), []).append(rel)
    keys = sorted(by_key)
    return [{p for k in keys[i : i + size] for p in by_key[k]} for i in range(0, len(keys), size)]


async def _load(
    cstore: ContentFileStore,
    run: ArchiveRun,
    files: list[ContentFile],
    textless: dict[str, str],
    result: ArchiveIngestResult,
) -> None:
    counts = await cstore.upsert_files(run, files)
    await cstore.remember_textless(run.id, textless)
    result.inserted += counts.inserted
    result.updated += counts.updated
    result.unchanged += counts.unchanged


async def _finish_load(
    cstore: ContentFileStore,
    run: ArchiveRun,
    req: ArchiveWebhookInput,
    result: ArchiveIngestResult,
    kept: set[str],
    failed: set[str],
    *,
    textless: set[str] = frozenset(),  # type: ignore[assignment]
    had_files: bool,
    hard_delete: bool,
    stores: Stores,
) -> None:
    """MIT Learn's rules after a walk: record the archive only when at least one file loaded (or
    the archive is legitimately empty); retire the run's other files unless nothing loaded."""
    result.loaded = len(kept)
    result.failed = len(failed)
    if kept:
        if hard_delete:
            gone = await cstore.missing_file_ids(run.id, kept | failed)
            await _deindex_content_files(stores, gone)
            result.retired = await cstore.delete_files(gone)
        else:
            result.retired = await cstore.retire_missing(run.id, kept | failed)
        await cstore.forget_textless_except(run.id, textless | failed)
        await cstore.record_archive(run.id, checksum=result.checksum, archive_key=req.content_path)
        result.outcome = "loaded"
    elif failed:
        result.outcome = "all_failed"  # nothing recorded: the next sync tries again
    else:
        # No file with text (or no file at all): keep the run's existing files, remember the key.
        await cstore.record_archive(run.id, checksum=None, archive_key=req.content_path)
        result.outcome = "empty"
    if not had_files:
        result.reason = "the archive holds no files"


async def _deindex_content_files(stores: Stores, ids: list[int]) -> None:
    """Rows deleted outright (Canvas, the purge) are invisible to the watermark pass of
    `index_content_files`, so they leave the content-file index and vector store here, first."""
    if not ids:
        return
    from learnflow.stores.content_search import content_stores

    content = content_stores(stores.settings)
    await content.keyword.delete(ids)
    await content.vector.delete_where("content_file_id", ids)


async def _ingest_olx(
    req: ArchiveWebhookInput,
    src: ArchiveSource,
    s: Settings,
    stores: Stores,
    cstore: ContentFileStore,
    result: ArchiveIngestResult,
) -> ArchiveIngestResult:
    course_id = result.course_id or ""
    runs = match_run(src.name, req.run_id or course_id, await cstore.course_runs(src.name))
    if not runs:
        result.outcome = "no_run"
        result.reason = f"no {src.name} course run matches {req.run_id or course_id!r}"
        return result
    live = [r for r in runs if r.resource_published or r.test_mode]
    if not live:
        result.outcome, result.run_id = "retired", runs[0].run_id
        result.reason = "the course is unpublished (retired)"
        return result
    run = live[0]
    result.run_id, result.readable_id = run.run_id, run.readable_id
    if run.archive_key == req.content_path and not req.overwrite:
        result.outcome = "unchanged_key"  # level 1: this very archive was processed already
        return result

    with _work_dir(s) as work:
        archive = work / "archive"
        progress: dict[str, Any] = {"stage": "download", "key": req.content_path}
        async with _auto_heartbeat(progress):
            try:
                await asyncio.to_thread(
                    _download,
                    _s3_client(),
                    s.course_archive_bucket_name,
                    req.content_path,
                    archive,
                    s.archive_max_bytes,
                )
            except _Missing:
                result.outcome, result.reason = "missing", "no such key in the bucket"
                return result
            except _TooLarge as exc:
                return await _reject(stores, result, f"archive too large: {exc}")
            try:
                checksum = await asyncio.to_thread(tar_header_checksum, archive)
            except UnsafeArchiveError as exc:
                return await _reject(stores, result, f"{type(exc).__name__}: {exc}")
            result.checksum = checksum
            if run.checksum == checksum and not req.overwrite:
                # Level 2: the same tar headers under a new key (a re-export with no change).
                await cstore.record_archive(run.id, checksum=None, archive_key=req.content_path)
                result.outcome = "unchanged_checksum"
                return result

            resume = _resume_details()
            start_chunk = (
                int(resume.get("next_chunk", 0)) if resume.get("checksum") == checksum else 0
            )
            result.resumed_from_chunk = start_chunk
            previous = await cstore.previous_files(run.id)
            extractor = text_extractor(s)
            limits = ExtractionLimits()
            kept: set[str] = set()
            failed: set[str] = set()
            textless: set[str] = set()
            with contextlib.ExitStack() as stack:
                progress["stage"] = "unpack"
                try:
                    extracted = await asyncio.to_thread(
                        stack.enter_context, safe_extract(archive, limits, parent_dir=work)
                    )
                except UnsafeArchiveError as exc:
                    return await _reject(stores, result, f"{type(exc).__name__}: {exc}")
                had_files = bool(extracted.files)
                chunks: list[set[str]] = []
                olx_root = extracted.root
                if had_files:
                    olx_root = find_olx_root(extracted.root)
                    chunks = await asyncio.to_thread(
                        _chunks_of_keys,
                        olx_root,
                        extracted.root,
                        run.run_id,
                        s.archive_files_per_chunk,
                    )
                for index, chunk in enumerate(chunks):
                    progress.update(
                        stage="extract", checksum=checksum, next_chunk=index, chunks=len(chunks)
                    )
                    done_before = index < start_chunk
                    walked = await asyncio.to_thread(
                        walk_olx,
                        olx_root,
                        run.run_id,
                        extractor=extractor,
                        base_url=src.base_url(s),
                        previous=previous,
                        # a chunk an earlier attempt loaded is not extracted again
                        overwrite=req.overwrite and not done_before,
                        source_root=extracted.root,
                        include=chunk.__contains__,
                        max_workers=s.archive_extract_workers,
                    )
                    result.extractor_calls += walked.extractor_calls
                    result.reused += walked.reused
                    result.textless += len(walked.empty)
                    result.failures += _failures(walked.failures, 20 - len(result.failures))
                    kept |= {f.key for f in walked.files}
                    failed |= {f.key for f in walked.failures}
                    textless |= set(walked.empty)
                    if not done_before:
                        await _load(cstore, run, walked.files, walked.empty, result)
                    progress["next_chunk"] = index + 1
                    _heartbeat(dict(progress))
            await _finish_load(
                cstore,
                run,
                req,
                result,
                kept,
                failed,
                textless=textless,
                had_files=had_files,
                hard_delete=False,
                stores=stores,
            )
    log.info(
        "archive.loaded",
        source=src.name,
        key=req.content_path,
        run_id=run.run_id,
        outcome=result.outcome,
        loaded=result.loaded,
        extractor_calls=result.extractor_calls,
        failed=result.failed,
    )
    return result


async def _reject(stores: Stores, result: ArchiveIngestResult, reason: str) -> ArchiveIngestResult:
    result.outcome, result.reason = "rejected", reason
    log.warning("archive.rejected", source=result.source, key=result.key, reason=reason)
    await _quarantine(stores, result.source, result.key, reason)
    return result


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
    return _strip_suffix(key, CANVAS_SUFFIXES) + ".metadata.json"


async def _ingest_canvas(
    req: ArchiveWebhookInput,
    src: ArchiveSource,
    s: Settings,
    stores: Stores,
    cstore: ContentFileStore,
    result: ArchiveIngestResult,
) -> ArchiveIngestResult:
    folder = result.course_id or ""
    if not req.overwrite and await cstore.runs_with_archive_key(src.name, req.content_path):
        result.outcome = "unchanged_key"
        return result
    now = datetime.now(UTC)
    with _work_dir(s) as work:
        archive = work / "course.imscc"
        progress: dict[str, Any] = {"stage": "download", "key": req.content_path}
        async with _auto_heartbeat(progress):
            s3 = _s3_client()
            try:
                await asyncio.to_thread(
                    _download,
                    s3,
                    s.course_archive_bucket_name,
                    req.content_path,
                    archive,
                    s.archive_max_bytes,
                )
            except _Missing:
                result.outcome, result.reason = "missing", "no such key in the bucket"
                return result
            except _TooLarge as exc:
                return await _reject(stores, result, f"archive too large: {exc}")
            url_config = None
            meta = work / "metadata.json"
            with contextlib.suppress(_Missing):
                await asyncio.to_thread(
                    _download,
                    s3,
                    s.course_archive_bucket_name,
                    _canvas_metadata_key(req.content_path),
                    meta,
                    32 * 1024 * 1024,
                )
                try:
                    url_config = parse_url_config(meta.read_bytes())
                except (ValueError, AttributeError) as exc:
                    log.warning("canvas.metadata_unreadable", key=req.content_path, error=str(exc))
            try:
                course, _published, checksum = await asyncio.to_thread(
                    _read_canvas, archive, folder, url_config, now, 32 * 1024 * 1024
                )
            except (UnsafeArchiveError, zipfile.BadZipFile, KeyError, OSError) as exc:
                return await _reject(stores, result, f"{type(exc).__name__}: {exc}")
            result.checksum = checksum

            # The course resource: MIT Learn creates a test-mode placeholder; an existing one
            # keeps its flags. Other courses in the same folder (another course code) are
            # orphans and unpublished.
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
            tag = f"archive-canvas-{hashlib.sha256(req.content_path.encode()).hexdigest()[:16]}"
            upserted = await stores.catalog.upsert_resources(tag, [resource])
            await cstore.forget_etl_seen(tag)
            result.resources_upserted = upserted.inserted + upserted.updated
            await cstore.unpublish_resources(
                src.name, f"{folder}-", keep_readable_id=course.readable_id
            )
            run = await cstore.run_of(src.platform, course.readable_id, course.run_id)
            if run is None:  # pragma: no cover - upsert_resources just wrote it
                raise RuntimeError(f"canvas run {course.run_id} missing after upsert")
            result.run_id, result.readable_id = run.run_id, run.readable_id
            if run.checksum == checksum and not req.overwrite:
                await cstore.record_archive(run.id, checksum=None, archive_key=req.content_path)
                result.outcome = "unchanged_checksum"
                return result

            previous = await cstore.previous_files(run.id)
            progress.update(stage="extract", checksum=checksum)
            try:
                walked = await asyncio.to_thread(
                    canvas_content_files,
                    archive,
                    folder,
                    extractor=text_extractor(s),
                    previous=previous,
                    url_config=url_config,
                    overwrite=req.overwrite,
                    now=now,
                    max_workers=s.archive_extract_workers,
                )
            except (UnsafeArchiveError, zipfile.BadZipFile) as exc:
                return await _reject(stores, result, f"{type(exc).__name__}: {exc}")
            result.extractor_calls = walked.extractor_calls
            result.textless = len(walked.empty)
            result.failures = _failures(walked.failures)
            await _load(cstore, run, walked.files, walked.empty, result)
            await _finish_load(
                cstore,
                run,
                req,
                result,
                {f.key for f in walked.files},
                {f.key for f in walked.failures},
                textless=set(walked.empty),
                had_files=True,
                hard_delete=True,  # Canvas: unpublished items are deleted at once
                stores=stores,
            )
    log.info(
        "archive.loaded",
        source=src.name,
        key=req.content_path,
        run_id=result.run_id,
        outcome=result.outcome,
        loaded=result.loaded,
        extractor_calls=result.extractor_calls,
    )
    return result


async def ingest_archive(req: ArchiveWebhookInput) -> ArchiveIngestResult:
    """Load one archive (the activity body; also callable from the CLI without Temporal)."""
    src = archive_source(req.source)
    s = get_settings()
    stores = await get_stores()
    cstore = ContentFileStore(stores.pool)
    prefix = src.prefix(s)
    course_id = course_id_for_key(src, req.content_path, prefix)
    result = ArchiveIngestResult(
        source=src.name, key=req.content_path, outcome="rejected", course_id=course_id
    )
    if course_id is None:
        # Only archives under the source's own prefix are read: a webhook cannot point the
        # worker at any other object in the bucket.
        return await _reject(
            stores,
            result,
            f"key is not a {'/'.join(src.suffixes)} archive under {prefix!r}",
        )
    if src.kind == "canvas":
        return await _ingest_canvas(req, src, s, stores, cstore, result)
    return await _ingest_olx(req, src, s, stores, cstore, result)


@activity.defn
async def ingest_course_archive(req: ArchiveWebhookInput) -> ArchiveIngestResult:
    """One course archive by S3 key into content files (three-level change detection)."""
    return await ingest_archive(req)


# -- OCW ------------------------------------------------------------------------------------------

_OCW_PREFIX = re.compile(r"^courses/[A-Za-z0-9._~+-]{1,300}$")


def ocw_prefix(raw: str) -> str | None:
    """`courses/<slug>` from a webhook prefix (`courses/<slug>/`, `/courses/<slug>`), or None."""
    value = raw.strip().strip("/")
    if not value.startswith("courses/"):
        value = f"courses/{value}"
    return value if _OCW_PREFIX.match(value) and ".." not in value.split("/") else None


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
            for o in _list_objects(_s3_client(), s.ocw_live_bucket, "courses/", delimiter="/")
            if "Prefix" in o and (p := ocw_prefix(o["Prefix"]))
        )

    return DiscoverOcwResult(prefixes=await asyncio.to_thread(listing))


def ocw_resource(course: dict[str, Any]) -> Resource:
    """The course fields `transform_course` returns, as the catalog's Resource."""
    from learnflow.reference import reference_data

    ref = reference_data()
    data = dict(course)
    data["departments"] = [
        Department(department_id=d, name=ref.departments.get(d, d))
        for d in course.get("departments") or []
    ]
    data["topics"] = [Topic(name=t) for t in course.get("topics") or []]
    return Resource.model_validate(data)


@activity.defn
async def ingest_ocw_site(req: OcwSiteInput) -> ArchiveIngestResult:
    """One OCW site: course resource + page/resource content files (md5 reuse, soft retire)."""
    s = get_settings()
    stores = await get_stores()
    cstore = ContentFileStore(stores.pool)
    prefix = ocw_prefix(req.prefix)
    result = ArchiveIngestResult(source="ocw", key=req.prefix, outcome="rejected")
    if prefix is None:
        return await _reject(stores, result, "not an OCW site prefix (courses/<slug>)")
    result.key = prefix
    bucket = s.ocw_live_bucket
    s3 = _s3_client()
    progress: dict[str, Any] = {"stage": "list", "prefix": prefix}
    async with _auto_heartbeat(progress):
        listed = await asyncio.to_thread(lambda: list(_list_objects(s3, bucket, prefix + "/")))
        objects = {o["Key"]: o for o in listed}
        if prefix + "/data.json" not in objects:
            result.outcome, result.reason = "missing", f"no {prefix}/data.json in {bucket}"
            return result
        # The site's checksum: every object's key, ETag and size (a changed file changes it).
        site_checksum = hashlib.sha256(
            json.dumps(
                sorted((k, o.get("ETag", ""), o.get("Size", 0)) for k, o in objects.items())
            ).encode()
        ).hexdigest()
        result.checksum = site_checksum

        def read(path: str) -> bytes | None:
            obj = objects.get(path)
            if obj is None:
                return None
            if int(obj.get("Size", 0)) > s.ocw_max_file_bytes:
                raise ValueError(f"{path} is larger than {s.ocw_max_file_bytes} bytes")
            return s3.get_object(Bucket=bucket, Key=path)["Body"].read()

        try:
            raw_course = json.loads(await asyncio.to_thread(read, prefix + "/data.json") or b"")
            course = transform_course(raw_course, url_path=prefix + "/", base_url=s.ocw_base_url)
        except (ValueError, KeyError, TypeError) as exc:
            return await _reject(stores, result, f"course data.json: {type(exc).__name__}: {exc}")
        if course is None:
            return await _reject(stores, result, "course data.json has no legacy_uid or site_uid")
        try:
            resource = ocw_resource(course)
        except ValueError as exc:
            return await _reject(stores, result, f"course fields: {exc}")
        tag = f"archive-ocw-{hashlib.sha256(prefix.encode()).hexdigest()[:16]}"
        upserted = await stores.catalog.upsert_resources(tag, [resource])
        await cstore.forget_etl_seen(tag)
        result.resources_upserted = upserted.inserted + upserted.updated
        run_id = resource.runs[0].run_id
        run = await cstore.run_of("ocw", resource.readable_id, run_id)
        if run is None:  # pragma: no cover - upsert_resources just wrote it
            raise RuntimeError(f"OCW run {run_id} missing after upsert")
        result.run_id, result.readable_id, result.course_id = run_id, run.readable_id, prefix
        if run.checksum == site_checksum and not req.overwrite:
            result.outcome = "unchanged_checksum"
            return result

        previous = await cstore.previous_files(run.id)
        progress.update(stage="extract", checksum=site_checksum)
        site = await asyncio.to_thread(
            read_ocw_site,
            sorted(objects),
            read,
            prefix,
            extractor=text_extractor(s),
            base_url=s.ocw_base_url,
            previous=previous,
            overwrite=req.overwrite,
        )
        result.extractor_calls = site.extractor_calls
        result.reused = site.reused
        result.failures = _failures(site.failures)
        await _load(cstore, run, site.files, {}, result)
        webhook_like = ArchiveWebhookInput(source="ocw", content_path=prefix)
        await _finish_load(
            cstore,
            run,
            webhook_like,
            result,
            {f.key for f in site.files},
            {f.key for f in site.failures},
            had_files=True,
            hard_delete=False,
            stores=stores,
        )
    log.info(
        "ocw.loaded",
        prefix=prefix,
        outcome=result.outcome,
        loaded=result.loaded,
        extractor_calls=result.extractor_calls,
        failed=result.failed,
    )
    return result


# -- delete and purge -----------------------------------------------------------------------------


@activity.defn
async def delete_course_content(req: DeleteCourseContentInput) -> DeleteCourseContentResult:
    """Unpublish the source's courses whose readable_id starts with `course_id` (Canvas:
    `course_id-`), and their content files; the workflow then deindexes them."""
    s = get_settings()
    result = DeleteCourseContentResult(
        source=req.source, course_id=req.course_id, outcome="refused"
    )
    etl_source = SOURCE_ALIASES.get(req.source, req.source)
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
        await _deindex_content_files(stores, ids)  # normally gone already: they were unpublished
        result.deleted += await cstore.delete_files(ids)
        _heartbeat({"deleted": result.deleted})
        if len(ids) < req.batch_size:
            break
    log.info("content_files.purged", deleted=result.deleted, retention_days=req.retention_days)
    return result


ACTIVITIES_BY_QUEUE = {
    ARCHIVE_QUEUE: [
        discover_course_archives,
        ingest_course_archive,
        discover_ocw_sites,
        ingest_ocw_site,
    ],
    DEFAULT_QUEUE: [delete_course_content, purge_content_files, unpublish_ocw_course],
}

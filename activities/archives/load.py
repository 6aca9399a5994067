"""The skeleton every archive load runs (OLX, Canvas, OCW), so the loaders hold only what differs.

A load: (1) the source's own checks before any download (run matching, the key seen before);
(2) `fetch`: a fresh work directory, a heartbeat, the bounded download (a missing key ends as
`missing`, an oversize one is rejected); (3) the source's walk; (4) the same rules after it:
`unchanged` (level 2, the same checksum), `load` per chunk, `finish` (record the archive, retire
what the archive no longer holds); (5) one log line. Rejections leave a quarantine row.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from activities.archives.common import (
    Missing,
    TooLarge,
    deindex_content_files,
    download,
    quarantine,
    s3_client,
    work_dir,
)
from activities.progress import Progress, heartbeat, heartbeating
from learnflow.contracts.archives import ArchiveIngestResult
from learnflow.db.content_files import ArchiveRun, ContentFileStore
from learnflow.models import ContentFile, Resource
from learnflow.settings import Settings, get_settings
from learnflow.stores import Stores, get_stores

log = structlog.get_logger("activities.archives")


@dataclass
class Loading:
    """One archive (or OCW site) being loaded: what it reads, writes and reports."""

    key: str
    overwrite: bool
    result: ArchiveIngestResult
    s: Settings
    stores: Stores
    cstore: ContentFileStore
    progress: Progress = field(default_factory=Progress)

    @classmethod
    async def start(cls, key: str, overwrite: bool, result: ArchiveIngestResult) -> Loading:
        stores = await get_stores()
        return cls(
            key=key,
            overwrite=overwrite,
            result=result,
            s=get_settings(),
            stores=stores,
            cstore=ContentFileStore(stores.pool),
            progress=Progress(stage="download", key=key),
        )

    async def reject(self, reason: str) -> ArchiveIngestResult:
        self.result.outcome, self.result.reason = "rejected", reason
        log.warning(
            "archive.rejected", source=self.result.source, key=self.result.key, reason=reason
        )
        await quarantine(self.stores, self.result.source, self.result.key, reason)
        return self.result

    @asynccontextmanager
    async def working(self) -> AsyncIterator[Path]:
        """A work directory, removed afterwards, with the progress heartbeat running."""
        with work_dir(self.s) as work:
            async with heartbeating(self.progress):
                yield work

    async def fetch(self, s3, key: str, dest: Path, max_bytes: int | None = None) -> bool:
        """Download `key` to `dest`; False (and the outcome set) when it is missing or too big."""
        bucket = self.s.course_archive_bucket_name
        try:
            await asyncio.to_thread(
                download, s3, bucket, key, dest, max_bytes or self.s.archive_max_bytes
            )
        except Missing:
            self.result.outcome, self.result.reason = "missing", "no such key in the bucket"
            return False
        except TooLarge as exc:
            await self.reject(f"archive too large: {exc}")
            return False
        return True

    async def unchanged(self, run: ArchiveRun, checksum: str, *, record_key: bool = True) -> bool:
        """Level 2: the run already holds this very content (a re-export with no change)."""
        if run.checksum != checksum or self.overwrite:
            return False
        if record_key:
            await self.cstore.record_archive(run.id, checksum=None, archive_key=self.key)
        self.result.outcome = "unchanged_checksum"
        return True

    async def upsert_course(self, kind: str, resource: Resource) -> None:
        """The course resource an archive carries (Canvas, OCW), written as the ETL writes it."""
        tag = f"archive-{kind}-{hashlib.sha256(self.key.encode()).hexdigest()[:16]}"
        upserted = await self.stores.catalog.upsert_resources(tag, [resource])
        await self.cstore.forget_etl_seen(tag)
        self.result.resources_upserted = upserted.inserted + upserted.updated

    async def load(self, run: ArchiveRun, files: list[ContentFile], textless: dict[str, str]):
        counts = await self.cstore.upsert_files(run, files)
        await self.cstore.remember_textless(run.id, textless)
        self.result.inserted += counts.inserted
        self.result.updated += counts.updated
        self.result.unchanged += counts.unchanged

    async def finish(
        self,
        run: ArchiveRun,
        kept: set[str],
        failed: set[str],
        *,
        textless: set[str] = frozenset(),  # type: ignore[assignment]
        had_files: bool = True,
        hard_delete: bool = False,
    ) -> None:
        """MIT Learn's rules after a walk: record the archive only when at least one file loaded
        (or the archive is legitimately empty); retire the run's other files unless nothing
        loaded."""
        result, cstore = self.result, self.cstore
        result.loaded = len(kept)
        result.failed = len(failed)
        if kept:
            if hard_delete:
                gone = await cstore.missing_file_ids(run.id, kept | failed)
                await deindex_content_files(self.stores, gone)
                result.retired = await cstore.delete_files(gone)
            else:
                result.retired = await cstore.retire_missing(run.id, kept | failed)
            await cstore.forget_textless_except(run.id, textless | failed)
            await cstore.record_archive(run.id, checksum=result.checksum, archive_key=self.key)
            result.outcome = "loaded"
        elif failed:
            result.outcome = "all_failed"  # nothing recorded: the next sync tries again
        else:
            # No file with text (or none at all): keep the run's existing files, remember the key.
            await cstore.record_archive(run.id, checksum=None, archive_key=self.key)
            result.outcome = "empty"
        if not had_files:
            result.reason = "the archive holds no files"

    def beat(self, **changes: Any) -> None:
        for name, value in changes.items():
            setattr(self.progress, name, value)
        heartbeat(self.progress)

    def logged(self, event: str = "archive.loaded") -> ArchiveIngestResult:
        r = self.result
        log.info(
            event,
            source=r.source,
            key=r.key,
            run_id=r.run_id,
            outcome=r.outcome,
            loaded=r.loaded,
            extractor_calls=r.extractor_calls,
            failed=r.failed,
        )
        return r


async def load_archive(
    job: Loading, filename: str, walk: Callable[[Loading, Any, Path, Path], Awaitable[None]]
) -> ArchiveIngestResult:
    """Download the archive into a fresh work directory and hand it to the source's `walk`."""
    async with job.working() as work:
        archive = work / filename
        s3 = s3_client()
        if await job.fetch(s3, job.key, archive):
            await walk(job, s3, archive, work)
    return job.logged()

"""OLX course archives (edX, MITx Online, xPRO, OLL): one run's tarball into content files.

Three levels of change detection: the key seen before (level 1), the same tar headers under a new
key (level 2), per-file checksums (level 3, in `walk_olx`). Files load in chunks of whole keys;
the heartbeat carries the archive checksum and the next chunk, so a retry skips loaded chunks.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from activities.archives.common import failures_out, text_extractor
from activities.archives.load import Loading, load_archive
from activities.progress import resumed
from learnflow.contracts.archives import ArchiveIngestResult, ArchiveWebhookInput
from learnflow.db.content_files import ArchiveRun
from sources.archives.checksum import tar_header_checksum
from sources.archives.olx import edx_module_id, find_olx_root, iter_olx_files, walk_olx
from sources.archives.safe_extract import ExtractionLimits, UnsafeArchiveError, safe_extract
from sources.archives.spec import ArchiveSource, match_run


def _chunks_of_keys(olx_root: Path, src_root: Path, run_id: str, size: int) -> list[set[str]]:
    """Source paths grouped so that every key's files (OLX pointer + body) share a chunk."""
    by_key: dict[str, list[str]] = {}
    for path in iter_olx_files(olx_root):
        rel = path.relative_to(src_root).as_posix()
        by_key.setdefault(edx_module_id(rel, run_id), []).append(rel)
    keys = sorted(by_key)
    return [{p for k in keys[i : i + size] for p in by_key[k]} for i in range(0, len(keys), size)]


async def ingest_olx(
    req: ArchiveWebhookInput, src: ArchiveSource, job: Loading
) -> ArchiveIngestResult:
    result = job.result
    course_id = result.course_id or ""
    runs = match_run(src.name, req.run_id or course_id, await job.cstore.course_runs(src.name))
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

    async def walk(job: Loading, _s3, archive: Path, work: Path) -> None:
        await _walk_olx(job, src, run, archive, work)

    return await load_archive(job, "archive", walk)


async def _walk_olx(
    job: Loading, src: ArchiveSource, run: ArchiveRun, archive: Path, work: Path
) -> None:
    result, s = job.result, job.s
    try:
        checksum = await asyncio.to_thread(tar_header_checksum, archive)
    except UnsafeArchiveError as exc:
        await job.reject(f"{type(exc).__name__}: {exc}")
        return
    result.checksum = checksum
    if await job.unchanged(run, checksum):
        return
    resume = resumed()
    start_chunk = resume.next_chunk if resume.checksum == checksum else 0
    result.resumed_from_chunk = start_chunk
    previous = await job.cstore.previous_files(run.id)
    extractor = text_extractor(s)
    kept: set[str] = set()
    failed: set[str] = set()
    textless: set[str] = set()
    with contextlib.ExitStack() as stack:
        job.progress.stage = "unpack"
        try:
            extracted = await asyncio.to_thread(
                stack.enter_context, safe_extract(archive, ExtractionLimits(), parent_dir=work)
            )
        except UnsafeArchiveError as exc:
            await job.reject(f"{type(exc).__name__}: {exc}")
            return
        had_files = bool(extracted.files)
        chunks: list[set[str]] = []
        olx_root = extracted.root
        if had_files:
            olx_root = find_olx_root(extracted.root)
            chunks = await asyncio.to_thread(
                _chunks_of_keys, olx_root, extracted.root, run.run_id, s.archive_files_per_chunk
            )
        for index, chunk in enumerate(chunks):
            p = job.progress
            p.stage, p.checksum, p.next_chunk, p.chunks = "extract", checksum, index, len(chunks)
            done_before = index < start_chunk
            walked = await asyncio.to_thread(
                walk_olx,
                olx_root,
                run.run_id,
                extractor=extractor,
                base_url=src.base_url(s),
                previous=previous,
                # a chunk an earlier attempt loaded is not extracted again
                overwrite=job.overwrite and not done_before,
                source_root=extracted.root,
                include=chunk.__contains__,
                max_workers=s.archive_extract_workers,
            )
            result.extractor_calls += walked.extractor_calls
            result.reused += walked.reused
            result.textless += len(walked.empty)
            result.failures += failures_out(walked.failures, 20 - len(result.failures))
            kept |= {f.key for f in walked.files}
            failed |= {f.key for f in walked.failures}
            textless |= set(walked.empty)
            if not done_before:
                await job.load(run, walked.files, walked.empty)
            job.beat(next_chunk=index + 1)
    await job.finish(run, kept, failed, textless=textless, had_files=had_files)

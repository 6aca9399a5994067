"""Malicious archives in S3 are rejected with nothing written outside the temporary directory;
the webhook path indexes into the content-file search; delete and purge workflows."""

from __future__ import annotations

import asyncio
import io
import tarfile
import zipfile
from pathlib import Path

import grpc
import pytest

from learnflow.contracts.archives import (
    ArchiveIngestResult,
    ArchiveWebhookInput,
    DeleteCourseContentInput,
    DeleteCourseContentResult,
    IngestArchivesInput,
    IngestArchivesResult,
    PurgeContentFilesResult,
)
from search_service.pb import search_pb2, search_pb2_grpc
from tests.archives.conftest import ARCHIVE_3X, PREFIXES, rebuild_tar
from webhook_service import targets

pytestmark = [pytest.mark.temporal, pytest.mark.postgres, pytest.mark.s3, pytest.mark.tika]


def _tar(*members: tuple[tarfile.TarInfo, bytes | None], compress: str = "gz") -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode=f"w:{compress}", format=tarfile.GNU_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _link(name: str, target: str, kind: bytes) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def _nested(depth: int) -> bytes:
    data = _tar(_file("course/about/overview.html", b"<p>deep</p>"))
    for level in range(depth):
        data = _tar(_file(f"exported_courses_{level}.tar.gz", data))
    return data


def _malicious(tag: str) -> dict[str, bytes]:
    device = tarfile.TarInfo("course/static/dev")
    device.type, device.devmajor, device.devminor = tarfile.CHRTYPE, 1, 3
    bomb = _tar(_file("course/static/zeros.txt", b"\0" * (24 * 1024 * 1024)))
    return {
        "traversal": _tar(_file(f"course/../../../escape-{tag}.txt", b"owned")),
        "absolute": _tar(_file(f"/tmp/learnflow-abs-{tag}.txt", b"owned")),
        "symlink": _tar(
            _link("course/static", "/tmp", tarfile.SYMTYPE),
            _file(f"course/static/learnflow-sym-{tag}.txt", b"owned"),
        ),
        "hardlink": _tar(_link("course/passwd", "../../../../etc/passwd", tarfile.LNKTYPE)),
        "device": _tar((device, None)),
        "bomb": bomb,
        "nested": _nested(3),
        "corrupt": b"\x1f\x8b\x08\x00" + b"not really gzip" * 10,
    }


def _zip_slip(tag: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("course_settings/course_settings.xml", "<course/>")
        zf.writestr(f"../../learnflow-zip-{tag}.txt", "owned")
    return out.getvalue()


def _all_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*")]


async def test_malicious_archives_are_rejected_and_nothing_escapes(archive_env):
    env = archive_env
    cases = _malicious(env.tag)
    p = PREFIXES["mitxonline"]
    for name, data in cases.items():
        run_id = f"course-v1:EVIL+{name}+{env.tag}"
        await env.course("mitxonline", run_id)
        env.put(f"{p}{run_id}/export.tar.gz", data)
    canvas_folder = f"666{env.tag}"
    env.put(f"{PREFIXES['canvas']}{canvas_folder}/export.imscc", _zip_slip(env.tag))
    calls = env.tika.calls

    result = await env.execute(
        "IngestArchivesWorkflow",
        IngestArchivesInput(source="mitxonline", max_concurrent=4),
        IngestArchivesResult,
        queue="edx_content",
    )
    canvas = await env.execute(
        "IngestArchivesWorkflow",
        IngestArchivesInput(source="canvas"),
        IngestArchivesResult,
        queue="edx_content",
    )
    assert result.totals.outcomes == {"rejected": len(cases)}, result
    assert canvas.totals.outcomes == {"rejected": 1}, canvas
    assert env.tika.calls == calls

    reasons = {}
    for name in cases:
        run_id = f"course-v1:EVIL+{name}+{env.tag}"
        child = await env.app.client.get_workflow_handle(
            f"archive/mitxonline/{run_id}", result_type=ArchiveIngestResult
        ).result()
        assert child.outcome == "rejected" and child.loaded == 0
        reasons[name] = child.reason or ""
        run = await env.run_of("mitxonline", run_id)
        assert run.archive_key is None  # a rejected archive is not recorded as processed
        assert await env.store.files_of_run(run.id) == []
    assert reasons["traversal"].startswith("PathTraversalError")
    assert reasons["absolute"].startswith("PathTraversalError")
    assert reasons["symlink"].startswith("LinkEscapeError")
    assert reasons["hardlink"].startswith("LinkEscapeError")
    assert reasons["device"].startswith("SpecialFileError")
    assert reasons["bomb"].startswith("CompressionRatioError")
    assert reasons["nested"].startswith("NestingTooDeepError")
    assert reasons["corrupt"].startswith("CorruptArchiveError")

    # Operators find every rejection in the quarantine table.
    rows = await env.fetch(
        "SELECT item_key, reason FROM quarantine WHERE run_id LIKE 'archives/%' AND item_key LIKE $1",
        f"%{env.tag}%",
    )
    assert len(rows) == len(cases) + 1

    # Nothing was written outside the per-archive temporary directories, which are gone.
    assert _all_files(env.work_dir) == []
    for escaped in (
        env.work_dir.parent / f"escape-{env.tag}.txt",
        env.work_dir / f"escape-{env.tag}.txt",
        Path(f"/tmp/learnflow-abs-{env.tag}.txt"),
        Path(f"/tmp/learnflow-sym-{env.tag}.txt"),
        env.work_dir.parent / f"learnflow-zip-{env.tag}.txt",
    ):
        assert not escaped.exists(), escaped


async def test_key_outside_the_prefix_is_refused(archive_env):
    env = archive_env
    env.put("secrets/payroll.tar.gz", ARCHIVE_3X)
    result = await env.execute(
        "IngestArchiveWorkflow",
        ArchiveWebhookInput(source="xpro", content_path="secrets/payroll.tar.gz"),
        ArchiveIngestResult,
        queue="edx_content",
    )
    assert result.outcome == "rejected" and "under 'xpro/openedx" in (result.reason or "")


async def test_webhook_archive_is_indexed_and_found_by_the_search_service(archive_env):
    """The content_files webhook's workflow (same id scheme and arguments): load, index, and the
    gRPC content-file search finds the file by a phrase of its text."""
    env = archive_env
    run_id = f"course-v1:xPRO+HOOK+{env.tag}"
    readable_id = await env.course("xpro", run_id)
    text = b"<html><title>Gyroscope lab</title><p>Precession of a spinning flywheel.</p></html>"
    key = f"{PREFIXES['xpro']}{run_id}/hook.tar.gz"
    env.put(key, rebuild_tar(ARCHIVE_3X, add={"course/static/gyroscope-lab.html": text}))
    arg = ArchiveWebhookInput(
        source="xpro", content_path=key, run_id=readable_id.split("-course")[0]
    )
    handle = await env.app.client.start_workflow(
        targets.INGEST_ARCHIVE.workflow,
        arg,
        id=targets.workflow_id(targets.INGEST_ARCHIVE, "xpro", key),
        task_queue=targets.INGEST_ARCHIVE.task_queue,
        result_type=ArchiveIngestResult,
    )
    result = await asyncio.wait_for(handle.result(), 300)
    assert result.outcome == "loaded" and result.index_workflow_id
    await asyncio.wait_for(
        env.app.client.get_workflow_handle(result.index_workflow_id).result(), 300
    )
    async with grpc.aio.insecure_channel(env.app.grpc_address) as channel:
        found = await search_pb2_grpc.SearchServiceStub(channel).SearchContentFiles(
            search_pb2.SearchContentFilesRequest(
                query="spinning flywheel precession",
                filter=search_pb2.ContentFileFilter(run_id=[run_id]),
            ),
            timeout=30,
        )
    keys = [r.content_file.key for r in found.results]
    assert keys[:1] == [
        f"asset-v1:{run_id.removeprefix('course-v1:')}+type@asset+block@gyroscope-lab.html"
    ]
    assert found.results[0].content_file.title == "Gyroscope lab"


async def test_delete_course_content_escapes_wildcards_and_refuses_short_prefixes(archive_env):
    env = archive_env
    target = f"course-v1:DEL_X+{env.tag}"
    lookalike = f"course-v1:DELaX+{env.tag}"  # `_` as a LIKE wildcard would match this one
    for run_id in (target, lookalike):
        await env.course("mitxonline", run_id, readable_id=run_id)
        env.put(f"{PREFIXES['mitxonline']}{run_id}/a.tar.gz", ARCHIVE_3X)
    await env.execute(
        "IngestArchivesWorkflow",
        IngestArchivesInput(source="mitxonline"),
        IngestArchivesResult,
        queue="edx_content",
    )

    async def delete(course_id: str) -> DeleteCourseContentResult:
        return await env.execute(
            targets.DELETE_COURSE_CONTENT.workflow,
            DeleteCourseContentInput(source="mitxonline", course_id=course_id),
            DeleteCourseContentResult,
            queue=targets.DELETE_COURSE_CONTENT.task_queue,
        )

    refused = await delete("cou")
    assert refused.outcome == "refused" and refused.resources == 0
    done = await delete(f"course-v1:DEL_X+{env.tag}")
    assert done.outcome == "deleted" and done.resources == 1 and done.content_files >= 5
    rows = {
        r["readable_id"]: r["published"]
        for r in await env.fetch(
            "SELECT readable_id, published FROM learning_resource WHERE readable_id = ANY($1)",
            [target, lookalike],
        )
    }
    assert rows == {target: False, lookalike: True}
    run = await env.run_of("mitxonline", target)
    assert not any(f["published"] for f in await env.store.files_of_run(run.id))
    other = await env.run_of("mitxonline", lookalike)
    assert all(f["published"] for f in await env.store.files_of_run(other.id))


async def test_purge_deletes_files_unpublished_longer_than_retention(archive_env):
    env = archive_env
    run_id = f"course-v1:PURGE+{env.tag}"
    await env.course("mitxonline", run_id)
    prefix = f"{PREFIXES['mitxonline']}{run_id}/"
    env.put(prefix + "1.tar.gz", ARCHIVE_3X)
    await env.execute(
        "IngestArchivesWorkflow",
        IngestArchivesInput(source="mitxonline"),
        IngestArchivesResult,
        queue="edx_content",
    )
    drop = {"course/about/overview.html", "course/policies/assets.json"}
    env.put(prefix + "2.tar.gz", rebuild_tar(ARCHIVE_3X, drop=drop))
    await env.execute(
        "IngestArchivesWorkflow",
        IngestArchivesInput(source="mitxonline"),
        IngestArchivesResult,
        queue="edx_content",
    )
    run = await env.run_of("mitxonline", run_id)
    unpublished = [f for f in await env.store.files_of_run(run.id) if not f["published"]]
    assert len(unpublished) == 2
    old, recent = unpublished
    async with env.app.stores.pool.acquire() as conn:
        await conn.execute(
            "UPDATE content_file SET unpublished_on = now() - interval '20 days' WHERE id = $1",
            old["id"],
        )
    # The schedule table's argument, as it sends it.
    purged = await env.execute(
        "PurgeContentFilesWorkflow",
        {"retention_days": 14},
        PurgeContentFilesResult,
        queue="default",
    )
    assert purged.deleted >= 1
    left = {f["id"]: f for f in await env.store.files_of_run(run.id)}
    assert old["id"] not in left and recent["id"] in left
    assert sum(1 for f in left.values() if f["published"]) >= 3

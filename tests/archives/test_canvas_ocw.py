"""Canvas `.imscc` exports and OCW site data from local S3 through Temporal into content files."""

from __future__ import annotations

import json

import grpc
import pytest

from learnflow.contracts import IngestSourceInput
from learnflow.contracts.archives import (
    ArchiveIngestResult,
    IngestArchivesInput,
    IngestArchivesResult,
    IngestOcwResult,
)
from search_service.pb import search_pb2, search_pb2_grpc
from tests.archives.conftest import CANVAS_DIR, OCW_SLUG, PREFIXES, build_imscc
from tests.conftest import TEST_JSON

pytestmark = [pytest.mark.temporal, pytest.mark.postgres, pytest.mark.s3, pytest.mark.tika]

UNIT1 = "wiki_content/unit-1-objectives.html"
UNIT1_URL = "https://canvas.example.edu/courses/14566/pages/unit-1-objectives"
CODE = "[parent] SPCS 302 Earth and Its Processes"


def _original(rel: str) -> str:
    return (CANVAS_DIR / rel).read_text()


async def test_canvas_export_ingests_and_unpublished_items_are_deleted(archive_env):
    env = archive_env
    folder = f"145{env.tag}"
    prefix = f"{PREFIXES['canvas']}{folder}/"
    env.put(prefix + "2024-01-01.imscc", build_imscc())
    metadata = {"pages": [{"title": "Unit 1 Objectives", "html_url": UNIT1_URL, "published": True}]}
    env.put(prefix + "2024-01-01.metadata.json", json.dumps(metadata).encode())

    calls = env.tika.calls
    result = await env.execute(
        "IngestArchivesWorkflow",
        IngestArchivesInput(source="canvas"),
        IngestArchivesResult,
        queue="edx_content",
    )
    child = await env.app.client.get_workflow_handle(
        f"archive/canvas/{folder}", result_type=ArchiveIngestResult
    ).result()
    assert result.totals.outcomes == {"loaded": 1}, child
    assert env.tika.calls > calls
    child = await env.app.client.get_workflow_handle(
        f"archive/canvas/{folder}", result_type=ArchiveIngestResult
    ).result()
    readable_id = f"{folder}-{CODE}"
    assert child.readable_id == readable_id and child.resources_upserted == 1
    # MIT Learn's placeholder course: test mode, unpublished, one `+canvas` run.
    (course,) = await env.fetch(
        "SELECT published, test_mode, title FROM learning_resource"
        " WHERE platform = 'canvas' AND readable_id = $1",
        readable_id,
    )
    assert course == {"published": False, "test_mode": True, "title": CODE}
    run = await env.run_of("canvas", f"{readable_id}+canvas")
    files = {f["key"]: f for f in await env.store.files_of_run(run.id)}
    assert len(files) == child.loaded > 40
    unit1 = next(f for f in files.values() if f["key"].endswith("block@unit-1-objectives"))
    assert unit1["title"] == "Unit 1 Objectives" and unit1["url"] == UNIT1_URL
    hits = await env.store.search_text(
        "layers of Earth physical characteristics", etl_source="canvas"
    )
    assert unit1["key"] in [h["key"] for h in hits]
    # The placeholder is in test mode: its files are searchable through the gRPC service too.
    assert result.index_workflow_id
    await env.app.client.get_workflow_handle(result.index_workflow_id).result()
    async with grpc.aio.insecure_channel(env.app.grpc_address) as channel:
        found = await search_pb2_grpc.SearchServiceStub(channel).SearchContentFiles(
            search_pb2.SearchContentFilesRequest(
                query="layers of Earth physical characteristics",
                filter=search_pb2.ContentFileFilter(platform=["canvas"]),
            ),
            timeout=30,
        )
    assert unit1["key"] in [r.content_file.key for r in found.results]

    # Unchanged: the same key is skipped, Tika is not called.
    calls = env.tika.calls
    again = await env.execute(
        "IngestArchivesWorkflow",
        IngestArchivesInput(source="canvas"),
        IngestArchivesResult,
        queue="edx_content",
    )
    assert again.totals.outcomes == {"unchanged_key": 1} and env.tika.calls == calls

    # A newer export where Unit 1 is unpublished (page and module item): its content file is
    # deleted at once (Canvas), the others reuse their text.
    page = _original(UNIT1).replace(
        '<meta name="workflow_state" content="active"/>',
        '<meta name="workflow_state" content="unpublished"/>',
    )
    module_meta = _original("course_settings/module_meta.xml").replace(
        '<item identifier="g18af0b6bb15a1df310f0f21ccb9927df">\n'
        "        <content_type>WikiPage</content_type>\n"
        "        <workflow_state>active</workflow_state>",
        '<item identifier="g18af0b6bb15a1df310f0f21ccb9927df">\n'
        "        <content_type>WikiPage</content_type>\n"
        "        <workflow_state>unpublished</workflow_state>",
    )
    edits = {UNIT1: page.encode(), "course_settings/module_meta.xml": module_meta.encode()}
    env.put(prefix + "2024-02-01.imscc", build_imscc(edits))
    third = await env.execute(
        "IngestArchivesWorkflow",
        IngestArchivesInput(source="canvas"),
        IngestArchivesResult,
        queue="edx_content",
    )
    assert third.totals.outcomes == {"loaded": 1}
    assert env.tika.calls == calls  # every remaining file reused its stored text
    child = await env.app.client.get_workflow_handle(
        f"archive/canvas/{folder}", result_type=ArchiveIngestResult
    ).result()
    assert child.retired == 1 and child.extractor_calls == 0
    remaining = await env.fetch(
        "SELECT key FROM content_file WHERE run_id = $1 AND key = $2", run.id, unit1["key"]
    )
    assert remaining == []  # hard-deleted, not merely unpublished


async def test_ocw_site_ingests_course_and_files(archive_env):
    env = archive_env
    root = TEST_JSON / "courses" / OCW_SLUG
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        env.put(path.relative_to(TEST_JSON).as_posix(), path, bucket=env.ocw_bucket)
    # The site's course is fixed by its data.json: start from a clean slate in this database.
    async with env.app.stores.pool.acquire() as conn:
        await conn.execute(
            "DELETE FROM learning_resource WHERE platform = 'ocw' AND readable_id = '16.01+fall_2005'"
        )

    webhook_arg = IngestSourceInput(
        source="ocw", options={"prefixes": f"courses/{OCW_SLUG}/,courses/../etc"}
    )
    result = await env.execute(
        "IngestOcwWorkflow", webhook_arg, IngestOcwResult, queue="edx_content"
    )
    assert result.totals.outcomes == {"loaded": 1}, result
    assert result.rejected_prefixes == ["courses/../etc"]
    (course,) = await env.fetch(
        "SELECT readable_id, title, published, data FROM learning_resource WHERE platform = 'ocw'"
        " AND readable_id = '16.01+fall_2005'"
    )
    assert course["title"] == "Unified Engineering I, II, III, & IV" and course["published"]
    assert course["data"]["departments"][0]["department_id"] == "16"
    run = await env.run_of("ocw", "97db384ef34009a64df7cb86cf701979")
    files = {f["key"]: f for f in await env.store.files_of_run(run.id)}
    syllabus = files[f"courses/{OCW_SLUG}/pages/syllabus/"]
    assert syllabus["content_type"] == "page" and syllabus["published"]
    assert syllabus["url"] == f"https://ocw.mit.edu/courses/{OCW_SLUG}/pages/syllabus/"
    video = files[f"courses/{OCW_SLUG}/resources/video/"]
    assert video["content_type"] == "video"
    words = " ".join(syllabus["content"].split()[:3])
    hits = await env.store.search_text(words, etl_source="ocw", limit=100)
    assert syllabus["key"] in [h["key"] for h in hits]

    # Unchanged site: skipped by its checksum, no Tika call.
    calls = env.tika.calls
    again = await env.execute(
        "IngestOcwWorkflow", webhook_arg, IngestOcwResult, queue="edx_content"
    )
    assert again.totals.outcomes == {"unchanged_checksum": 1} and env.tika.calls == calls

    # A page removed from the site: its content file is unpublished (soft, dated).
    env.s3.delete_object(Bucket=env.ocw_bucket, Key=f"courses/{OCW_SLUG}/pages/syllabus/data.json")
    third = await env.execute(
        "IngestOcwWorkflow", webhook_arg, IngestOcwResult, queue="edx_content"
    )
    assert third.totals.outcomes == {"loaded": 1} and third.totals.retired == 1
    gone = await env.fetch(
        "SELECT published, unpublished_on FROM content_file WHERE run_id = $1 AND key = $2",
        run.id,
        syllabus["key"],
    )
    assert gone[0]["published"] is False and gone[0]["unpublished_on"] is not None

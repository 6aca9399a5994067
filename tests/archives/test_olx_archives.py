"""OLX archives (MITx Online, edX, xPRO, OLL) from local S3 through Temporal into content files,
with text from the real Tika server and MIT Learn's three levels of change detection."""

from __future__ import annotations

import pytest

from learnflow.contracts.archives import (
    ArchiveIngestResult,
    IngestArchivesInput,
    IngestArchivesResult,
)
from tests.archives.conftest import (
    ARCHIVE_3X,
    ARCHIVE_3X_NO_CHANGE,
    ARCHIVE_4X,
    ARCHIVE_EMPTY,
    FAIL_MARKER,
    PREFIXES,
    RUN_3X,
    rebuild_tar,
)

pytestmark = [pytest.mark.temporal, pytest.mark.postgres, pytest.mark.s3, pytest.mark.tika]

OVERVIEW_KEY = f"block-v1:{RUN_3X.removeprefix('course-v1:')}+type@about+block@overview"


async def _ingest(env, source: str, **kw) -> IngestArchivesResult:
    return await env.execute(
        "IngestArchivesWorkflow",
        IngestArchivesInput(source=source, **kw),
        IngestArchivesResult,
        queue="edx_content",
    )


async def _child(env, source: str, course_id: str) -> ArchiveIngestResult:
    handle = env.app.client.get_workflow_handle(
        f"archive/{source}/{course_id}", result_type=ArchiveIngestResult
    )
    return await handle.result()


async def test_mitxonline_archive_three_levels_of_change_detection(archive_env):
    env = archive_env
    prefix = PREFIXES["mitxonline"] + RUN_3X + "/"
    await env.course("mitxonline", RUN_3X)
    env.put(prefix + "2024-01-01.tar.gz", ARCHIVE_3X)

    # First run: every text file goes to Tika once; the files land as published content files.
    calls = env.tika.calls
    first = await _ingest(env, "mitxonline")
    assert first.totals.outcomes == {"loaded": 1}, first
    child = await _child(env, "mitxonline", RUN_3X)
    assert child.run_id == RUN_3X and child.failed == 0
    # (the walker also counts 0-byte files, which never reach the server)
    assert 0 < env.tika.calls - calls <= child.extractor_calls
    run = await env.run_of("mitxonline", RUN_3X)
    assert run.archive_key == prefix + "2024-01-01.tar.gz" and run.checksum == child.checksum
    files = await env.store.files_of_run(run.id)
    assert len(files) == child.loaded >= 5 and all(f["published"] for f in files)
    overview = next(f for f in files if f["key"] == OVERVIEW_KEY)
    assert "long course description" in overview["content"]
    assert overview["url"] is None and overview["file_extension"] == ".html"
    assert overview["title"] == "Overview"
    # The text is searchable (Postgres full-text search over title + text).
    hits = await env.store.search_text("course staff biography", etl_source="mitxonline", limit=100)
    assert OVERVIEW_KEY in [h["key"] for h in hits if h["run_id"] == RUN_3X]

    # Level 1: the same key again -> skipped before any download; Tika is not called.
    calls = env.tika.calls
    again = await _ingest(env, "mitxonline")
    assert again.totals.outcomes == {"unchanged_key": 1}
    assert env.tika.calls == calls

    # Level 2: the `_no_change` re-export (same tar headers, new gzip) under a newer key.
    env.put(prefix + "2024-02-01.tar.gz", ARCHIVE_3X_NO_CHANGE)
    same = await _ingest(env, "mitxonline")
    assert same.totals.outcomes == {"unchanged_checksum": 1}
    assert env.tika.calls == calls  # zero Tika calls on an unchanged archive
    run = await env.run_of("mitxonline", RUN_3X)
    assert run.archive_key == prefix + "2024-02-01.tar.gz" and run.checksum == child.checksum

    # Level 3: a changed export (one file edited, one removed) -> only the edited file is
    # extracted, the rest reuse their stored text; the removed file is unpublished (soft).
    edited = b"<p>Rotational dynamics with gyroscopes and precession.</p>"
    changed = rebuild_tar(
        ARCHIVE_3X,
        replace={"course/info/updates.html": edited},
        drop={"course/about/overview.html"},
    )
    env.put(prefix + "2024-03-01.tar.gz", changed)
    calls = env.tika.calls
    third = await _ingest(env, "mitxonline")
    assert third.totals.outcomes == {"loaded": 1}
    child = await _child(env, "mitxonline", RUN_3X)
    assert env.tika.calls - calls == child.extractor_calls == 1
    assert child.reused >= 4 and child.retired == 1
    files = {f["key"]: f for f in await env.store.files_of_run(run.id)}
    assert files[OVERVIEW_KEY]["published"] is False
    assert files[OVERVIEW_KEY]["unpublished_on"] is not None
    updates = next(f for k, f in files.items() if k.endswith("block@updates"))
    assert "gyroscopes" in updates["content"] and updates["published"]
    hits = await env.store.search_text("gyroscopes precession", limit=100)
    assert updates["key"] in [h["key"] for h in hits if h["run_id"] == RUN_3X]
    hits = await env.store.search_text("course staff biography", limit=100)
    assert OVERVIEW_KEY not in [h["key"] for h in hits if h["run_id"] == RUN_3X]


@pytest.mark.parametrize(
    ("source", "folder", "catalog_run_id"),
    [
        # edX: run ids compare with `-`/`+` as `.`, lowercased, without `course-v1:`
        ("mit_edx", "course-v1:MITxT+8.01.3x+{tag}", "MITxT-8.01.3x-{tag}"),
        ("xpro", "course-v1:xPRO+8.01.3x+{tag}", "course-v1:xPRO+8.01.3x+{tag}"),
        # OLL: the course is the file name; `_` counts as `.` and a `mitx.` prefix is dropped
        ("oll", None, "MITx+8.01_3x+{tag}"),
    ],
)
async def test_each_olx_source_ingests(archive_env, source, folder, catalog_run_id):
    env = archive_env
    tag = f"T{env.tag}"
    run_id = catalog_run_id.format(tag=tag)
    await env.course(source, run_id)
    if folder is None:
        key = PREFIXES[source] + f"course-v1:MITx+8.01.3x+{tag}.tar.gz"
    else:
        key = PREFIXES[source] + folder.format(tag=tag) + "/export.tar.gz"
    env.put(key, ARCHIVE_4X)
    result = await _ingest(env, source)
    assert result.totals.outcomes == {"loaded": 1}, result
    run = await env.run_of(source, run_id)
    assert run.archive_key == key
    files = await env.store.files_of_run(run.id, published=True)
    module_run = run_id.removeprefix("course-v1:")
    assert files and all(f["key"].startswith(f"block-v1:{module_run}+type@") for f in files)
    hits = await env.store.search_text("long course description", etl_source=source, limit=100)
    assert {h["key"] for h in hits if h["run_id"] == run_id} == {
        f"block-v1:{module_run}+type@about+block@overview"
    }


async def test_fan_out_continues_as_new_and_reports_every_outcome(archive_env):
    """Four courses, one per discovery page: the parent continues as new after each page and
    the totals carry over; each course gets its own child and outcome."""
    env = archive_env
    p = PREFIXES["xpro"]
    runs = [f"course-v1:xPRO+C{i}+{env.tag}" for i in range(4)]
    for run_id in runs[:3]:
        await env.course("xpro", run_id)
    env.put(f"{p}{runs[0]}/a.tar.gz", ARCHIVE_3X)
    env.put(f"{p}{runs[1]}/a.tar.gz", ARCHIVE_EMPTY)
    env.put(f"{p}{runs[2]}/a.tar.gz", ARCHIVE_4X)
    env.put(f"{p}{runs[3]}/a.tar.gz", ARCHIVE_4X)  # no catalog run
    env.put(f"{p}{runs[3]}/notes.txt", b"not an archive")
    result = await _ingest(env, "xpro", page_size=1, max_concurrent=2)
    assert result.generations == 4
    assert result.totals.courses == 4
    assert result.totals.outcomes == {"loaded": 2, "empty": 1, "no_run": 1}
    empty = await _child(env, "xpro", runs[1])
    assert empty.outcome == "empty" and empty.reason == "the archive holds no files"
    run = await env.run_of("xpro", runs[1])
    assert run.archive_key == f"{p}{runs[1]}/a.tar.gz"  # an empty archive records its key


async def test_failing_file_keeps_its_previous_record(archive_env):
    env = archive_env
    run_id = f"course-v1:MITxT+FAIL+{env.tag}"
    prefix = PREFIXES["mitxonline"] + run_id + "/"
    await env.course("mitxonline", run_id)
    good = b"<html><title>Handout</title><p>Angular momentum is conserved.</p></html>"
    env.put(prefix + "1.tar.gz", rebuild_tar(ARCHIVE_3X, add={"course/static/handout.html": good}))
    assert (await _ingest(env, "mitxonline")).totals.outcomes == {"loaded": 1}

    # The handout changes and Tika fails on it: the old text stays published, the file is
    # reported, the rest of the course still loads.
    bad = b"<html><p>new text</p>" + FAIL_MARKER + b"</html>"
    env.put(prefix + "2.tar.gz", rebuild_tar(ARCHIVE_3X, add={"course/static/handout.html": bad}))
    failed_before = env.tika.failed
    result = await _ingest(env, "mitxonline")
    assert result.totals.outcomes == {"loaded": 1} and result.totals.failed == 1
    assert env.tika.failed == failed_before + 1
    child = await _child(env, "mitxonline", run_id)
    handout_key = f"asset-v1:{run_id.removeprefix('course-v1:')}+type@asset+block@handout.html"
    assert [f.key for f in child.failures] == [handout_key]
    assert "TextExtraction" in child.failures[0].reason
    run = await env.run_of("mitxonline", run_id)
    files = {f["key"]: f for f in await env.store.files_of_run(run.id)}
    assert files[handout_key]["published"] and "conserved" in files[handout_key]["content"]


async def test_unknown_run_and_retired_course(archive_env):
    env = archive_env
    retired = f"course-v1:MITxT+OLD+{env.tag}"
    await env.course("mitxonline", retired, published=False)
    env.put(PREFIXES["mitxonline"] + retired + "/a.tar.gz", ARCHIVE_3X)
    env.put(PREFIXES["mitxonline"] + f"course-v1:MITxT+NONE+{env.tag}/a.tar.gz", ARCHIVE_3X)
    calls = env.tika.calls
    result = await _ingest(env, "mitxonline")
    assert result.totals.outcomes == {"retired": 1, "no_run": 1}
    assert env.tika.calls == calls

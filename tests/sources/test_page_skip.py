"""Re-runs skip raw pages already loaded (same bytes, context, transform code, UTC day for
clock-reading transforms) — without breaking the prune or missing rows changed since.

Driven through Temporal on xPRO's recorded catalog; the transform is wrapped to count calls."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from devstack.harness.fixture_server import Response
from learnflow.db.by_key import unpublish_resource
from learnflow.settings import reset_settings
from sources import xpro
from tests.conftest import TEST_JSON
from tests.sources.conftest import ingest

pytestmark = [pytest.mark.temporal, pytest.mark.postgres, pytest.mark.e2e]

XPRO_COURSES = json.loads((TEST_JSON / "xpro_courses.json").read_bytes())


@pytest.fixture
def counted_transforms(monkeypatch) -> Iterator[dict[str, int]]:
    """How many xPRO courses / programs the transform read. The count is kept in this process,
    so the transform runs here (a thread of the worker), not in the CPU pool's processes."""
    monkeypatch.setenv("INGEST_CPU_WORKERS", "0")
    reset_settings()
    calls = {"courses": 0, "programs": 0}
    course, program = xpro.transform_course, xpro.transform_program

    def counting_course(*args, **kwargs):
        calls["courses"] += 1
        return course(*args, **kwargs)

    def counting_program(*args, **kwargs):
        calls["programs"] += 1
        return program(*args, **kwargs)

    monkeypatch.setattr(xpro, "transform_course", counting_course)
    monkeypatch.setattr(xpro, "transform_program", counting_program)
    yield calls
    monkeypatch.delenv("INGEST_CPU_WORKERS", raising=False)
    reset_settings()


@pytest.fixture
def page_reads(sources_app, monkeypatch) -> list[str]:
    """The raw xPRO pages read back from the blob store (not the manifest, not the blocklist)."""
    reads: list[str] = []
    blobs = type(sources_app.stores.blobs)
    get = blobs.get

    async def counting_get(self, key: str) -> bytes:
        if key.startswith("raw/xpro/") and key.endswith(("-courses", "-programs")):
            reads.append(key)
        return await get(self, key)

    monkeypatch.setattr(blobs, "get", counting_get)
    return reads


@pytest.fixture
def page_loads(monkeypatch) -> list[str]:
    """The pages a `load_page` activity was run for (fetch-skips-v1: the changed ones only)."""
    import activities.ingest as ingest_activities

    loads: list[str] = []
    load = ingest_activities._load_page

    async def counting_load(req):
        loads.append(req.page.key)
        return await load(req)

    monkeypatch.setattr(ingest_activities, "_load_page", counting_load)
    return loads


async def _state(app) -> tuple[dict[str, bool], dict[int, str]]:
    async with app.stores.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT id, readable_id, published, xmin::text AS x FROM learning_resource"
            " WHERE etl_source = 'xpro'"
        )
    return {r["readable_id"]: r["published"] for r in rows}, {r["id"]: r["x"] for r in rows}


async def test_unchanged_pages_are_skipped_and_still_count_as_seen(
    sources_app, sources_server, counted_transforms, page_reads, page_loads
):
    app = sources_app
    first = await ingest(app, "xpro")
    assert first.outcome == "ok", first
    published, versions = await _state(app)
    total = first.inserted + first.updated + first.unchanged
    assert total == len(published) == 4

    counted_transforms.update(courses=0, programs=0)
    page_reads.clear()
    page_loads.clear()
    again = await ingest(app, "xpro")
    assert again.outcome == "ok" and again.unpublished == 0, again
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, total)
    assert counted_transforms == {"courses": 0, "programs": 0}  # both pages skipped
    # ... on the digests the fetch took: neither page was read back to be hashed
    assert page_reads == [], page_reads
    # ... and decided in the fetch (fetch-skips-v1): no page activity ran at all
    assert page_loads == [], page_loads
    async with app.stores.pool.acquire() as conn:  # the fetch recorded the run and its outcome
        run = await conn.fetchrow(
            "SELECT outcome, finished_on, counts FROM etl_run WHERE run_id = $1", again.run_id
        )
    assert run["outcome"] == "ok" and run["finished_on"] is not None, run
    assert run["counts"]["unchanged"] == total
    assert again.embed_workflow_id is None  # nothing written, nothing to embed (rerun-idle-v1)
    assert await _state(app) == (published, versions)  # nothing rewritten, nothing pruned

    # A row changed behind the source's back (a delete webhook): its page is transformed again
    # and the item comes back; the other page is still skipped.
    course = XPRO_COURSES[0]["readable_id"]
    assert published[course]
    async with app.stores.pool.acquire() as conn:
        platform = await conn.fetchval(
            "SELECT platform FROM learning_resource WHERE etl_source = 'xpro' AND readable_id = $1",
            course,
        )
    assert await unpublish_resource(app.stores.pool, "xpro", platform, course, "course") == 1
    healed = await ingest(app, "xpro")
    assert healed.outcome == "ok" and healed.updated == 1, healed
    assert [k.rsplit("-", 1)[1] for k in page_reads] == ["courses"]  # read to be transformed
    assert [k.rsplit("-", 1)[1] for k in page_loads] == ["courses"]  # the only page loaded
    assert healed.embed_workflow_id  # a row written: its embedding is caught up
    assert counted_transforms == {"courses": len(XPRO_COURSES), "programs": 0}
    assert (await _state(app))[0] == published

    # One course gone upstream: the courses page changed and is transformed; the programs page
    # is skipped but its programs are seen, so the (forced) prune unpublishes only the course.
    counted_transforms.update(courses=0, programs=0)
    sources_server.server.inject("/api/courses/", Response.json(XPRO_COURSES[1:]))
    pruned = await ingest(app, "xpro", force_prune=True)
    assert pruned.outcome == "ok" and pruned.unpublished == 1, pruned
    assert counted_transforms == {"courses": len(XPRO_COURSES) - 1, "programs": 0}
    after, _ = await _state(app)
    assert after == {**published, course: False}

    back = await ingest(app, "xpro")
    assert back.outcome == "ok" and back.unpublished == 0, back
    assert (await _state(app))[0] == published

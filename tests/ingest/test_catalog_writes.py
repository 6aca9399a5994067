"""The catalog's set-based write path (`CatalogStore.upsert_resource_rows`) keeps the row-by-row
semantics: the last duplicate wins, missing runs are unpublished, unknown children are not
linked, an unchanged resource rewrites nothing; and the page-skip state heals when a row changes."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from learnflow.models import Relationship, Resource, ResourceRef, ResourceType, Run
from tests.conftest import unique_id

pytestmark = [pytest.mark.postgres]


def _course(readable_id: str, runs: list[Run], title: str = "A course") -> Resource:
    return Resource(
        readable_id=readable_id,
        platform="mitxonline",
        resource_type=ResourceType.course,
        etl_source="catalog-writes-test",
        title=title,
        runs=runs,
    )


async def _runs(conn, readable_id: str) -> dict[str, tuple[bool, str | None]]:
    rows = await conn.fetch(
        "SELECT r.run_id, r.published, r.data->>'title' AS title FROM learning_resource_run r"
        " JOIN learning_resource lr ON lr.id = r.resource_id WHERE lr.readable_id = $1",
        readable_id,
    )
    return {r["run_id"]: (r["published"], r["title"]) for r in rows}


async def test_runs_relationships_and_no_change(app):
    catalog, pool = app.stores.catalog, app.stores.pool
    rid = unique_id("course-v1:test+writes")
    start = datetime(2030, 1, 1, tzinfo=UTC)
    course = _course(
        rid,
        [
            Run(run_id="R1", title="first", start_date=start),
            Run(run_id="R2", title="second"),
            Run(run_id="R1", title="first, again"),  # listed twice: the last one wins
        ],
    )
    missing_child = ResourceRef(
        platform="mitxonline", readable_id=unique_id("nope"), resource_type=ResourceType.course
    )
    program = Resource(
        readable_id=unique_id("program-v1:test+writes"),
        platform="mitxonline",
        resource_type=ResourceType.program,
        etl_source="catalog-writes-test",
        title="A program",
        relationships=[
            Relationship(relation_type="PROGRAM_COURSES", child=missing_child, position=0),
            Relationship(
                relation_type="PROGRAM_COURSES",
                child=ResourceRef(
                    platform="mitxonline", readable_id=rid, resource_type=ResourceType.course
                ),
                position=1,
            ),
        ],
    )
    first = await catalog.upsert_resources("writes-1", [course, program])
    assert (first.inserted, first.updated, first.unchanged) == (2, 0, 0)
    async with pool.acquire() as conn:
        assert await _runs(conn, rid) == {"R1": (True, "first, again"), "R2": (True, "second")}
        links = await conn.fetch(
            "SELECT c.readable_id, r.position FROM learning_resource_relationship r"
            " JOIN learning_resource p ON p.id = r.parent_id"
            " JOIN learning_resource c ON c.id = r.child_id WHERE p.readable_id = $1",
            program.readable_id,
        )
        assert [(r["readable_id"], r["position"]) for r in links] == [(rid, 1)]
        versions = await conn.fetch(
            "SELECT r.xmin::text FROM learning_resource_run r JOIN learning_resource lr"
            " ON lr.id = r.resource_id WHERE lr.readable_id = $1 ORDER BY r.run_id",
            rid,
        )

    same = await catalog.upsert_resources("writes-2", [course, program])
    assert (same.inserted, same.updated, same.unchanged) == (0, 0, 2)
    async with pool.acquire() as conn:
        assert versions == await conn.fetch(
            "SELECT r.xmin::text FROM learning_resource_run r JOIN learning_resource lr"
            " ON lr.id = r.resource_id WHERE lr.readable_id = $1 ORDER BY r.run_id",
            rid,
        )

    # R1 gone from the payload: unpublished, R2 updated.
    changed = _course(rid, [Run(run_id="R2", title="second, renamed")])
    again = await catalog.upsert_resources("writes-3", [changed])
    assert again.updated == 1
    async with pool.acquire() as conn:
        assert await _runs(conn, rid) == {
            "R1": (False, "first, again"),
            "R2": (True, "second, renamed"),
        }
        await conn.execute("DELETE FROM etl_seen WHERE run_id LIKE 'writes-%'")


async def test_page_state_marks_seen_only_while_rows_are_intact(app):
    from learnflow.db.by_key import unpublish_resource
    from learnflow.db.catalog import resource_rows

    catalog, pool = app.stores.catalog, app.stores.pool
    rids = [unique_id("course-v1:test+page") for _ in range(3)]
    page_hash = unique_id("hash")
    loaded = await catalog.upsert_resource_rows(
        "page-1", resource_rows([_course(r, [Run(run_id="R")]) for r in rids])
    )
    await catalog.record_page("catalog-writes-test", page_hash, "page-1", loaded)
    assert await catalog.mark_page_seen("catalog-writes-test", "other-hash", "page-2") is None
    assert await catalog.mark_page_seen("catalog-writes-test", page_hash, "page-2") == 3
    async with pool.acquire() as conn:
        seen = await conn.fetchval("SELECT count(*) FROM etl_seen WHERE run_id = 'page-2'")
    assert seen == 3
    # The page state survives only the runs that met it.
    assert await catalog.forget_pages_except("catalog-writes-test", "page-2") >= 0
    assert await catalog.mark_page_seen("catalog-writes-test", page_hash, "page-3") == 3
    # A row changed since (a webhook unpublished it): the page must be transformed again.
    await unpublish_resource(pool, "catalog-writes-test", "mitxonline", rids[1], "course")
    assert await catalog.mark_page_seen("catalog-writes-test", page_hash, "page-4") is None
    async with pool.acquire() as conn:
        await conn.execute("DELETE FROM etl_seen WHERE run_id LIKE 'page-%'")


async def test_pages_are_marked_seen_together_only_where_intact(app):
    """fetch-skips-v1's one transaction for a run's pages: intact pages (an empty one too) are
    marked and their resources seen; a page with a changed row and an unknown page are not."""
    from learnflow.db.by_key import unpublish_resource
    from learnflow.db.catalog import resource_rows

    catalog, pool = app.stores.catalog, app.stores.pool
    source, run = "catalog-writes-test", unique_id("pages-run")
    pages = {unique_id("intact"): 2, unique_id("changed"): 2, unique_id("empty"): 0}
    rids: dict[str, list[str]] = {}
    for page_hash, n in pages.items():
        rids[page_hash] = [unique_id("course-v1:test+pages") for _ in range(n)]
        loaded = await catalog.upsert_resource_rows(
            "pages-load", resource_rows([_course(r, [Run(run_id="R")]) for r in rids[page_hash]])
        )
        await catalog.record_page(source, page_hash, "pages-load", loaded)
    intact, changed, empty = pages
    await unpublish_resource(pool, source, "mitxonline", rids[changed][0], "course")
    unknown = unique_id("unknown")
    marked = await catalog.mark_pages_seen(source, [intact, changed, empty, unknown, intact], run)
    assert marked == {intact: 2, empty: 0}
    async with pool.acquire() as conn:
        seen = await conn.fetch(
            "SELECT lr.readable_id FROM etl_seen s JOIN learning_resource lr ON lr.id = s.item_id"
            " WHERE s.run_id = $1",
            run,
        )
        last_runs = await conn.fetch(
            "SELECT page_hash, last_run_id FROM etl_page_state WHERE page_hash = ANY($1::text[])",
            list(pages),
        )
        await conn.execute("DELETE FROM etl_seen WHERE run_id = $1", run)
    assert sorted(r["readable_id"] for r in seen) == sorted(rids[intact])
    assert {r["page_hash"]: r["last_run_id"] for r in last_runs} == {
        intact: run,
        changed: "pages-load",
        empty: run,
    }
    assert await catalog.mark_pages_seen(source, [], run) == {}


async def test_documents_are_stored_lz4_compressed_and_read_back_unchanged(app):
    """Migration 0008: the catalog's jsonb is TOAST-compressed with lz4 (pglz was a third of
    Postgres's CPU in a catalog load); the staging table's text is not compressed at all."""
    from learnflow.db.catalog import resource_rows

    catalog, pool = app.stores.catalog, app.stores.pool
    rid = unique_id("course-v1:test+lz4")
    long_text = " ".join(f"word{i % 50}" for i in range(2000))  # ~14 kB, compressible
    course = _course(rid, [Run(run_id="R", description=long_text)])
    course.full_description = long_text
    [row] = resource_rows([course])
    await catalog.upsert_resource_rows("lz4-1", [row])
    async with pool.acquire() as conn:
        stored = await conn.fetchrow(
            "SELECT pg_column_compression(lr.data) AS resource, data::text AS text,"
            " (SELECT pg_column_compression(r.data) FROM learning_resource_run r"
            "  WHERE r.resource_id = lr.id) AS run"
            " FROM learning_resource lr WHERE readable_id = $1",
            rid,
        )
        await conn.execute("DELETE FROM etl_seen WHERE run_id = 'lz4-1'")
    assert stored["resource"] == "lz4" and stored["run"] == "lz4"
    assert json.loads(stored["text"]) == json.loads(row["data"])

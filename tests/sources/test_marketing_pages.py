"""Marketing pages end to end: xPRO's recorded catalog (its page URLs rebased onto a local fixture
server) is ingested first; the marketing_pages run then reads those courses/programs from the
catalog, GETs each page and attaches its markdown as a `marketing_page` content file, which a
gRPC SearchContentFiles finds. A second run rewrites nothing; a page no resource has is
quarantined. No page is recorded: each is `built_marketing_page()` (tests/sources/test_source_marketing_pages.py), one per URL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import urlsplit

import grpc
import pytest

from devstack.harness.fixture_server import FixtureServer, Response
from search_service.pb import search_pb2, search_pb2_grpc
from sources.marketing_pages import CHILDREN_HEADING
from tests.conftest import TEST_JSON
from tests.sources.conftest import ingest
from tests.sources.test_source_marketing_pages import built_marketing_page

pytestmark = [pytest.mark.temporal, pytest.mark.postgres, pytest.mark.e2e, pytest.mark.grpc]

XPRO = "https://xpro.mit.edu"


def _word(n: int) -> str:
    """A word only page `n` holds (what the content search looks for)."""
    return f"quasiperiodic{'abcdefghij'[n]}lattice"


def _page(title: str, n: int) -> bytes:
    html = built_marketing_page(title)
    section = f"<section><h2>Syllabus</h2><p>Week one covers {_word(n)} optics.</p></section>"
    return html.replace("</main>", section + "</main>").encode()


@pytest.fixture
def xpro_pages(sources_app, monkeypatch) -> Iterator[tuple[FixtureServer, dict[str, int]]]:
    """xPRO's recorded courses/programs with their `url`s on this server, and a page at each
    URL; yields the server and the page number of every URL (for `_word`)."""
    with FixtureServer() as server:
        base = server.base_url
        numbers: dict[str, int] = {}
        for name, path in (
            ("xpro_courses.json", "/api/courses/"),
            ("xpro_programs.json", "/api/programs/"),
        ):
            items = json.loads((TEST_JSON / name).read_bytes())
            for item in items:
                if isinstance(item.get("url"), str) and item["url"].startswith(XPRO):
                    item["url"] = base + item["url"][len(XPRO) :]
                    numbers[item["url"]] = n = len(numbers)
                    server.route(
                        urlsplit(item["url"]).path,
                        Response(200, _page(item["title"], n), {"Content-Type": "text/html"}),
                    )
            server.route(path, Response.json(items))
        server.route(
            "/not-in-the-catalog/",
            Response(200, _page("Orphan", 9), {"Content-Type": "text/html"}),
        )
        monkeypatch.setenv("XPRO_COURSES_API_URL", f"{base}/api/courses/")
        monkeypatch.setenv("XPRO_CATALOG_API_URL", f"{base}/api/programs/")
        yield server, numbers


async def _search_files(address: str, query: str) -> list[search_pb2.ContentFileResult]:
    async with grpc.aio.insecure_channel(address) as channel:
        response = await search_pb2_grpc.SearchServiceStub(channel).SearchContentFiles(
            search_pb2.SearchContentFilesRequest(query=query, page_size=20), timeout=10
        )
    return list(response.results)


async def _pages(app) -> dict[str, tuple[int, str, str, str]]:
    """Marketing-page files of xPRO resources: url → (resource id, content, xmin, updated_on)."""
    async with app.stores.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT cf.key, cf.resource_id, cf.content, cf.xmin::text AS xmin,"
            " cf.updated_on::text AS updated_on FROM content_file cf"
            " JOIN learning_resource lr ON lr.id = cf.resource_id"
            " WHERE cf.file_type = 'marketing_page' AND cf.run_id IS NULL"
            " AND lr.etl_source = 'xpro' AND cf.published"
        )
    return {r["key"]: (r["resource_id"], r["content"], r["xmin"], r["updated_on"]) for r in rows}


async def test_marketing_pages_attach_to_resources_and_are_searchable(sources_app, xpro_pages):
    app = sources_app
    server, numbers = xpro_pages
    first_xpro = await ingest(app, "xpro")
    assert first_xpro.outcome == "ok", first_xpro
    async with app.stores.pool.acquire() as conn:
        published = {
            r["url"]: r["id"]
            for r in await conn.fetch(
                "SELECT id, url FROM learning_resource WHERE etl_source = 'xpro' AND published"
                " AND resource_type IN ('course', 'program') AND url LIKE $1 || '%'",
                server.base_url,
            )
        }
    assert published, "the recorded xPRO catalog has published courses/programs"

    # Only xPRO's resources: other suites' courses carry real hosts this test must not call.
    first = await ingest(app, "marketing_pages", etl_source="xpro")
    assert first.outcome == "ok", first
    assert first.items == len(published) and first.quarantined == 0
    assert (first.inserted, first.updated) == (len(published), 0)
    pages = await _pages(app)
    assert set(pages) == set(published)
    for url, (resource_id, content, _xmin, _updated) in pages.items():
        assert resource_id == published[url]
        assert content.startswith("# ") and _word(numbers[url]) in content
        assert "alert" not in content and "Catalog" not in content  # scripts, nav dropped
        assert server.hits(urlsplit(url).path) == 1

    # A program's page has its published courses' pages appended (MIT Learn's rule).
    async with app.stores.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT p.url AS program, c.url AS course FROM learning_resource p"
            " JOIN learning_resource_relationship r ON r.parent_id = p.id"
            " JOIN learning_resource c ON c.id = r.child_id WHERE p.etl_source = 'xpro'"
            " AND p.resource_type = 'program' AND p.published AND c.published"
            " AND c.resource_type = 'course'"
        )
    courses_of: dict[str, list[str]] = {}
    for r in rows:
        if r["program"] in published and r["course"] in published:
            courses_of.setdefault(r["program"], []).append(r["course"])
    assert courses_of, "the recorded xPRO programs list published courses"
    for program, courses in courses_of.items():
        content = pages[program][1]
        assert CHILDREN_HEADING in content
        own, appended = content.split(CHILDREN_HEADING, 1)
        assert _word(numbers[program]) in own
        assert all(_word(numbers[c]) in appended for c in courses)

    # The page's text is searchable through the gRPC content-file search, under its resource
    # (and under the programs whose pages append it).
    url = sorted(published)[0]
    hits = await _search_files(app.grpc_address, _word(numbers[url]))
    expected = {(url, published[url])} | {
        (p, published[p]) for p, courses in courses_of.items() if url in courses
    }
    assert {(h.content_file.key, h.content_file.resource_id) for h in hits} == expected

    # Unchanged pages: fetched again, nothing rewritten.
    again = await ingest(app, "marketing_pages", etl_source="xpro")
    assert again.outcome == "ok" and again.items == len(published), again
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, len(published))
    assert await _pages(app) == pages
    assert all(server.hits(urlsplit(u).path) == 2 for u in published)


async def test_page_of_no_resource_is_quarantined(sources_app, xpro_pages):
    app = sources_app
    server, _numbers = xpro_pages
    orphan = f"{server.base_url}/not-in-the-catalog/"
    result = await ingest(app, "marketing_pages", urls=orphan)
    assert result.outcome == "ok" and result.items == 1, result
    assert (result.inserted, result.updated, result.quarantined) == (0, 0, 1)
    async with app.stores.pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT reason, raw FROM quarantine WHERE source = 'marketing_pages' AND item_key = $1"
            " ORDER BY id DESC LIMIT 1",
            orphan,
        )
        stored = await conn.fetchval("SELECT count(*) FROM content_file WHERE key = $1", orphan)
    assert row is not None and "no published course or program" in row["reason"]
    assert _word(9) in row["raw"]
    assert stored == 0

"""MIT Learn's course blocklist (BLOCKLISTED_COURSES_URL): a listed course loads unpublished.

The list is served by the fixture server as MIT Learn reads it (plain text, one readable id a
line); a run after the list changes re-transforms the page (the list is part of its hash).
"""

from __future__ import annotations

import pytest

from devstack.harness.fixture_server import Response
from tests.sources.conftest import ingest

pytestmark = [pytest.mark.temporal, pytest.mark.postgres, pytest.mark.e2e]

BLOCKED = "course-v1:xPRO+LASERx4"


async def _published(app, readable_id: str) -> bool | None:
    async with app.stores.pool.acquire() as conn:
        return await conn.fetchval(
            "SELECT published FROM learning_resource WHERE etl_source = 'xpro'"
            " AND readable_id = $1 AND resource_type = 'course'",
            readable_id,
        )


async def test_blocklisted_course_loads_unpublished(sources_app, sources_server, monkeypatch):
    server = sources_server.server
    listed = {"body": f"\n{BLOCKED}\r\nMITx+not-in-xpro\n".encode()}
    server.route("/blocklist.txt", lambda req: Response(200, listed["body"], {}))
    monkeypatch.setenv("BLOCKLISTED_COURSES_URL", f"{server.base_url}/blocklist.txt")

    result = await ingest(sources_app, "xpro")
    assert result.outcome == "ok", result
    assert await _published(sources_app, BLOCKED) is False
    others = await sources_app.stores.pool.fetchval(
        "SELECT count(*) FROM learning_resource WHERE etl_source = 'xpro' AND published"
        " AND readable_id <> $1",
        BLOCKED,
    )
    assert others > 0  # only the listed course is held back

    listed["body"] = b""  # taken off the list: the next run publishes it again
    again = await ingest(sources_app, "xpro")
    assert again.outcome == "ok", again
    assert await _published(sources_app, BLOCKED) is True


async def test_unreadable_blocklist_fails_the_fetch(sources_app, sources_server, monkeypatch):
    server = sources_server.server
    server.route("/missing-blocklist.txt", lambda req: Response(404, b"gone", {}))
    monkeypatch.setenv("BLOCKLISTED_COURSES_URL", f"{server.base_url}/missing-blocklist.txt")
    result = await ingest(sources_app, "xpro")
    # MIT Learn's raise_for_status stops the load; here the run loads nothing and prunes nothing
    assert result.outcome == "prune_refused", result
    assert (result.pages, result.inserted, result.updated, result.unpublished) == (0, 0, 0, 0)

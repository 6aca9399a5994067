"""The rules every source follows, end to end on recorded payloads: the prune guard (resources and
feed items), quarantine with `learn quarantine list`, OAuth tokens cached across runs, and a
source without credentials skipped with one log line."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
import structlog
from typer.testing import CliRunner

from devstack.harness.fixture_server import Response
from learnflow import search_attributes as sa
from learnflow.contracts import IngestResult, IngestSourceInput
from sources._oauth import TOKENS
from tests.conftest import FIXTURES, TEST_JSON, unique_id
from tests.sources.conftest import SEE_TOKEN_PATH, TOKEN_PATH, ingest

pytestmark = [pytest.mark.temporal, pytest.mark.postgres, pytest.mark.e2e]

MEDIUM_RSS = (FIXTURES / "test_html" / "test_medium_mit_news.rss").read_text()
XPRO_COURSES = json.loads((TEST_JSON / "xpro_courses.json").read_bytes())
XPRO_PROGRAMS = json.loads((TEST_JSON / "xpro_programs.json").read_bytes())
_ITEM = re.compile(r"<item>.*?</item>", re.DOTALL)


def rss_keeping(n: int) -> bytes:
    """The recorded Medium feed with only its first `n` items."""
    items = _ITEM.findall(MEDIUM_RSS)
    body = _ITEM.sub("", MEDIUM_RSS)
    return body.replace("</channel>", "".join(items[:n]) + "</channel>").encode()


def _json(data) -> Response:
    return Response.json(data)


# What an empty answer is for each kind of source (responses queued for the next requests).
EMPTY = {
    "xpro": {"/api/courses/": [_json([])], "/api/programs/": [_json([])]},
    "medium_news": {"/feed/open-learning": [Response(200, rss_keeping(0))]},
    "mitpe": {p: [_json([])] for p in ("/feeds/courses/", "/feeds/news/", "/feeds/events/")},
    # OVS with no videos has no playlist: the extractor aborts, the fetch is incomplete.
    "ovs": {"/api/v0/public/videos/": [_json({"count": 0, "next": None, "results": []})]},
}
HALF = {
    "xpro": {"/api/courses/": [_json(XPRO_COURSES[:1])]},
    "medium_news": {"/feed/open-learning": [Response(200, rss_keeping(2))]},
}


async def _published(app, etl_source: str) -> tuple[set[str], set[str]]:
    async with app.stores.pool.acquire() as conn:
        resources = await conn.fetch(
            "SELECT readable_id FROM learning_resource WHERE etl_source = $1 AND published",
            etl_source,
        )
        feed = await conn.fetch("SELECT guid FROM feed_item WHERE etl_source = $1", etl_source)
    return {r["readable_id"] for r in resources}, {r["guid"] for r in feed}


async def _run(app, source: str, **kw) -> tuple[IngestResult, str | None]:
    """Run one ingestion; also return the Outcome search attribute operators filter on."""
    handle = await app.client.start_workflow(
        "IngestSourceWorkflow",
        IngestSourceInput(source=source, **kw),
        id=unique_id(f"test/ingest/{source}"),
        task_queue="default",
        result_type=IngestResult,
    )
    result = await handle.result()
    desc = await handle.describe()
    return result, desc.typed_search_attributes.get(sa.OUTCOME)


def _inject(server, answers: dict[str, list[Response]]) -> None:
    for path, responses in answers.items():
        server.inject(path, *responses)


@pytest.mark.parametrize("source", sorted(EMPTY))
async def test_empty_feed_unpublishes_nothing(sources_app, sources_server, source):
    from sources import get_source

    etl_source = get_source(source).etl_source
    full = await ingest(sources_app, source)
    assert full.outcome == "ok"
    before = await _published(sources_app, etl_source)
    assert before[0] or before[1]

    _inject(sources_server.server, EMPTY[source])
    result, outcome = await _run(sources_app, source)

    assert result.outcome == outcome == "prune_refused", result
    assert result.unpublished == 0
    assert re.search(r"returned nothing|did not complete", result.prune_refused_reason or "")
    assert await _published(sources_app, etl_source) == before


@pytest.mark.parametrize("source", sorted(HALF))
async def test_half_feed_unpublishes_nothing_unless_forced(sources_app, sources_server, source):
    from sources import get_source

    etl_source = get_source(source).etl_source
    await ingest(sources_app, source)
    before = await _published(sources_app, etl_source)

    _inject(sources_server.server, HALF[source])
    refused, outcome = await _run(sources_app, source)
    assert refused.outcome == outcome == "prune_refused" and refused.unpublished == 0, refused
    assert "would" in (refused.prune_refused_reason or "")
    assert await _published(sources_app, etl_source) == before

    _inject(sources_server.server, HALF[source])
    forced, outcome = await _run(sources_app, source, force_prune=True)
    after = await _published(sources_app, etl_source)
    gone = len(before[0] - after[0]) + len(before[1] - after[1])
    assert forced.outcome == outcome == "ok" and forced.unpublished == gone > 0, forced

    # The whole feed again: everything is back.
    back = await ingest(sources_app, source)
    assert back.outcome == "ok"
    assert await _published(sources_app, etl_source) == before


async def test_broken_item_is_quarantined_and_listed(sources_app, sources_server):
    broken = [XPRO_COURSES[0], {**XPRO_COURSES[1], "title": None}]
    sources_server.server.inject("/api/courses/", _json(broken))
    result = await ingest(sources_app, "xpro")
    assert result.quarantined == 1
    # the rest loaded: the other course and both programs
    assert result.inserted + result.updated + result.unchanged == 3
    key = XPRO_COURSES[1]["readable_id"]
    async with sources_app.stores.pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT reason, raw FROM quarantine WHERE source = 'xpro' AND run_id = $1",
            result.run_id,
        )
    assert row is not None and "title" in row["reason"] and key in row["raw"]

    from learn_cli.cli import app as cli

    out = await asyncio.to_thread(
        CliRunner().invoke, cli, ["quarantine", "list", "--source", "xpro", "--limit", "5"]
    )
    assert out.exit_code == 0, out.output
    line = next(line for line in out.output.splitlines() if key in line)
    assert "xpro" in line and "title" in line


async def test_oauth_tokens_are_cached_across_runs(sources_app, sources_server):
    server = sources_server.server
    TOKENS.clear()
    edx_before, see_before = server.hits(TOKEN_PATH), server.hits(SEE_TOKEN_PATH)
    first = await ingest(sources_app, "edx")
    second = await ingest(sources_app, "edx")
    await ingest(sources_app, "sloan")
    await ingest(sources_app, "sloan")
    assert first.outcome == second.outcome == "ok"
    assert server.hits(TOKEN_PATH) - edx_before == 1  # one token for 2 runs x 3 pages
    assert server.hits(SEE_TOKEN_PATH) - see_before == 1
    auth = {
        r.headers.get("authorization")
        for r in server.requests
        if r.path.startswith(("/api/v1/", "/see/api/"))
    }
    assert auth == {"JWT recorded-jwt"}


async def test_source_without_credentials_is_skipped_with_one_log_line(
    sources_app, sources_server, monkeypatch
):
    monkeypatch.delenv("YOUTUBE_DEVELOPER_KEY")
    hits = len(sources_server.server.requests)
    with structlog.testing.capture_logs() as logs:
        result, outcome = await _run(sources_app, "youtube")
    assert result.outcome == outcome == "skipped" and result.pages == 0
    skipped = [e for e in logs if e.get("event") == "source.skipped"]
    assert len(skipped) == 1 and skipped[0]["source"] == "youtube"
    assert "YOUTUBE_DEVELOPER_KEY" in skipped[0]["reason"]
    assert len(sources_server.server.requests) == hits  # nothing was called
    secrets = [v for k, v in sources_server.env.items() if "SECRET" in k or "KEY" in k]
    assert not any(s in json.dumps(logs, default=str) for s in secrets)


async def test_a_broken_item_keeps_its_last_good_version(sources_app, sources_server):
    """A course that was published and now arrives unreadable is quarantined, not unpublished:
    its key counts as seen, so the prune leaves the last good version in the catalog."""
    full = await ingest(sources_app, "xpro")
    assert full.quarantined == 0
    key = XPRO_COURSES[1]["readable_id"]
    published_before, _ = await _published(sources_app, "xpro")
    assert key in published_before

    broken = [XPRO_COURSES[0], {**XPRO_COURSES[1], "title": None}, *XPRO_COURSES[2:]]
    sources_server.server.inject("/api/courses/", _json(broken))
    # forced past the share guard (1 of a handful would trip it): the seen rule alone keeps it
    result, outcome = await _run(sources_app, "xpro", force_prune=True)
    assert result.quarantined == 1 and result.unpublished == 0, result
    assert outcome == "ok"
    published_after, _ = await _published(sources_app, "xpro")
    assert published_after == published_before

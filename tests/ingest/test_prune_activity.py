"""`prune_source` on its own (ActivityEnvironment) against the session's real Postgres: the guard
that refuses a run which would unpublish too much or did not fetch everything, and the split by
kinds that keeps a courses-only run of MIT Professional Education away from its news and events.

The session's catalog is shared, so each test owns a few MIT PE rows (removed afterwards) and
marks as seen, for its run, every other published MIT PE resource: only its own rows can vanish.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.testing import ActivityEnvironment

from activities.ingest import prune_source
from activities.search import index_content_files, index_pending
from learnflow.contracts import IndexInput, PruneInput, PruneResult
from learnflow.models import FeedItem, FeedSource, FeedType
from tests.conftest import unique_id
from tests.helpers.catalog import course

pytestmark = [pytest.mark.postgres]

SOURCE = "mitpe"  # etl_source "mitpe": courses and programs, news and events (split schedules)
OWN = 5  # rows of the test's own; one of five vanishing is the guard's limit (0.2), not past it


async def _prune(run_id: str, complete: bool = True, **options: str) -> PruneResult:
    req = PruneInput(source=SOURCE, run_id=run_id, fetch_complete=complete, options=options)
    return await ActivityEnvironment().run(prune_source, req)


@pytest.fixture
async def own(app) -> AsyncIterator[list[str]]:
    """OWN published MIT PE courses loaded by an earlier run; deleted after the test."""
    tag = unique_id("prune")
    ids = [f"{tag}-{i}" for i in range(OWN)]
    await app.stores.catalog.upsert_resources(
        f"{tag}-load", [course(SOURCE, rid, f"Course {rid}") for rid in ids]
    )
    yield ids
    async with app.stores.pool.acquire() as conn:
        # A test that indexed its rows removes their documents too: the session's keyword index
        # is shared, and an orphan document would be listed by search tests but found nowhere.
        row_ids = await conn.fetch(
            "SELECT id FROM learning_resource WHERE readable_id = ANY($1)", ids
        )
        await app.stores.keyword.delete([r["id"] for r in row_ids])
        await conn.execute("DELETE FROM learning_resource WHERE readable_id = ANY($1)", ids)
        await conn.execute("DELETE FROM feed_item WHERE guid LIKE $1", f"{tag}%")


async def _see_all_but(app, run_id: str, missing: list[str], feeds: bool = False) -> None:
    """Record, for `run_id`, every published MIT PE resource as seen except `missing`; with
    `feeds`, every MIT PE feed item too (other tests' runs leave news and events behind)."""
    async with app.stores.pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO etl_seen (run_id, kind, item_id) SELECT $1, 'resource', id"
            " FROM learning_resource WHERE etl_source = $2 AND published"
            " AND NOT (readable_id = ANY($3)) ON CONFLICT DO NOTHING",
            run_id,
            SOURCE,
            missing,
        )
        if feeds:
            await conn.execute(
                "INSERT INTO etl_seen (run_id, kind, item_id) SELECT $1, 'feed_item', id"
                " FROM feed_item WHERE etl_source = $2 ON CONFLICT DO NOTHING",
                run_id,
                SOURCE,
            )


async def _see(app, run_id: str, ids: list[str]) -> None:
    """Record, for `run_id`, only these resources as seen."""
    async with app.stores.pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO etl_seen (run_id, kind, item_id) SELECT $1, 'resource', id"
            " FROM learning_resource WHERE readable_id = ANY($2)",
            run_id,
            ids,
        )


async def _published(app, ids: list[str]) -> dict[str, bool]:
    async with app.stores.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT readable_id, published FROM learning_resource WHERE readable_id = ANY($1)", ids
        )
    return {r["readable_id"]: r["published"] for r in rows}


async def _seen(app, run_id: str) -> int:
    async with app.stores.pool.acquire() as conn:
        return await conn.fetchval("SELECT count(*) FROM etl_seen WHERE run_id = $1", run_id)


async def test_a_run_that_would_unpublish_too_much_is_refused_and_changes_nothing(app, own):
    run_id = unique_id("prune-run")
    await _see(app, run_id, own[:1])  # every other published MIT PE resource vanishes
    out = await _prune(run_id)
    assert out.refused and out.unpublished == 0
    assert out.reason and out.reason.startswith("would unpublish"), out.reason
    assert set((await _published(app, own)).values()) == {True}
    assert await _seen(app, run_id) == 0  # a refused run's marks are dropped too


async def test_an_incomplete_fetch_prunes_nothing(app, own):
    run_id = unique_id("prune-run")
    await _see_all_but(app, run_id, own[:1])
    out = await _prune(run_id, complete=False)
    assert out.refused and out.reason == "fetch did not complete"
    assert (await _published(app, own))[own[0]] is True


async def test_a_courses_run_unpublishes_what_it_missed_and_leaves_news_alone(app, own):
    # A news item of an earlier news run: a courses-only run never sees news.
    news = FeedSource(
        title="MIT PE news", url="https://professional.mit.edu/news", feed_type="news"
    )
    guid = f"{own[0].rsplit('-', 1)[0]}-news"
    item = FeedItem(
        guid=guid, feed_type=FeedType.news, source=news, etl_source=SOURCE, title="News"
    )
    await app.stores.catalog.upsert_feed_items(unique_id("prune-news"), [item])

    all_kinds = unique_id("prune-run")
    await _see_all_but(app, all_kinds, own[:1])
    refused = await _prune(all_kinds)  # every kind: the unseen news item would go as well
    assert refused.refused and "feed items" in (refused.reason or ""), refused.reason

    courses = unique_id("prune-run")
    await _see_all_but(app, courses, own[:1])
    out = await _prune(courses, kinds="courses")
    assert not out.refused and out.unpublished == 1, out
    assert await _published(app, own) == {rid: rid != own[0] for rid in own}
    async with app.stores.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM feed_item WHERE guid = $1", guid) == 1
        pruned = await conn.fetchval(
            "SELECT content_hash FROM learning_resource WHERE readable_id = $1", own[0]
        )
    assert pruned == "pruned"  # a returning course is rewritten by its next upsert


async def test_prune_reports_whether_the_source_index_lags(app, own):
    """rerun-idle-v1 skips the run's index child on `index_pending`: True while the test's rows
    were never indexed, False once the source's index pass has run and nothing changed since."""
    run_id = unique_id("prune-run")
    await _see_all_but(app, run_id, [], feeds=True)
    out = await _prune(run_id)
    assert not out.refused and out.unpublished == 0 and out.index_pending
    indexed = await ActivityEnvironment().run(index_pending, IndexInput(source=SOURCE))
    assert indexed.indexed >= OWN
    await ActivityEnvironment().run(index_content_files, IndexInput(source=SOURCE))
    run_id = unique_id("prune-run")
    await _see_all_but(app, run_id, [], feeds=True)
    again = await _prune(run_id)
    assert not again.refused and again.index_pending is False

"""Zero-downtime reindex on the real node: new backing indexes, writes to both during the build,
a check before one atomic alias swap, the previous index kept for rollback (mit-learn.md §4.5)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from learnflow.db.catalog import CatalogStore
from learnflow.models import Resource
from learnflow.search_doc import to_search_document
from learnflow.stores.keyword import KeywordQuery
from learnflow.stores.opensearch import ReindexError
from learnflow.stores.opensearch_layout import index_settings

pytestmark = pytest.mark.opensearch

TYPES = ["course", "program", "video", "podcast_episode"]


def _doc(
    i: int, description: str = "Fourier transforms and sampling", rtype: str | None = None
) -> dict:
    res = Resource(
        readable_id=f"r-{i}",
        platform="ocw",
        resource_type=rtype or TYPES[i % len(TYPES)],
        etl_source="test",
        title=f"Signals and Systems {i}",
        offered_by="ocw",
        description=description,
    )
    return to_search_document(res, i, datetime(2025, 1, 1, tzinfo=UTC))


async def _batches(docs: list[dict], size: int = 50) -> AsyncIterator[list[dict]]:
    for start in range(0, len(docs), size):
        yield docs[start : start + size]


def _current(status) -> dict[str, str | None]:
    return {s.resource_type: s.current for s in status}


async def test_reindex_swaps_aliases_without_a_failed_search(keyword_index, monkeypatch) -> None:
    ix = keyword_index
    await ix.upsert([_doc(i, "original text") for i in range(1, 101)])
    before = _current(await ix.status())

    # The swap is sent while a search request is outstanding: the spy waits (event, no sleep)
    # until the search loop has a request in flight, then sends update_aliases.
    search_in_flight = asyncio.Event()
    swap_done = asyncio.Event()
    overlapping: list[bool] = []
    original_update = ix.client.indices.update_aliases

    async def swap(**kwargs):
        await asyncio.wait_for(search_in_flight.wait(), timeout=60)
        overlapping.append(search_in_flight.is_set())
        try:
            return await original_update(**kwargs)
        finally:
            swap_done.set()

    monkeypatch.setattr(ix.client.indices, "update_aliases", swap)
    totals: list[int] = []
    versions: list[set[str]] = []
    failures: list[BaseException] = []
    query = KeywordQuery(
        text="signals", search_mode="best_fields", limit=100, facets=["resource_type"]
    )

    async def search_loop() -> None:
        after_swap = 0
        for _ in range(20_000):  # bounded; ends 10 searches after the swap
            search_in_flight.set()
            try:
                res = await ix.search(query)
                totals.append(res.total)
                versions.append({h.document["description"] for h in res.hits})
            except Exception as exc:  # counting every failure is the point
                failures.append(exc)
            finally:
                search_in_flight.clear()
            if swap_done.is_set():
                after_swap += 1
                if after_swap >= 10:
                    return

    loop = asyncio.create_task(search_loop())
    report = await ix.rebuild(
        _batches([_doc(i, "rebuilt text") for i in range(1, 101)]), types=TYPES
    )
    await loop

    assert overlapping == [True]
    assert failures == []
    assert len(totals) > 10 and set(totals) == {100}
    assert versions[0] == {"original text"} and versions[-1] == {"rebuilt text"}
    # every search saw one generation or the other, never a mix of both
    assert all(len(v) == 1 for v in versions)
    after = await ix.status()
    for s in after:
        if s.resource_type in TYPES:
            assert s.current == report.swapped[s.resource_type][1] != before[s.resource_type]
            assert s.previous == before[s.resource_type]
            assert s.reindexing is None
        else:  # types not rebuilt are untouched
            assert s.current == before[s.resource_type]
    assert report.counts["course"] == (25, 25)


async def test_live_writes_during_a_rebuild_reach_both_indexes_and_win(keyword_index) -> None:
    ix = keyword_index
    docs = [_doc(i, rtype="course") for i in range(1, 11)]
    await ix.upsert(docs)
    new = await ix.start_reindex(["course"])
    await ix.upsert([{**docs[2], "title": "Live Update"}])  # catalog changed during the build
    rebuilt = await ix.write_rebuild(docs)  # the rebuild read the catalog before that change
    assert rebuilt.indexed == 9 and rebuilt.conflicts == 1
    await ix.delete([docs[3]["id"]])  # an unpublish during the build reaches the new index too
    report = await ix.finish_reindex(["course"])
    assert report.swapped["course"][1] == new["course"]
    assert report.counts["course"] == (9, 9)
    got = {d["id"]: d["title"] for d in await ix.get([d["id"] for d in docs])}
    assert got[3] == "Live Update" and 4 not in got and len(got) == 9


async def test_the_check_blocks_a_short_rebuild(keyword_index) -> None:
    ix = keyword_index
    await ix.upsert([_doc(i, rtype="video") for i in range(1, 101)])
    before = _current(await ix.status())
    with pytest.raises(ReindexError, match=r"10 documents .* 100 in"):
        await ix.rebuild(_batches([_doc(i, rtype="video") for i in range(1, 11)]), types=["video"])
    after = await ix.status()
    assert _current(after) == before
    assert all(s.reindexing is None for s in after)  # the failed build was deleted
    assert (await ix.search(KeywordQuery(limit=1))).total == 100
    # within the tolerance it swaps
    report = await ix.rebuild(
        _batches([_doc(i, rtype="video") for i in range(1, 97)]), types=["video"], tolerance=0.05
    )
    assert report.counts["video"] == (100, 96)


async def test_the_check_blocks_a_wrong_mapping(keyword_index) -> None:
    ix = keyword_index
    await ix.upsert([_doc(1, rtype="podcast")])
    new = await ix.start_reindex(["podcast"])
    # someone recreated the new index with another mapping
    await ix.client.indices.delete(index=new["podcast"])
    await ix.client.indices.create(
        index=new["podcast"],
        body={
            "settings": index_settings(1, 0, "1s"),
            "mappings": {"properties": {"title": {"type": "keyword"}}},
            "aliases": {ix.reindexing_alias("podcast"): {}},
        },
    )
    await ix.write_rebuild([_doc(1, rtype="podcast")])
    with pytest.raises(ReindexError, match="title: expected text, found keyword"):
        await ix.finish_reindex(["podcast"])
    assert await ix.abort_reindex(["podcast"]) == [new["podcast"]]
    assert (await ix.get([1]))[0]["id"] == 1


async def test_rollback_and_roll_forward(keyword_index) -> None:
    ix = keyword_index
    await ix.upsert([_doc(i, "first", rtype="program") for i in range(1, 6)])
    first = _current(await ix.status())["program"]
    await ix.rebuild(
        _batches([_doc(i, "second", rtype="program") for i in range(1, 6)]), types=["program"]
    )
    second = _current(await ix.status())["program"]

    async def descriptions() -> set[str]:
        res = await ix.search(KeywordQuery(filters={"resource_type": ["program"]}, limit=10))
        return {h.document["description"] for h in res.hits}

    assert await descriptions() == {"second"}
    assert await ix.rollback(["program"]) == {"program": (second, first)}
    assert await descriptions() == {"first"}
    await ix.rollback(["program"])
    assert await descriptions() == {"second"}
    # a third generation keeps one previous index and deletes the older one
    report = await ix.rebuild(
        _batches([_doc(i, "third", rtype="program") for i in range(1, 6)]), types=["program"]
    )
    assert report.deleted == [first]
    assert not await ix.client.indices.exists(index=first)
    with pytest.raises(ReindexError, match="already running"):
        await ix.start_reindex(["program"])
        await ix.start_reindex(["program"])
    await ix.abort_reindex(["program"])


def _learn(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "learn_cli.cli", "index", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


async def test_reindex_from_the_postgres_catalog_with_the_cli(
    keyword_index, catalog_dsn, tmp_path
) -> None:
    from tests.search.corpus import generated_resources

    ix = keyword_index
    resources = generated_resources(24)
    pool = await asyncpg.create_pool(catalog_dsn, min_size=1, max_size=2)
    try:
        catalog = CatalogStore(pool)
        await catalog.upsert_resources("reindex-test", resources)
        async with pool.acquire() as conn:
            course_id = await conn.fetchval(
                "SELECT id FROM learning_resource WHERE resource_type = 'course' ORDER BY id LIMIT 1"
            )
            await conn.execute(
                "INSERT INTO content_file (resource_id, key, title, content, file_extension, content_type)"
                " VALUES ($1, 'notes.pdf', 'Notes', 'thermodynamics of zymurgy', '.pdf', 'file')",
                course_id,
            )
    finally:
        await pool.close()

    env = {
        "DATABASE_URL": catalog_dsn,
        "OPENSEARCH_URL": ix.url,
        "OPENSEARCH_INDEX": ix.prefix,
        "KEYWORD_BACKEND": "opensearch",
        "DATA_DIR": str(tmp_path),
        "QDRANT_URL": "",
        "QDRANT_PATH": "",
    }
    first = _learn(env, "reindex")
    assert first.returncode == 0, first.stderr
    assert await ix.count() == len(resources)
    res = await ix.search(KeywordQuery(text="zymurgy", search_mode="best_fields"))
    assert [h.id for h in res.hits] == [course_id]  # through its content file (has_child)

    status = _learn(env, "status")
    assert status.returncode == 0, status.stderr
    course_line = next(line for line in status.stdout.splitlines() if line.startswith("course "))
    courses = sum(1 for r in resources if r.resource_type == "course")
    assert f"({courses + 1} docs)" in course_line  # the courses + their one content file
    assert "previous" in course_line

    rollback = _learn(env, "rollback", "--type", "course")
    assert rollback.returncode == 0, rollback.stderr
    assert any(line.startswith("course: ") for line in rollback.stdout.splitlines())
    # the first generation had no documents (the indexes were created empty)
    assert (await ix.search(KeywordQuery(filters={"resource_type": ["course"]}))).total == 0
    assert await ix.count() == len(resources) - courses

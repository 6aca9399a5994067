"""The OpenSearch keyword backend's index layout and writes, on the real node.

MIT Learn's layout (reference/mit-learn.md §4.1): a backing index per type behind
`{prefix}_{type}_default`, the global `{prefix}_all_default`, content files as children in the
course and program indexes; bulk requests bounded by bytes; unpublished things deindexed.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest

from learnflow.models import Resource
from learnflow.search_doc import to_search_document
from learnflow.stores.keyword import KeywordQuery
from learnflow.stores.opensearch import bulk_chunks
from learnflow.stores.opensearch_layout import (
    RESOURCE_TYPES,
    content_file_document,
    mapping_differences,
)

pytestmark = pytest.mark.opensearch


def _doc(i: int, rtype: str = "course", **fields) -> dict:
    res = Resource(
        readable_id=f"r-{i}",
        platform="ocw",
        resource_type=rtype,
        etl_source="test",
        title=fields.pop("title", f"Resource {i}"),
        offered_by="ocw",
        description=fields.pop("description", "A resource"),
        **fields,
    )
    return to_search_document(res, i, datetime(2025, 1, 1, tzinfo=UTC))


def _file(i: int, resource_id: int, content: str, **row) -> dict:
    return content_file_document(
        {
            "id": i,
            "resource_id": resource_id,
            "key": f"file-{i}",
            "title": row.pop("title", f"File {i}"),
            "content": content,
            "file_extension": ".pdf",
            "content_type": "file",
            "url": f"https://example.org/{i}",
            "run_id": "run-1",
            "platform": "ocw",
            "offered_by": "ocw",
            "resource_readable_id": f"r-{resource_id}",
            "resource_type": row.pop("resource_type", "course"),
            **row,
        }
    )


async def test_layout_aliases_mappings_and_analyzer(keyword_index, opensearch_client) -> None:
    ix = keyword_index
    aliases = opensearch_client.indices.get_alias(index=f"{ix.prefix}_*")
    by_alias: dict[str, list[str]] = {}
    for index, body in aliases.items():
        for alias in body["aliases"]:
            by_alias.setdefault(alias, []).append(index)
    for rtype in RESOURCE_TYPES:
        (backing,) = by_alias[ix.default_alias(rtype)]
        assert re.fullmatch(rf"{ix.prefix}_{rtype}_[0-9a-f]{{32}}", backing)
        mapping = opensearch_client.indices.get_mapping(index=backing)[backing]["mappings"]
        assert mapping_differences(rtype, mapping) == []
        has_join = "resource_relations" in mapping["properties"]
        assert has_join == (rtype in ("course", "program"))
    assert len(by_alias[ix.global_alias]) == len(RESOURCE_TYPES)
    course = by_alias[ix.default_alias("course")][0]
    mapping = opensearch_client.indices.get_mapping(index=course)[course]["mappings"]
    assert mapping["properties"]["topics"]["type"] == "nested"
    assert mapping["properties"]["runs"]["properties"]["prices"]["scaling_factor"] == 100.0
    assert "resource_age_date" in mapping["_source"]["excludes"]
    tokens = opensearch_client.indices.analyze(
        index=course, body={"analyzer": "custom_english", "text": "the student's ML courses"}
    )["tokens"]
    assert {"student", "ml", "machin", "learn", "cours"} <= {t["token"] for t in tokens}
    # idempotent: a second backend on the same prefix finds the indexes, creates nothing
    from learnflow.stores.opensearch import OpenSearchKeywordIndex

    again = OpenSearchKeywordIndex(ix.url, ix.prefix)
    await again.ensure_indexes()
    await again.close()
    assert opensearch_client.indices.get_alias(index=f"{ix.prefix}_*").keys() == aliases.keys()


async def test_documents_go_to_their_type_index_with_derived_fields(
    keyword_index, opensearch_client
) -> None:
    ix = keyword_index
    await ix.upsert([_doc(1, "course", completeness=0.3), _doc(2, "video")])
    course = opensearch_client.search(
        index=ix.default_alias("course"),
        body={"query": {"match_all": {}}, "docvalue_fields": ["is_incomplete_or_stale"]},
    )["hits"]["hits"]
    assert [h["_id"] for h in course] == ["1"]
    assert course[0]["fields"]["is_incomplete_or_stale"] == [True]
    assert "is_incomplete_or_stale" not in course[0]["_source"]  # MIT Learn's _source excludes
    video = opensearch_client.search(index=ix.default_alias("video"))["hits"]["hits"]
    assert [h["_id"] for h in video] == ["2"]
    assert await ix.count() == 2


async def test_content_files_are_children_scored_by_weight(
    keyword_index, opensearch_client
) -> None:
    ix = keyword_index
    await ix.upsert([_doc(1, "course", title="Unified Engineering"), _doc(2, "course")])
    report = await ix.upsert_content_files(
        [_file(10, 1, "Lecture notes on thermodynamics and fluid mechanics")]
    )
    assert report.indexed == 1
    hit = opensearch_client.get(index=ix.default_alias("course"), id="cf_10", routing="1")
    assert hit["_routing"] == "1" and hit["_source"]["resource_id"] == 1
    assert "content" not in hit["_source"]  # large text indexed, not returned
    assert await ix.count() == 2  # children are not resources
    assert await ix.count_content_files() == 1

    q = KeywordQuery(text="thermodynamics", search_mode="best_fields")
    res = await ix.search(q)
    assert [h.id for h in res.hits] == [1]
    q.content_file_score_weight = 0  # MIT Learn omits the has_child clause at weight 0
    assert (await ix.search(q)).total == 0

    # an unpublished file is removed; deleting the resource removes its files too
    await ix.upsert_content_files([_file(11, 1, "more thermodynamics"), _file(12, 2, "optics")])
    assert await ix.count_content_files() == 3
    await ix.upsert_content_files([{**_file(11, 1, "x"), "published": False}])
    await ix.delete_content_files([12], resource_ids=[2])
    assert await ix.count_content_files() == 1
    await ix.delete([1])
    assert await ix.count_content_files() == 0
    assert [d["id"] for d in await ix.get([1, 2])] == [2]


async def test_unpublished_documents_are_deindexed(keyword_index) -> None:
    ix = keyword_index
    await ix.upsert([_doc(1), _doc(2, "program")])
    await ix.upsert_content_files([_file(5, 1, "some text")])
    assert await ix.count() == 2
    await ix.upsert([{**_doc(1), "published": False}, _doc(3, "podcast")])
    assert sorted(d["id"] for d in await ix.get([1, 2, 3])) == [2, 3]
    assert await ix.count_content_files() == 0


def test_bulk_chunks_are_bounded_by_bytes() -> None:
    actions = [
        ({"index": {"_index": "x", "_id": str(i)}}, {"text": "a" * 1000}) for i in range(100)
    ]
    chunks = list(bulk_chunks(actions, max_bytes=10_000, max_actions=1000))
    assert len(chunks) > 1 and all(len(c) <= 10_000 for c in chunks)
    lines = b"".join(chunks).splitlines()
    assert len(lines) == 200 and json.loads(lines[-2])["index"]["_id"] == "99"
    # one action larger than the bound travels alone
    big = [({"index": {}}, {"t": "b" * 50_000}), ({"index": {}}, {"t": "c"})]
    assert [len(c) > 50_000 for c in bulk_chunks(big, max_bytes=10_000)] == [True, False]


async def test_bulk_requests_respect_the_byte_bound_on_the_node(keyword_index) -> None:
    ix = keyword_index
    ix.max_chunk_bytes = 64 * 1024
    docs = [_doc(i, description="lorem ipsum dolor " * 300) for i in range(1, 121)]
    await ix.upsert(docs)
    report = ix.last_bulk
    assert report.indexed == 120
    assert report.requests >= 6
    assert report.largest_request_bytes <= 64 * 1024
    assert await ix.count() == 120

"""The OpenSearch content-file index (child documents of the course/program indexes, MIT Learn's
layout) against the embedded tantivy content index: the same documents, the same filters
(run, resource, platform, offered_by, file extension, content type, id), facets, sorts, paging."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from activities.search import content_index_document
from learnflow.stores.keyword import KeywordQuery
from learnflow.stores.tantivy_index import TantivyContentFileIndex

pytestmark = [pytest.mark.opensearch]


def _row(i: int, **kw: Any) -> dict[str, Any]:
    row = {
        "id": i,
        "key": f"files/{i}.pdf",
        "resource_id": 100 + i % 3,
        "run_id": f"run-{i % 2}",
        "title": f"Lecture {i}",
        "url": f"https://example.mit.edu/{i}",
        "file_type": "application/pdf",
        "content_type": "file" if i % 4 else "page",
        "file_extension": "pdf" if i % 3 else "HTML",
        "content": f"topic{i} " + ("eigenvalues matrices " if i % 2 else "laplace transform ") * 20,
        "checksum": f"c{i}",
        "data": {"content_tags": ["Lecture Notes"] if i % 2 else []},
        "platform": "ocw" if i % 2 else "mitxonline",
        "offered_by": "ocw" if i % 2 else "mitx",
        "resource_readable_id": f"res-{100 + i % 3}",
        "resource_title": "A course",
        "resource_type": "course" if i % 5 else "program",
        "visible": True,
    }
    row.update(kw)
    return row


ROWS = [_row(i) for i in range(1, 25)]


@pytest.fixture
async def indexes(keyword_index, tmp_path) -> AsyncIterator[tuple[Any, Any]]:
    from learnflow.stores.opensearch import OpenSearchContentFileIndex

    os_index = OpenSearchContentFileIndex(resources=keyword_index)
    tv_index = TantivyContentFileIndex(tmp_path)
    docs = [content_index_document(r) for r in ROWS]
    await os_index.upsert(docs)
    await tv_index.upsert(docs)
    yield tv_index, os_index
    await tv_index.close()


QUERIES = [
    KeywordQuery(limit=100, sort="id"),
    KeywordQuery(filters={"run_id": ["run-1"]}, limit=100, sort="id"),
    KeywordQuery(filters={"resource_id": ["101", "102"]}, limit=100, sort="id"),
    KeywordQuery(filters={"platform": ["OCW"]}, limit=100, sort="id"),
    KeywordQuery(filters={"offered_by": ["mitx"], "file_extension": [".html"]}, limit=100, sort="id"),
    KeywordQuery(filters={"content_type": ["page"]}, limit=100, sort="-id"),
    KeywordQuery(filters={"id": ["3", "4", "999"]}, limit=100, sort="id"),
    KeywordQuery(filters={"run_id": ["RUN-1"]}, limit=100, sort="id"),  # run ids are exact
    KeywordQuery(
        text="eigenvalues", search_mode="best_fields", filters={"file_extension": [".pdf"]}, limit=100
    ),
]  # fmt: skip


@pytest.mark.parametrize("query", QUERIES, ids=[str(i) for i in range(len(QUERIES))])
async def test_filters_agree_with_the_embedded_index(indexes, query) -> None:
    tantivy, opensearch = indexes
    t, o = await tantivy.search(query), await opensearch.search(query)
    assert t.total == o.total
    if query.sort:
        assert [h.id for h in t.hits] == [h.id for h in o.hits]
    else:
        assert {h.id for h in t.hits} == {h.id for h in o.hits}
    # unscored without text (sorted by id); every exact run id of another case finds nothing
    assert [h.score > 0 for h in o.hits] == [bool(query.text)] * len(o.hits)
    assert (o.total == 0) == (query.filters.get("run_id") == ["RUN-1"])


async def test_disjunctive_facets_agree(indexes) -> None:
    tantivy, opensearch = indexes
    facets = ["platform", "offered_by", "file_extension", "content_type", "run_id", "resource_id"]
    query = KeywordQuery(
        filters={"platform": ["ocw"], "file_extension": [".pdf"]}, facets=facets, limit=0
    )
    t, o = await tantivy.search(query), await opensearch.search(query)
    assert t.hits == o.hits == [] and t.total == o.total > 0
    for name in facets:
        assert {k.lower(): c for k, c in t.facets[name]} == {
            k.lower(): c for k, c in o.facets[name]
        }, name
    # platform counts ignore the platform filter (disjunctive): both platforms are counted
    assert {k for k, _ in o.facets["platform"]} == {"ocw", "mitxonline"}


async def test_documents_paging_get_count_delete(indexes, keyword_index) -> None:
    _, opensearch = indexes
    assert await opensearch.count() == len(ROWS)
    res = await opensearch.search(KeywordQuery(text="laplace transform", search_mode="phrase"))
    doc = res.hits[0].document
    assert "content" not in doc and "resource_relations" not in doc  # _source excludes
    assert doc["content_excerpt"].startswith("topic") and doc["file_extension"] in {".pdf", ".html"}
    pages = []
    for offset in range(0, len(ROWS), 5):
        page = await opensearch.search(KeywordQuery(sort="id", offset=offset, limit=5))
        pages += [h.id for h in page.hits]
    assert pages == [r["id"] for r in ROWS]
    got = await opensearch.get([5, 999, 2])
    assert [d["id"] for d in got] == [5, 2]
    await opensearch.delete([1, 2])
    assert await opensearch.count() == len(ROWS) - 2
    assert await keyword_index.count() == 0  # children are not resources
    # a file of a type that holds no content files in MIT Learn's layout is skipped, not lost
    await opensearch.upsert([content_index_document(_row(50, resource_type="video"))])
    assert opensearch.skipped == 1 and await opensearch.count() == len(ROWS) - 2
    assert await opensearch.healthy()

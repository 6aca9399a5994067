"""A real OpenSearch 2.19.6 node supports what MIT Learn's indexes and queries need.

Index settings are the backend's (learnflow/stores/opensearch_layout.py, after MIT Learn's
learning_resources_search/indexing_api.py: custom_english and trigram analyzers, synonym_graph) and constants.py (join field
resource_relations, scaled_float prices, painless scripts, percolator index).
"""

from __future__ import annotations

import pytest
from opensearchpy import OpenSearch

from devstack.harness.opensearch import EXTRA_MODULES, OPENSEARCH_VERSION, OpenSearchNode

# The backend's own analysis settings (MIT Learn's), so this proves the node runs what we ship.
from learnflow.stores.opensearch_layout import ANALYSIS
from learnflow.stores.opensearch_layout import (
    ENGLISH_TEXT_WITH_SUGGEST as ENGLISH_TEXT_FIELD_WITH_SUGGEST,
)

pytestmark = pytest.mark.opensearch


def _create(client: OpenSearch, name: str, properties: dict) -> None:
    client.indices.create(
        index=name,
        body={
            "settings": {
                "index": {"number_of_shards": 1, "number_of_replicas": 0},
                "analysis": ANALYSIS,
            },
            "mappings": {"properties": properties},
        },
    )


def _tokens(client: OpenSearch, index: str, analyzer: str, text: str) -> list[str]:
    res = client.indices.analyze(index=index, body={"analyzer": analyzer, "text": text})
    return [t["token"] for t in res["tokens"]]


def test_node_is_healthy_and_has_the_modules(
    opensearch_node: OpenSearchNode, opensearch_client: OpenSearch
) -> None:
    assert opensearch_client.cluster.health()["status"] in ("yellow", "green")
    info = opensearch_client.info()
    assert info["version"]["number"] == OPENSEARCH_VERSION
    assert info["version"]["distribution"] == "opensearch"
    nodes = opensearch_client.nodes.info(metric="plugins")["nodes"]
    (node,) = nodes.values()
    modules = {m["name"] for m in node["modules"]}
    assert {spec.name for spec in EXTRA_MODULES} <= modules
    assert "transport-netty4" in modules
    # binds loopback only
    assert opensearch_node.url and opensearch_node.url.startswith("http://127.0.0.1:")
    http = opensearch_client.nodes.info(metric="http")["nodes"]
    (http_info,) = http.values()
    assert all(a.startswith("127.0.0.1:") for a in http_info["http"]["bound_address"])


def test_custom_english_maps_ml_to_the_synonym_set(
    opensearch_client: OpenSearch, index_name: str
) -> None:
    _create(opensearch_client, index_name, {"title": ENGLISH_TEXT_FIELD_WITH_SUGGEST})

    tokens = set(_tokens(opensearch_client, index_name, "custom_english", "ML"))
    # "ai, ml, artificial intelligence, machine learning", then stemmed by the english stemmer
    assert {"ml", "ai", "artifici", "intellig", "machin", "learn"} <= tokens

    # possessive stemmer, stop words and the english stemmer
    assert _tokens(opensearch_client, index_name, "custom_english", "MIT's courses") == [
        "mit",
        "cours",
    ]
    assert "the" not in _tokens(opensearch_client, index_name, "custom_english", "the math")

    # trigram analyzer: shingles of 2-3 words
    shingles = _tokens(opensearch_client, index_name, "trigram", "supply chain course")
    assert "supply chain" in shingles and "chain course" in shingles

    # end to end: a search for "ML" finds a "Machine Learning" title via title.english
    opensearch_client.index(
        index=index_name, id="1", body={"title": "Introduction to Machine Learning"}
    )
    opensearch_client.index(index=index_name, id="2", body={"title": "Organic Chemistry"})
    opensearch_client.indices.refresh(index=index_name)
    hits = opensearch_client.search(
        index=index_name, body={"query": {"match": {"title.english": "ML"}}}
    )["hits"]["hits"]
    assert [h["_id"] for h in hits] == ["1"]
    hits = opensearch_client.search(
        index=index_name, body={"query": {"match": {"title.english": "chem"}}}
    )["hits"]["hits"]
    assert [h["_id"] for h in hits] == ["2"]


def test_join_field_parent_child_and_has_child(
    opensearch_client: OpenSearch, index_name: str
) -> None:
    _create(
        opensearch_client,
        index_name,
        {
            "resource_relations": {"type": "join", "relations": {"resource": "content_file"}},
            "id": {"type": "long"},
            "readable_id": {"type": "keyword"},
            "title": ENGLISH_TEXT_FIELD_WITH_SUGGEST,
            "content": {
                "type": "text",
                "fields": {"english": {"type": "text", "analyzer": "custom_english"}},
            },
        },
    )
    for rid, title in ((1, "Unified Engineering"), (2, "Linear Algebra")):
        opensearch_client.index(
            index=index_name,
            id=str(rid),
            body={
                "id": rid,
                "readable_id": f"course-{rid}",
                "title": title,
                "resource_relations": {"name": "resource"},
            },
        )
    # MIT Learn: content files are children with id cf_<id>, routed by the parent's id
    opensearch_client.index(
        index=index_name,
        id="cf_10",
        routing="1",
        body={
            "id": 10,
            "content": "Lecture notes on thermodynamics and fluid mechanics",
            "resource_relations": {"name": "content_file", "parent": "1"},
        },
    )
    opensearch_client.indices.refresh(index=index_name)

    has_child = {
        "query": {
            "has_child": {
                "type": "content_file",
                "query": {"match": {"content.english": "thermodynamic"}},
                "score_mode": "avg",
            }
        }
    }
    hits = opensearch_client.search(index=index_name, body=has_child)["hits"]["hits"]
    assert [h["_id"] for h in hits] == ["1"]

    has_parent = {
        "query": {
            "has_parent": {
                "parent_type": "resource",
                "query": {"term": {"readable_id": "course-1"}},
            }
        }
    }
    hits = opensearch_client.search(index=index_name, body=has_parent)["hits"]["hits"]
    assert [h["_id"] for h in hits] == ["cf_10"]
    assert hits[0]["_routing"] == "1"


def test_scaled_float_prices(opensearch_client: OpenSearch, index_name: str) -> None:
    _create(
        opensearch_client,
        index_name,
        {
            "runs": {
                "type": "nested",
                "properties": {
                    "prices": {"type": "scaled_float", "scaling_factor": 100},
                },
            },
            "resource_prices": {
                "type": "nested",
                "properties": {
                    "amount": {"type": "scaled_float", "scaling_factor": 100},
                    "currency": {"type": "keyword"},
                },
            },
        },
    )
    mapping = opensearch_client.indices.get_mapping(index=index_name)[index_name]["mappings"]
    amount = mapping["properties"]["resource_prices"]["properties"]["amount"]
    assert amount == {"type": "scaled_float", "scaling_factor": 100.0}

    opensearch_client.index(
        index=index_name,
        id="1",
        body={
            "runs": [{"prices": [0, 999.999]}],
            "resource_prices": [{"amount": 19.994, "currency": "USD"}],
        },
    )
    opensearch_client.index(
        index=index_name,
        id="2",
        body={"runs": [{"prices": [2500]}], "resource_prices": [{"amount": 5, "currency": "USD"}]},
    )
    opensearch_client.indices.refresh(index=index_name)

    res = opensearch_client.search(
        index=index_name,
        body={
            "size": 0,
            "aggs": {
                "prices": {
                    "nested": {"path": "resource_prices"},
                    "aggs": {"sum": {"sum": {"field": "resource_prices.amount"}}},
                }
            },
        },
    )
    # 19.994 is stored as round(19.994 * 100) / 100 = 19.99
    assert res["aggregations"]["prices"]["sum"]["value"] == pytest.approx(24.99)

    free_or_cheap = {
        "query": {
            "nested": {
                "path": "runs",
                "query": {"range": {"runs.prices": {"lte": 1000}}},
            }
        }
    }
    hits = opensearch_client.search(index=index_name, body=free_or_cheap)["hits"]["hits"]
    assert [h["_id"] for h in hits] == ["1"]


def test_painless_script_score(opensearch_client: OpenSearch, index_name: str) -> None:
    _create(
        opensearch_client,
        index_name,
        {
            "title": ENGLISH_TEXT_FIELD_WITH_SUGGEST,
            "views": {"type": "integer"},
            "featured_rank": {"type": "float"},
        },
    )
    for i, views in enumerate((10, 1000, 100)):
        opensearch_client.index(
            index=index_name,
            id=str(i),
            body={"title": "Machine Learning", "views": views, "featured_rank": None},
        )
    opensearch_client.indices.refresh(index=index_name)
    body = {
        "query": {
            "script_score": {
                "query": {"match": {"title.english": "ML"}},
                "script": {
                    "lang": "painless",
                    "source": "Math.log10(doc['views'].value + params.offset) * params.factor",
                    "params": {"offset": 0, "factor": 2.0},
                },
            }
        }
    }
    hits = opensearch_client.search(index=index_name, body=body)["hits"]["hits"]
    assert [h["_id"] for h in hits] == ["1", "2", "0"]
    assert [h["_score"] for h in hits] == pytest.approx([6.0, 4.0, 2.0])

    # painless update_by_query, as MIT Learn's clear_featured_rank does
    opensearch_client.update_by_query(
        index=index_name,
        conflicts="proceed",
        refresh=True,
        body={
            "script": {
                "source": "ctx._source.featured_rank = params.newValue",
                "lang": "painless",
                "params": {"newValue": 1.5},
            },
            "query": {"range": {"views": {"gte": 100}}},
        },
    )
    doc = opensearch_client.get(index=index_name, id="1")["_source"]
    assert doc["featured_rank"] == 1.5


def test_percolator_matches_saved_search(opensearch_client: OpenSearch, index_name: str) -> None:
    _create(
        opensearch_client,
        index_name,
        {"query": {"type": "percolator"}, "title": ENGLISH_TEXT_FIELD_WITH_SUGGEST},
    )
    opensearch_client.index(
        index=index_name,
        id="sub-1",
        body={"query": {"match": {"title.english": "artificial intelligence"}}},
        refresh=True,
    )
    res = opensearch_client.search(
        index=index_name,
        body={
            "query": {"percolate": {"field": "query", "document": {"title": "Deep ML for robots"}}}
        },
    )
    assert [h["_id"] for h in res["hits"]["hits"]] == ["sub-1"]


def test_reindex_api_copies_an_index(opensearch_client: OpenSearch, index_name: str) -> None:
    _create(opensearch_client, index_name, {"title": ENGLISH_TEXT_FIELD_WITH_SUGGEST})
    opensearch_client.index(index=index_name, id="1", body={"title": "Econ 101"}, refresh=True)
    target = f"{index_name}_copy"
    _create(opensearch_client, target, {"title": ENGLISH_TEXT_FIELD_WITH_SUGGEST})
    try:
        res = opensearch_client.reindex(
            body={"source": {"index": index_name}, "dest": {"index": target}}, refresh=True
        )
        assert res["created"] == 1
        hits = opensearch_client.search(
            index=target, body={"query": {"match": {"title.english": "economics"}}}
        )["hits"]["hits"]
        assert [h["_id"] for h in hits] == ["1"]
    finally:
        opensearch_client.indices.delete(index=target, ignore_unavailable=True)

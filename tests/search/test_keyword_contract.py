"""One contract for both keyword backends (tantivy embedded, OpenSearch on a real node).

Same corpus, same queries. Where MIT Learn's semantics are defined independently of the engine
(filters, disjunctive facets, sorting, paging, get/count/delete) both engines must equal the
oracle in corpus.py. Where the engines cannot agree (analyzers, default order, missing sort
values, facet-key case), the test asserts the DOCUMENTED DIFFERENCE, so a change in either engine
shows up here:

D1 facet keys: tantivy returns lowercased values; OpenSearch returns them as indexed (MIT Learn
   filters case-insensitively but returns the stored case). Counts agree after case-folding.
D2 synonyms: OpenSearch's custom_english analyzer expands MIT Learn's synonym list (ml <->
   machine learning, chem <-> chemistry, ...); tantivy's en_stem tokenizer has no synonyms.
   Without catalog scoring (the default mode's keyword side) OpenSearch searches the `.stemmed`
   fields, which have none either, and drops the program index boost: both engines agree.
D3 default order (no text, no sort): OpenSearch uses MIT Learn's featured_rank,
   is_learning_material, is_incomplete_or_stale, -created_on; tantivy uses -created_on only.
D4 missing sort values: OpenSearch puts documents without the field last (either direction);
   tantivy sorts them as 0 (first ascending, last descending).
D5 ranking: scores differ (BM25 per field + nested/has_child clauses + program index boost ×3 in
   OpenSearch, one BM25 over three fields in tantivy); tests compare match sets, not order.
D6 topic and department names are keywords in OpenSearch (MIT Learn's mapping: a query matches
   the whole name only); tantivy tokenizes them into its body text.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from learnflow.stores.keyword import KeywordQuery, KeywordResults
from tests.search.corpus import oracle_facets, oracle_ids

ALL = 1000


def ordered(docs: list[dict[str, Any]], field: str, desc: bool = False) -> list[int]:
    """Ids by `field`, ties by id ascending (both engines' tie-break)."""
    by_id = sorted(docs, key=lambda d: d["id"])
    return [d["id"] for d in sorted(by_id, key=lambda d: d[field], reverse=desc)]


def folded(buckets: list[tuple[str, int]]) -> dict[str, int]:
    out: Counter[str] = Counter()
    for key, count in buckets:
        out[key.lower()] += count
    return dict(out)


async def ids_of(index: Any, **kwargs: Any) -> list[int]:
    res = await index.search(KeywordQuery(limit=ALL, **kwargs))
    assert res.total == len(res.hits)
    return [h.id for h in res.hits]


async def test_count_and_get(backend, corpus) -> None:
    assert await backend.count() == len(corpus)
    wanted = [corpus[5]["id"], corpus[0]["id"], 99_999, corpus[-1]["id"]]
    got = await backend.get(wanted)
    assert [d["id"] for d in got] == [corpus[5]["id"], corpus[0]["id"], corpus[-1]["id"]]
    # the document comes back as indexed (OpenSearch's derived fields are not in _source)
    assert got[0] == corpus[5]


FILTER_CASES = [
    {"resource_type": ["course"]},
    {"resource_type": ["COURSE", "Program"]},  # OR within a filter, case-insensitive
    {"platform": ["mitxonline", "xpro"], "free": ["true"]},  # AND across filters
    {"topic": ["mathematics"], "department": ["18"]},
    {"offered_by": ["OCW"], "certification_type": ["completion"], "delivery": ["in_person"]},
    {"level": ["Introductory"]},
    {
        "certification": ["false"],
        "professional": ["false"],
        "resource_type_group": ["learning_material"],
    },
    {"course_feature": ["Lecture Videos"]},
    {"id": ["1", "2", "3", "999999"]},
    {"topic": ["no such topic"]},
]


@pytest.mark.parametrize("filters", FILTER_CASES, ids=lambda f: "+".join(f))
async def test_filters_match_the_oracle(backend, corpus, filters) -> None:
    got = await ids_of(backend, filters=filters, sort="id")
    assert got == sorted(oracle_ids(corpus, filters))


FACETS = [
    "resource_type",
    "platform",
    "offered_by",
    "topic",
    "department",
    "level",
    "certification",
    "certification_type",
    "professional",
    "free",
    "delivery",
    "resource_type_group",
    "course_feature",
]


@pytest.mark.parametrize(
    "filters",
    [{}, {"resource_type": ["course", "program"], "topic": ["Mathematics"]}, {"free": ["false"]}],
    ids=["none", "type+topic", "free"],
)
async def test_disjunctive_facets_match_the_oracle(backend, corpus, filters) -> None:
    res = await backend.search(KeywordQuery(filters=filters, facets=FACETS, limit=0))
    assert res.hits == []  # a facets-only request
    expected = oracle_facets(corpus, filters, FACETS)
    assert {name: folded(b) for name, b in res.facets.items()} == expected
    assert res.total == len(oracle_ids(corpus, filters))


@pytest.mark.parametrize(
    "query",
    [
        KeywordQuery(limit=0),
        KeywordQuery(limit=0, sort="-views", facets=["resource_type"]),
        KeywordQuery(limit=0, text="learning", search_mode="best_fields", facets=["platform"]),
        KeywordQuery(limit=0, offset=5, filters={"resource_type": ["course"]}),
        KeywordQuery(limit=-3, offset=-2),
        KeywordQuery(limit=0, title_prefix="intro"),
    ],
    ids=["bare", "sorted", "text+shaping", "offset+filter", "negative", "prefix"],
)
async def test_limit_zero_counts_without_hits(backend, corpus, query) -> None:
    """page_size 0 / facets-only requests: a count (and facets), no hits, no engine panic."""
    res = await backend.search(query)
    assert res.hits == []
    paged = await backend.search(KeywordQuery(**{**query.__dict__, "limit": ALL, "offset": 0}))
    assert res.total == paged.total
    if not query.filters and not query.text and query.title_prefix is None:
        assert res.total == len(corpus)
    assert set(res.facets) == set(query.facets)
    for name in query.facets:
        assert sum(c for _, c in res.facets[name]) >= 1


@pytest.mark.opensearch
async def test_two_filters_three_facets_same_resources_and_counts(both, corpus) -> None:
    """The issue's acceptance check, on the contract corpus."""
    tantivy, opensearch = both
    query = KeywordQuery(
        filters={"resource_type": ["course", "program"], "free": ["true"]},
        facets=["offered_by", "topic", "certification_type"],
        sort="id",
        limit=ALL,
    )
    t, o = await tantivy.search(query), await opensearch.search(query)
    assert (
        [h.id for h in t.hits]
        == [h.id for h in o.hits]
        == sorted(oracle_ids(corpus, query.filters))
    )
    assert t.total == o.total > 5
    for name in query.facets:
        assert folded(o.facets[name]) == folded(t.facets[name]), name
    # D1: same counts, but OpenSearch keeps the indexed case of the values.
    assert "Mathematics" in dict(o.facets["topic"])
    assert "mathematics" in dict(t.facets["topic"])
    assert "Mathematics" not in dict(t.facets["topic"])
    assert dict(o.facets["topic"])["Mathematics"] == dict(t.facets["topic"])["mathematics"]


@pytest.mark.parametrize("sort", ["id", "-id", "views", "-views", "readable_id", "-new", "new"])
async def test_sort_orders_agree_with_the_documents(backend, corpus, sort) -> None:
    from learnflow.stores.keyword import SORT_FIELDS

    field = SORT_FIELDS[sort.lstrip("-")]
    assert await ids_of(backend, sort=sort) == ordered(corpus, field, sort.startswith("-"))


async def test_paging_concatenates_to_the_whole_list(backend, corpus) -> None:
    whole = await ids_of(backend, sort="readable_id")
    pages: list[int] = []
    for offset in range(0, len(corpus) + 7, 7):
        res = await backend.search(KeywordQuery(sort="readable_id", offset=offset, limit=7))
        assert res.total == len(corpus)
        pages += [h.id for h in res.hits]
    assert pages == whole


@pytest.mark.opensearch
async def test_missing_sort_values_are_placed_differently(both, corpus) -> None:
    """D4: next_start_date is missing on many documents."""
    tantivy, opensearch = both
    dated_ids = ordered([d for d in corpus if d["next_start_date"]], "next_start_date")
    undated = {d["id"] for d in corpus if not d["next_start_date"]}
    assert dated_ids and undated
    o = await ids_of(opensearch, sort="upcoming")
    t = await ids_of(tantivy, sort="upcoming")
    assert o[: len(dated_ids)] == dated_ids and set(o[len(dated_ids) :]) == undated
    assert set(t[: len(undated)]) == undated and t[len(undated) :] == dated_ids
    o_desc = await ids_of(opensearch, sort="-upcoming")
    desc_ids = ordered([d for d in corpus if d["next_start_date"]], "next_start_date", desc=True)
    assert o_desc[: len(dated_ids)] == desc_ids and set(o_desc[len(dated_ids) :]) == undated


@pytest.mark.opensearch
async def test_default_order_differs_as_documented(both, corpus) -> None:
    """D3: the same documents; OpenSearch puts courses/programs before learning materials."""
    tantivy, opensearch = both
    by_created = [d["id"] for d in sorted(corpus, key=lambda d: d["created_on"], reverse=True)]
    assert await ids_of(tantivy) == by_created
    o = await ids_of(opensearch)
    assert sorted(o) == sorted(by_created)
    groups = {d["id"]: d["resource_type_group"] == "learning_material" for d in corpus}
    flags = [groups[i] for i in o]
    assert flags == sorted(flags)  # all False (course/program) first
    assert o != by_created


def _match_set(res: KeywordResults) -> set[int]:
    assert res.total == len(res.hits)
    return {h.id for h in res.hits}


TEXT_CASES = [
    # (query, mode): distinctive words whose matches both analyzers find
    ("thermodynamics", "best_fields"),
    ("differential equations", "phrase"),
    ('"differential equations"', "phrase"),
    ("quantum computing", "phrase"),
    ("negotiation", "most_fields"),
    ("Organizations & Leadership", "phrase"),
]


@pytest.mark.opensearch
@pytest.mark.parametrize(("text", "mode"), TEXT_CASES, ids=[t for t, _ in TEXT_CASES])
async def test_text_queries_find_the_same_resources(both, text, mode) -> None:
    tantivy, opensearch = both
    q = KeywordQuery(text=text, search_mode=mode, limit=ALL)
    t, o = _match_set(await tantivy.search(q)), _match_set(await opensearch.search(q))
    assert t, text
    assert t == o


@pytest.mark.opensearch
async def test_topic_and_department_names_are_keywords_in_opensearch(both, corpus) -> None:
    """D6: MIT Learn maps topics.name and departments.name as keywords: a word of a topic name
    does not match in OpenSearch, while tantivy tokenizes the names into its body text. A word
    of a department name ("computer" in "Electrical Engineering and Computer Science") likewise."""
    tantivy, opensearch = both
    q = KeywordQuery(text="leadership", search_mode="best_fields", limit=ALL)
    t, o = _match_set(await tantivy.search(q)), _match_set(await opensearch.search(q))
    by_topic_only = {
        d["id"]
        for d in corpus
        if any("Leadership" in x["name"] for x in d["topics"])
        and "leadership" not in f"{d['title']} {d['description']} {d['full_description']}".lower()
    }
    assert by_topic_only and o.isdisjoint(by_topic_only)
    assert t == o | by_topic_only
    q = KeywordQuery(text="computer", search_mode="best_fields", limit=ALL)
    o = _match_set(await opensearch.search(q))
    t = _match_set(await tantivy.search(q))
    in_department_name = {
        d["id"] for d in corpus if any(x["department_id"] == "6" for x in d["departments"])
    }
    assert in_department_name <= t
    assert not in_department_name <= o


@pytest.mark.opensearch
async def test_phrase_slop(both, corpus) -> None:
    """'introduction equations' is 'Introduction to Differential Equations' with a gap of 2."""
    target = next(d["id"] for d in corpus if d["title"] == "Introduction to Differential Equations")
    for index in both:
        loose = await index.search(KeywordQuery(text="introduction equations", slop=6, limit=ALL))
        strict = await index.search(KeywordQuery(text="introduction equations", slop=0, limit=ALL))
        assert target in {h.id for h in loose.hits}, type(index).__name__
        assert target not in {h.id for h in strict.hits}, type(index).__name__


@pytest.mark.opensearch
@pytest.mark.parametrize(
    ("text", "finds"),
    [("ML", "Machine Learning for Healthcare"), ("chemistry", "Chem Lab Safety"),
     ("supply chain management", "SCM Analytics"), ("economics", "Econ of Developing Countries")],
)  # fmt: skip
async def test_synonyms_only_in_opensearch(both, corpus, text, finds) -> None:
    """D2: MIT Learn's synonym list is an OpenSearch analyzer feature."""
    tantivy, opensearch = both
    target = next(d["id"] for d in corpus if d["title"] == finds)
    q = KeywordQuery(text=text, search_mode="best_fields", limit=ALL)
    assert target in _match_set(await opensearch.search(q))
    assert target not in _match_set(await tantivy.search(q))


@pytest.mark.opensearch
@pytest.mark.parametrize(
    ("text", "misses", "finds"),
    [("ML", "Machine Learning for Healthcare", None),
     ("chemistry", "Chem Lab Safety", None),
     ("economics", "Econ of Developing Countries", None),
     ("learning machines", None, "Machine Learning for Healthcare")],
)  # fmt: skip
async def test_without_catalog_scoring_no_synonyms_in_either(
    both, corpus, text, misses, finds
) -> None:
    """D2 resolved for the default mode's keyword side: stemmed words match, synonyms do not."""
    for index in both:
        q = KeywordQuery(text=text, search_mode="most_fields", catalog_scoring=False, limit=ALL)
        found = _match_set(await index.search(q))
        titles = {d["id"]: d["title"] for d in corpus}
        if misses:
            target = next(i for i, t in titles.items() if t == misses)
            assert target not in found, type(index).__name__
        if finds:
            target = next(i for i, t in titles.items() if t == finds)
            assert target in found, type(index).__name__


@pytest.mark.opensearch
async def test_text_with_filters_and_facets_agree(both, corpus) -> None:
    tantivy, opensearch = both
    q = KeywordQuery(
        text="fundamentals",
        search_mode="best_fields",
        filters={"resource_type": ["course", "video", "program"]},
        facets=["resource_type", "platform"],
        limit=ALL,
    )
    t, o = await tantivy.search(q), await opensearch.search(q)
    assert _match_set(t) == _match_set(o) != set()
    assert {k: folded(v) for k, v in t.facets.items()} == {
        k: folded(v) for k, v in o.facets.items()
    }


async def test_upsert_replaces_and_delete_removes(backend, corpus) -> None:
    doc = dict(corpus[3])
    try:
        await backend.upsert([{**doc, "title": "Zymurgy for Brewers"}])
        res = await backend.search(KeywordQuery(text="zymurgy", search_mode="best_fields"))
        assert [h.id for h in res.hits] == [doc["id"]]
        assert await backend.count() == len(corpus)
        await backend.delete([doc["id"]])
        assert await backend.get([doc["id"]]) == []
        assert await backend.count() == len(corpus) - 1
    finally:
        await backend.upsert([doc])
    assert (await backend.get([doc["id"]]))[0]["title"] == doc["title"]


@pytest.mark.opensearch
@pytest.mark.parametrize("prefix", ["machine lea", "thermo", "introduction to di"])
async def test_title_prefix_typeahead_agrees(both, corpus, prefix) -> None:
    tantivy, opensearch = both
    q = KeywordQuery(title_prefix=prefix, limit=ALL)
    t, o = _match_set(await tantivy.search(q)), _match_set(await opensearch.search(q))
    assert t == o != set()
    assert all(prefix.split()[0] in d["title"].lower() for d in corpus if d["id"] in o)

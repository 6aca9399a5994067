"""The embedded keyword index: MIT Learn's sorts, score shaping, typeahead, content files."""

from __future__ import annotations

from datetime import datetime

import tantivy

from bench.search import generate
from learnflow.search_doc import chunk_words, to_content_file_document
from learnflow.stores.keyword import SORT_FIELDS, KeywordQuery
from learnflow.stores.tantivy_index import TantivyContentFileIndex, TantivyKeywordIndex


def test_sorts_shaping_and_typeahead(tmp_path):
    idx = TantivyKeywordIndex(tmp_path)
    docs = generate(300)
    idx._upsert_sync(docs)
    for option in SORT_FIELDS:
        for sort in (option, f"-{option}"):
            res = idx.search_sync(KeywordQuery(sort=sort, limit=5))
            assert res.total == 300, sort
    ids = [h.id for h in idx.search_sync(KeywordQuery(sort="-id", limit=5)).hits]
    assert ids == [300, 299, 298, 297, 296]
    plain = KeywordQuery(text="learning", search_mode="best_fields", limit=20)
    unshaped = KeywordQuery(text="learning", search_mode="best_fields", limit=20,
                            yearly_decay_percent=0, max_incompleteness_penalty=0)  # fmt: skip
    a, b = idx.search_sync(plain), idx.search_sync(unshaped)
    assert a.total == b.total > 0
    assert all(x.score <= y.score for x, y in zip(sorted(a.hits, key=lambda h: h.id),
               sorted(b.hits, key=lambda h: h.id), strict=False) if x.id == y.id)  # fmt: skip
    prefix = idx.search_sync(KeywordQuery(title_prefix="machi", limit=50))
    assert prefix.total > 0
    assert all(any(w.lower().startswith("machi") for w in h.document["title"].split())
               for h in prefix.hits)  # fmt: skip
    # reopening with the same schema works (the schema's field order is stable)
    assert TantivyKeywordIndex(tmp_path).index.searcher().num_docs == 300


def test_content_file_index(tmp_path):
    idx = TantivyContentFileIndex(tmp_path)
    row = {"id": 7, "key": "a/b.PDF", "resource_id": 3, "run_id": "r1", "title": "Notes",
           "file_extension": "PDF", "content": "eigenvalues " * 2000, "platform": "ocw",
           "offered_by": "ocw", "resource_readable_id": "18.06", "data": {}}  # fmt: skip
    doc = {**to_content_file_document(row), "_content": row["content"]}
    assert doc["file_extension"] == ".pdf" and len(doc["content_excerpt"]) == 500
    idx._upsert_sync([doc])
    res = idx.search_sync(KeywordQuery(text="eigenvalues", filters={"file_extension": [".pdf"]},
                                       search_mode="best_fields", facets=["platform"]))  # fmt: skip
    assert [h.id for h in res.hits] == [7] and "_content" not in res.hits[0].document
    assert res.facets["platform"] == [("ocw", 1)]
    assert len(chunk_words(row["content"])) == 4  # 2000 words / 512


def test_english_analysis_as_opensearch(tmp_path):
    """Stemming, English stop words and possessives, index and query side alike, and a phrase
    over a stop word matches as indexed (the stop word keeps its position)."""
    idx = TantivyKeywordIndex(tmp_path)
    docs = [
        {"id": 1, "title": "Women's Leadership in Negotiation", "resource_type": "course"},
        {"id": 2, "title": "Newton’s Laws of Motion", "resource_type": "course"},
        {"id": 3, "title": "The History of the Laws", "resource_type": "course"},
    ]
    idx._upsert_sync(docs)

    def ids(text: str, mode: str = "best_fields") -> list[int]:
        return [h.id for h in idx.search_sync(KeywordQuery(text=text, search_mode=mode)).hits]

    assert ids("negotiating women") == [1]  # stems: negotiating ~ negotiation, women's ~ women
    assert ids('"women leadership"') == [1]  # the possessive 's is not a word of its own
    assert ids('"women\'s leadership"') == [1]
    assert ids("newton's law", "phrase") == [2]  # a typographic apostrophe in the title
    assert ids('"laws of motion"') == [2]  # a phrase over a stop word, exact
    assert ids('"laws motion"') == []  # … which still takes its position
    assert ids("the of and") == []  # only stop words: nothing, as OpenSearch's zero_terms_query
    assert set(ids("laws", "phrase")) == {2, 3}
    prefix = idx.search_sync(KeywordQuery(title_prefix="women's lea"))
    assert [h.id for h in prefix.hits] == [1]


def test_best_fields_facets_count_exactly_its_matches(tmp_path):
    """best_fields facets are counted with the cheaper flat disjunction: the counts are still
    those of best_fields' own matches (all of them fetched and counted here), under filters,
    a filter on a faceted field (disjunctive), and a misspelling's near spellings."""
    from collections import Counter

    from learnflow.search_doc import filter_values

    idx = TantivyKeywordIndex(tmp_path)
    idx._upsert_sync(generate(400))
    for text, filters in [
        ("machine learnin", {"free": ["true"]}),
        ("supply chain", {"delivery": ["online"], "platform": ["ocw", "mitxonline"]}),
    ]:
        facets = ["platform", "resource_type", "offered_by"]
        query = KeywordQuery(text=text, filters=filters, facets=facets, search_mode="best_fields",
                             fuzzy=True, limit=10)  # fmt: skip
        res = idx.search_sync(query)
        assert res.total > 10
        for name in facets:
            scoped = {k: v for k, v in filters.items() if k != name}
            every = KeywordQuery(text=text, filters=scoped, search_mode="best_fields",
                                 fuzzy=True, limit=400, yearly_decay_percent=0,
                                 max_incompleteness_penalty=0)  # fmt: skip
            hits = idx.search_sync(every).hits
            counted = Counter(v for h in hits for v in filter_values(h.document).get(name, []))
            assert counted and dict(res.facets[name]) == dict(counted), (text, name)


def test_phrase_facets_count_the_phrase_matches_within_the_slop(tmp_path):
    """tantivy's unscored phrase matching (what aggregations run) checks the slop per pair of
    words, not as one budget over the phrase as its scored search does: a three-word phrase's
    facets counted documents the phrase does not match (100k bench corpus, slop 6: 6,870 by
    aggregation, 3,750 matches). Facets count exactly the matches, as `total` does."""
    idx = TantivyKeywordIndex(tmp_path)
    docs = [
        {"id": 1, "title": "alpha beta gamma", "resource_type": "course"},
        {"id": 2, "title": "alpha x beta x gamma", "resource_type": "video"},  # 2 moves > slop 1
        {"id": 3, "title": "alpha x beta gamma", "resource_type": "podcast"},  # 1 move
        {"id": 4, "title": "gamma and more", "resource_type": "course"},
    ]
    idx._upsert_sync(docs)
    query = KeywordQuery(text="alpha beta gamma", search_mode="phrase", slop=1,
                         facets=["resource_type"], filters={"resource_type": ["course", "podcast", "video"]})  # fmt: skip
    res = idx.search_sync(query)
    assert sorted(h.id for h in res.hits) == [1, 3]
    assert res.total == 2
    assert dict(res.facets["resource_type"]) == {"course": 1, "podcast": 1}
    unfiltered = idx.search_sync(KeywordQuery(text="alpha beta gamma", search_mode="phrase",
                                              slop=1, facets=["resource_type"]))  # fmt: skip
    assert unfiltered.total == 2
    assert dict(unfiltered.facets["resource_type"]) == {"course": 1, "podcast": 1}
    by_id = idx.search_sync(KeywordQuery(text="alpha beta gamma", search_mode="phrase", slop=1,
                                            sort="-id", facets=["resource_type"]))  # fmt: skip
    assert [h.id for h in by_id.hits] == [3, 1] and by_id.total == 2
    assert dict(by_id.facets["resource_type"]) == {"course": 1, "podcast": 1}


def test_upsert_replaces_by_id_and_the_last_of_a_batch_wins(tmp_path):
    """A page's documents replace what the index holds under their ids (one delete of the
    batch's ids before its adds), a retried page leaves one document per id, and a batch that
    names an id twice keeps the later one, as a delete before each add did."""
    idx = TantivyKeywordIndex(tmp_path)

    def doc(i: int, title: str) -> dict:
        return {"id": i, "title": title, "resource_type": "course"}

    idx._upsert_sync([doc(1, "alpha one"), doc(2, "alpha two"), doc(3, "alpha three")])
    idx._upsert_sync([doc(2, "beta two"), doc(3, "beta three"), doc(4, "beta four")])
    idx._upsert_sync([doc(2, "beta two"), doc(3, "beta three"), doc(4, "beta four")])  # a retry
    idx._upsert_sync([doc(5, "gamma first"), doc(6, "gamma six"), doc(5, "gamma second")])

    def titles(text: str) -> dict[int, str]:
        res = idx.search_sync(KeywordQuery(text=text, search_mode="best_fields", limit=50))
        assert res.total == len(res.hits)
        return {h.id: h.document["title"] for h in res.hits}

    assert idx.index.searcher().num_docs == 6
    assert titles("alpha") == {1: "alpha one"}
    assert titles("beta") == {2: "beta two", 3: "beta three", 4: "beta four"}
    assert titles("gamma") == {5: "gamma second", 6: "gamma six"}
    assert [d["title"] for d in idx._get_sync([5])] == ["gamma second"]
    facets = idx.search_sync(KeywordQuery(facets=["resource_type"])).facets
    assert facets["resource_type"] == [("course", 6)]


def test_dates_sort_and_shape_by_epoch_parsed_once_per_text(tmp_path):
    """A date text's epoch is parsed once and reused (a catalog's dates repeat); the cache is
    bounded, and what it returns is what parsing returns."""
    from learnflow.stores import tantivy_index

    tantivy_index._epoch_of_text.cache_clear()
    texts = ["2026-03-01T00:00:00+00:00", "2025-01-01T12:00:00+00:00", "2024-05-05T05:05:05Z"]
    parsed = [int(datetime.fromisoformat(t).timestamp()) for t in texts]
    assert [tantivy_index._epoch(t) for t in texts[:2] * 2] == parsed[:2] * 2
    info = tantivy_index._epoch_of_text.cache_info()
    assert (info.misses, info.hits) == (2, 2)  # each text parsed once
    assert tantivy_index._epoch(None) == 0 and tantivy_index._epoch(7) == 7
    assert tantivy_index._epoch(texts[2]) == parsed[2]
    assert tantivy_index._epoch_of_text.cache_info().maxsize is not None  # bounded

    idx = TantivyKeywordIndex(tmp_path)
    idx._upsert_sync([
        {"id": 1, "title": "x", "last_modified": texts[0], "created_on": texts[1]},
        {"id": 2, "title": "x", "last_modified": texts[1], "created_on": texts[1]},
        {"id": 3, "title": "x", "created_on": texts[0]},
    ])  # fmt: skip
    ids = [h.id for h in idx.search_sync(KeywordQuery(sort="-last_modified")).hits]
    assert ids == [1, 2, 3]
    searcher = idx.index.searcher()
    addresses = [a for _s, a in searcher.search(tantivy.Query.all_query(), limit=3).hits]
    ids = searcher.fast_field_values("id", addresses)
    ages = dict(zip(ids, searcher.fast_field_values("shape_age", addresses), strict=True))
    # the shaping age: the next start, else the last change, else the creation
    assert ages == {1: parsed[0], 2: parsed[1], 3: parsed[0]}


def test_filters_select_and_never_score():
    """As MIT Learn's post_filter: a filtered document scores what it scores unfiltered."""
    idx = TantivyKeywordIndex()
    idx._upsert_sync(generate(300))
    text = dict(text="machine learning", search_mode="best_fields", limit=300,
                yearly_decay_percent=0, max_incompleteness_penalty=0)  # fmt: skip
    unfiltered = {h.id: h.score for h in idx.search_sync(KeywordQuery(**text)).hits}
    filtered = idx.search_sync(
        KeywordQuery(filters={"free": ["true"], "delivery": ["online"]}, **text)
    )
    assert 0 < filtered.total < len(unfiltered)
    assert all(h.score == unfiltered[h.id] for h in filtered.hits)

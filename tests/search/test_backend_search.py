"""MIT Learn's query semantics in the OpenSearch backend, on the real node (§4.3): score shaping
by completeness and staleness, min_score, a quoted text as an exact phrase, the request options."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from learnflow.models import Resource
from learnflow.search_doc import to_search_document
from learnflow.stores.keyword import KeywordQuery
from learnflow.stores.opensearch_mapping import search_body

pytestmark = pytest.mark.opensearch


def _doc(i: int, rtype: str = "document", **fields) -> dict:
    res = Resource(
        readable_id=f"r-{i}",
        platform="ocw",
        resource_type=rtype,
        etl_source="test",
        title=fields.pop("title", "Signals and Systems"),
        offered_by="ocw",
        description=fields.pop("description", "Fourier transforms and sampling"),
        **fields,
    )
    return to_search_document(res, i, datetime(2025, 1, 1, tzinfo=UTC))


async def test_completeness_penalty_shapes_the_score(keyword_index) -> None:
    ix = keyword_index
    await ix.upsert([_doc(1, completeness=0.2), _doc(2, completeness=1.0)])
    q = KeywordQuery(text="signals systems", search_mode="best_fields", yearly_decay_percent=0)
    res = await ix.search(q)
    assert [h.id for h in res.hits] == [2, 1]
    # completeness·p + (1-p), p = 0.9: 0.2 → 0.28 of the complete document's score
    assert res.hits[1].score / res.hits[0].score == pytest.approx(0.28, rel=1e-3)
    q.max_incompleteness_penalty = 0
    res = await ix.search(q)
    assert res.hits[0].score == pytest.approx(res.hits[1].score)


async def test_yearly_staleness_decay_shapes_the_score(keyword_index) -> None:
    ix = keyword_index
    now = datetime.now(UTC)
    old = now.replace(year=now.year - 8)
    await ix.upsert([_doc(1, last_modified=old), _doc(2, last_modified=now)])
    q = KeywordQuery(
        text="signals systems", search_mode="best_fields", max_incompleteness_penalty=0
    )
    res = await ix.search(q)
    assert [h.id for h in res.hits] == [2, 1]
    # decayDateLinear, 2.5 %/year: about 8 years → 0.8
    assert res.hits[1].score / res.hits[0].score == pytest.approx(0.8, abs=0.01)
    q.yearly_decay_percent = 0
    res = await ix.search(q)
    assert res.hits[0].score == pytest.approx(res.hits[1].score)


async def test_min_score_filters_and_counts(keyword_index) -> None:
    ix = keyword_index
    await ix.upsert([_doc(1), _doc(2, title="Unrelated", description="Signals")])
    q = KeywordQuery(text="signals", search_mode="best_fields")
    scores = {h.id: h.score for h in (await ix.search(q)).hits}
    assert set(scores) == {1, 2}
    # MIT Learn's min_score applies to the unshaped text score and changes the total
    raw = (await ix.search(KeywordQuery(**{**q.__dict__, "max_incompleteness_penalty": 0,
                                           "yearly_decay_percent": 0}))).hits  # fmt: skip
    cut = (raw[0].score + raw[1].score) / 2
    res = await ix.search(KeywordQuery(**{**q.__dict__, "min_score": cut}))
    assert res.total == 1 and [h.id for h in res.hits] == [raw[0].id]
    assert (await ix.search(KeywordQuery(**{**q.__dict__, "min_score": 1000}))).total == 0


async def test_quoted_text_is_an_exact_phrase_and_cannot_inject_syntax(keyword_index) -> None:
    ix = keyword_index
    await ix.upsert([_doc(1, title="Signals and Systems"), _doc(2, title="Systems and Signals")])
    res = await ix.search(KeywordQuery(text='"signals and systems"'))
    assert [h.id for h in res.hits] == [1]
    # query syntax inside the quotes is text, not an error
    res = await ix.search(KeywordQuery(text='"signals" OR title:(x AND "y'))
    assert res.total == 0


async def test_title_prefix_typeahead(keyword_index) -> None:
    ix = keyword_index
    await ix.upsert([_doc(1, title="Signals and Systems"), _doc(2, title="Signal Processing")])
    res = await ix.search(KeywordQuery(title_prefix="signals and sy"))
    assert [h.id for h in res.hits] == [1]
    res = await ix.search(KeywordQuery(title_prefix="sign"))
    assert {h.id for h in res.hits} == {1, 2}


async def test_program_index_boost_and_dfs(keyword_index, monkeypatch) -> None:
    ix = keyword_index
    await ix.upsert([_doc(1, "course"), _doc(2, "program")])
    sent = []
    original = ix.client.search

    async def spy(**kwargs):
        sent.append(kwargs)
        return await original(**kwargs)

    monkeypatch.setattr(ix.client, "search", spy)
    q = KeywordQuery(text="signals systems", search_mode="best_fields", yearly_decay_percent=0,
                     max_incompleteness_penalty=0)  # fmt: skip
    res = await ix.search(q)
    # same text, same statistics (dfs): the program wins by MIT Learn's ×3 index boost
    assert [h.id for h in res.hits] == [2, 1]
    assert res.hits[0].score == pytest.approx(3 * res.hits[1].score)
    assert sent[-1]["params"] == {"search_type": "dfs_query_then_fetch"}
    await ix.search(KeywordQuery(text="signals", sort="id"))
    assert sent[-1]["params"] == {}


def test_search_body_structure() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    q = KeywordQuery(
        text="ml",
        filters={"topic": ["Math"], "free": ["true"]},
        facets=["topic", "platform"],
        content_file_score_weight=0.5,
        min_score=5,
    )
    body = search_body(q, now=now, program_alias="p_program_default")
    # filters are a post_filter; each facet is filtered by the OTHER filters only
    assert body["post_filter"]["bool"]["filter"][1]["nested"]["path"] == "topics"
    topic_filter = body["aggs"]["topic"]["filter"]["bool"]["filter"]
    assert len(topic_filter) == 1 and "terms" in topic_filter[0]
    platform_filter = body["aggs"]["platform"]["filter"]["bool"]["filter"]
    assert len(platform_filter) == 2
    assert "reverse_nested" in str(body["aggs"]["topic"]["aggs"])
    shaped = body["query"]["bool"]["must"][0]["function_score"]
    text = shaped["query"]["bool"]
    assert text["filter"][0]["function_score"]["min_score"] == 5.0
    has_child = next(c for c in text["should"] if "has_child" in c)["has_child"]
    assert has_child["query"]["multi_match"]["fields"][0] == "content.english^0.5"
    assert text["should"][0]["multi_match"]["type"] == "phrase"
    assert text["should"][0]["multi_match"]["slop"] == 6
    assert body["indices_boost"] == [{"p_program_default": 3.0}]
    # the default mode's keyword side: MIT Learn's fields as their `.stemmed` (synonym-free)
    # twins everywhere, and no program index boost
    plain = search_body(
        replace(q, catalog_scoring=False), now=now, program_alias="p_program_default"
    )
    assert "indices_boost" not in plain
    assert ".english" not in json.dumps(plain["query"])
    fields = plain["query"]["bool"]["must"][0]["function_score"]["query"]["bool"]["should"][0]
    assert fields["multi_match"]["fields"][:2] == ["title.stemmed^3", "description.stemmed^2"]
    q.content_file_score_weight = 0
    body = search_body(q, now=now)
    assert "has_child" not in str(body)
    assert "sort" not in body
    assert search_body(KeywordQuery(), now=now)["sort"][0] == {
        "featured_rank": {"order": "asc", "missing": "_last"}
    }

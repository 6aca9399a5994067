"""The relevance bench's judged set is well formed against the corpus it is judged on: enough
queries, graded 0/1/2, every judged document in the corpus, every query with a relevant one."""

from __future__ import annotations

from collections import Counter

from bench.relevance.__main__ import JUDGEMENTS, QUERIES, load_judgements, read_jsonl
from bench.relevance.corpus import corpus_resources


def test_queries_and_judgements_fit_the_corpus():
    queries = read_jsonl(QUERIES)
    ids = [q["id"] for q in queries]
    assert len(ids) >= 30 and len(set(ids)) == len(ids)
    kinds = Counter(q["kind"] for q in queries)
    assert {"question", "topic", "stem", "misspelling", "name", "apostrophe"} <= set(kinds)

    resources, per_source = corpus_resources()
    assert len(per_source) >= 8  # the recorded payloads of many sources, not one
    corpus = {f"{r.platform}/{r.readable_id}" for r in resources}
    assert len(corpus) == len(resources)  # platform/readable_id names one document

    rows = read_jsonl(JUDGEMENTS)
    assert {r["grade"] for r in rows} <= {0, 1, 2}
    assert len({(r["query"], r["platform"], r["readable_id"]) for r in rows}) == len(rows)
    judged = load_judgements()
    assert set(judged) == set(ids)
    for qid, grades in judged.items():
        assert set(grades) <= corpus, qid
        assert max(grades.values()) == 2, f"{qid} has no highly relevant document"

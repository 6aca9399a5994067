"""The relevance bench's metrics on rankings worked out by hand."""

from __future__ import annotations

import math

import pytest

from bench.relevance.metrics import judged_share, ndcg_at, recall_at, reciprocal_rank, summarise

JUDGED = {"a": 2, "b": 1, "c": 0}


def test_ndcg_is_one_for_the_ideal_order_and_discounts_a_late_hit():
    assert ndcg_at(["a", "b", "c"], JUDGED) == 1.0
    ideal = 3 + 1 / math.log2(3)
    assert ndcg_at(["c", "a"], JUDGED) == pytest.approx((3 / math.log2(3)) / ideal)
    assert ndcg_at([], JUDGED) == 0.0


def test_recall_mrr_and_judged_share():
    assert recall_at(["x", "a"], JUDGED, k=20) == 0.5
    assert recall_at(["x"] * 20 + ["a"], JUDGED, k=20) == 0.0
    assert reciprocal_rank(["c", "x", "b"], JUDGED) == pytest.approx(1 / 3)
    assert judged_share(["a", "x", "c", "y"], JUDGED) == 0.5


def test_summary_counts_empty_answers_and_skips_queries_without_relevant_documents():
    judgements = {"q1": JUDGED, "q2": {"a": 2}, "q3": {"z": 0}}
    out = summarise({"q1": ["a", "b"], "q2": []}, judgements, errors={"q2": "UNAVAILABLE"})
    assert out["queries"] == 2
    assert out["empty_answers"] == 1 and out["errors"] == 1 and out["empty_queries"] == ["q2"]
    assert out["ndcg_at_10"] == 0.5 and out["mrr"] == 0.5 and out["recall_at_20"] == 0.5

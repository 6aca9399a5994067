"""The fusion grid of bench.relevance: its override reaches the service's hybrid request
building and is undone after, and its analysis (margins, leave-half-out) on hand-made rankings."""

from __future__ import annotations

import pytest

from bench.relevance.fusion_grid import Setting, analyse, current, grid, override
from search_service import query as rq
from search_service.hybrid import DEFAULT_FUSION
from search_service.pb import search_pb2 as pb


def test_grid_spans_methods_weights_modes_and_fuzzy_and_holds_the_current_default():
    settings = grid()
    assert len(settings) == 2 * 5 * 2 * 2 == len({s.name for s in settings})
    assert current() in settings


def test_override_changes_the_hybrid_request_and_restores_the_service():
    req = pb.SearchResourcesRequest(query="negotiating skills")
    with override(Setting("rrf", 0.3, "best_fields", fuzzy=False)):
        fusion = rq.fusion(req)
        assert (fusion.method, fusion.keyword_weight, fusion.vector_weight) == ("rrf", 0.3, 0.7)
        kq = rq.hybrid_keyword_query(req, {}, 30)
        assert (kq.search_mode, kq.fuzzy) == ("best_fields", False)
    assert rq.fusion(req) == DEFAULT_FUSION
    kq = rq.hybrid_keyword_query(req, {}, 30)
    assert (kq.search_mode, kq.fuzzy) == (DEFAULT_FUSION.keyword_mode, True)


def test_analysis_scores_every_setting_and_checks_on_held_out_halves():
    judgements = {f"q{i}": {"good": 2, "bad": 0} for i in range(4)}
    names = [s.name for s in grid()]
    winner = "rrf/kw0.3/best_fields/exact"
    rankings = {
        n: {q: (["good"] if n == winner else ["bad", "good"]) for q in judgements} for n in names
    }
    grids = {"tantivy": {"rankings": rankings, "errors": {n: {} for n in names}}}
    out = analyse(grids, {"tantivy": 0.5}, judgements)
    assert out["best_by_mean"] == winner
    row = out["settings"][winner]["tantivy"]
    assert row["ndcg_at_10"] == 1.0 and row["margin"] == 0.5
    other = out["settings"][out["current"]]["tantivy"]["ndcg_at_10"]
    assert other == pytest.approx(1 / 1.585, abs=1e-3)
    for check in out["leave_half_out"]:
        assert check["chosen"] == winner
        assert check["chosen_held_out_mean_ndcg"] == 1.0
        assert check["current_held_out_mean_ndcg"] == pytest.approx(other, abs=1e-4)

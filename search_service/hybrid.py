"""Hybrid search: a keyword (BM25) ranking and a vector ranking fused into one.

Fusions: weighted reciprocal rank fusion (`rrf`), and MIT Learn's OpenSearch hybrid pipeline
(`minmax`: each side's scores min-max normalised to [0, 1] over its candidates, then a weighted
arithmetic mean; a document one side did not return counts 0 there; `l2` normalises by the
scores' L2 norm instead, OpenSearch's other technique). `DEFAULT_FUSION` is the one
tuned on the judged set (`python -m bench.relevance`); the figures are in the README.

`hybrid_search` runs both sides at once and answers with the side that is up when the other
fails (the response says which did not answer); only both down is an error.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from learnflow.stores.keyword import SORT_FIELDS

K = TypeVar("K", bound=Hashable)
RRF_K = 60

# (key, score, document), best first
Ranked = list[tuple[Any, float, dict]]


# Candidates each side gives hybrid mode: a fixed window (at least the page size), not MIT
# Learn's 3x the page window, so every page of one answer comes from the same fused ranking and
# pages never overlap or skip. 30 ranks as well as 100 on bench.relevance at a third of the
# vector store's time. A sort (vector or hybrid) orders a wider window.
CANDIDATES = 30
SORT_CANDIDATES = 100


@dataclass(frozen=True)
class Fusion:
    method: str = "minmax"  # "minmax" | "l2" (normalised scores) | "rrf" (ranks)
    keyword_weight: float = 0.5
    vector_weight: float = 0.5
    keyword_mode: str = "best_fields"  # the keyword side's search mode
    rrf_k: int = RRF_K


# Chosen on the judged set (bench.relevance): min-max normalisation with equal weights, as MIT
# Learn's OpenSearch hybrid pipeline normalises, and most_fields with fuzzy words on the keyword
# side. Re-checked for the minilm-blend encoder with `--fusion-grid` on both backends (README,
# "Relevance"): the best mean, keyword weight 0.4, is 0.0001 above this one (tantivy -0.003,
# OpenSearch +0.003) and no weighting reaches hybrid >= vector + 0.03 on OpenSearch; leave-half-out
# keeps equal weights (a weight chosen on one half scores below them on the other), so they stay.
# OpenSearch's shortfall was its keyword query, not the fusion: the default's keyword side there
# now drops MIT Learn's program boost and synonyms (KeywordQuery.catalog_scoring).
DEFAULT_FUSION = Fusion(
    method="minmax", keyword_weight=0.5, vector_weight=0.5, keyword_mode="most_fields"
)


def rrf(
    rankings: Sequence[Sequence[tuple[Any, dict]]], weights: Sequence[float], k: int = RRF_K
) -> Ranked:
    """Reciprocal rank fusion: score(d) = Σ w_i / (k + rank_i(d)); ties broken by key."""
    scores: dict[Any, float] = {}
    docs: dict[Any, dict] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, (key, doc) in enumerate(ranking, start=1):
            scores[key] = scores.get(key, 0.0) + weight / (k + rank)
            docs.setdefault(key, doc)
    ordered = sorted(scores.items(), key=lambda kv: (-kv[1], str(kv[0])))
    return [(key, s, docs[key]) for key, s in ordered]


def _normalise(ranking: Sequence[tuple[Any, float, dict]], how: str) -> dict[Any, float]:
    """OpenSearch's normalisation techniques: min_max to [0, 1], or l2 (score / ‖scores‖)."""
    if not ranking:
        return {}
    scores = [s for _k, s, _d in ranking]
    if how == "l2":
        norm = math.sqrt(sum(s * s for s in scores)) or 1.0
        return {key: s / norm for key, s, _d in ranking}
    lo, hi = min(scores), max(scores)
    if hi <= lo:  # one candidate, or all tied: each is as good as the best
        return {key: 1.0 for key, _s, _d in ranking}
    return {key: (s - lo) / (hi - lo) for key, s, _d in ranking}


def normalised(
    rankings: Sequence[Sequence[tuple[Any, float, dict]]],
    weights: Sequence[float],
    how: str = "minmax",
) -> Ranked:
    """OpenSearch's normalization-processor: each side normalised (`minmax` or `l2`), then the
    weighted arithmetic mean (weights normalised to sum 1); a document a side did not return
    counts 0 there; ties broken by key."""
    total = sum(weights) or 1.0
    scores: dict[Any, float] = {}
    docs: dict[Any, dict] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for key, norm in _normalise(ranking, how).items():
            scores[key] = scores.get(key, 0.0) + (weight / total) * norm
        for key, _s, doc in ranking:
            docs.setdefault(key, doc)
    ordered = sorted(scores.items(), key=lambda kv: (-kv[1], str(kv[0])))
    return [(key, s, docs[key]) for key, s in ordered]


def fuse(
    keyword: Sequence[tuple[Any, float, dict]],
    vector: Sequence[tuple[Any, float, dict]],
    fusion: Fusion = DEFAULT_FUSION,
) -> Ranked:
    weights = [fusion.keyword_weight, fusion.vector_weight]
    if fusion.method == "rrf":
        return rrf(
            [[(k, d) for k, _s, d in keyword], [(k, d) for k, _s, d in vector]],
            weights,
            fusion.rrf_k,
        )
    return normalised([keyword, vector], weights, fusion.method)


def sort_ranked(ranking: Ranked, sort: str) -> Ranked:
    """Candidates in a SORT_FIELDS order ("-" descending), missing values last, ties by id."""
    key = SORT_FIELDS[sort.lstrip("-")]
    by_id = sorted(ranking, key=lambda t: int(t[2].get("id") or 0))
    present = [t for t in by_id if t[2].get(key) not in (None, "")]
    missing = [t for t in by_id if t[2].get(key) in (None, "")]
    # stable: equal values keep id order in either direction
    present.sort(key=lambda t: t[2][key], reverse=sort.startswith("-"))
    return present + missing


@dataclass
class SideResult(Generic[K]):
    """One side's answer: its ranking (key, score, document), total matches and facets."""

    ranking: list[tuple[K, float, dict]]
    total: int
    facets: dict[str, list[tuple[str, int]]] = field(default_factory=dict)


@dataclass
class HybridResult:
    ranking: Ranked
    total: int
    facets: dict[str, list[tuple[str, int]]]
    unavailable: list[str]  # the sides that did not answer ("keyword", "vector")


async def hybrid_search(
    keyword: Callable[[], Awaitable[SideResult]],
    vector: Callable[[], Awaitable[SideResult]],
    fusion: Fusion,
    is_down: Callable[[BaseException], bool],
    keyword_matches_only: bool = False,
) -> HybridResult:
    """Both sides at once, fused. A side whose failure `is_down` says is an outage is left out
    and named; any other failure (bad request, the client's deadline) is raised.
    `keyword_matches_only` (a quoted phrase): the keyword side decides which documents match,
    the vector side only helps rank them."""
    results = await asyncio.gather(keyword(), vector(), return_exceptions=True)
    kres, vres = results
    for res in results:
        if isinstance(res, BaseException) and not is_down(res):
            raise res
    if isinstance(kres, BaseException) and isinstance(vres, BaseException):
        raise kres
    if isinstance(vres, BaseException):
        assert isinstance(kres, SideResult)
        return HybridResult(kres.ranking, kres.total, kres.facets, ["vector"])
    if isinstance(kres, BaseException):
        return HybridResult(vres.ranking, vres.total, vres.facets, ["keyword"])
    fused = fuse(kres.ranking, vres.ranking, fusion)
    if keyword_matches_only:
        matched = {key for key, _s, _d in kres.ranking}
        fused = [t for t in fused if t[0] in matched]
    # Facets count the keyword matches (the vector side ranks every document); the total is
    # what can be paged through.
    return HybridResult(fused, len(fused), kres.facets, [])

"""Ranking metrics over graded judgements (0 not relevant, 1 partly, 2 highly relevant).

A ranking is a list of document ids (`platform/readable_id`); judgements map a query's document
ids to grades. A document missing from the judgements counts as 0 here; the runner reports how
much of each top 10 was judged, so an unjudged share never hides.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence


def dcg(grades: Sequence[int]) -> float:
    """Exponential gain (2^grade - 1), log2 discount: a highly relevant hit outweighs two partial."""
    return sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(grades))


def ndcg_at(ranking: Sequence[str], judged: Mapping[str, int], k: int = 10) -> float:
    ideal = dcg(sorted(judged.values(), reverse=True)[:k])
    if ideal == 0:
        return 0.0
    return dcg([judged.get(d, 0) for d in ranking[:k]]) / ideal


def recall_at(ranking: Sequence[str], judged: Mapping[str, int], k: int = 20) -> float:
    relevant = {d for d, g in judged.items() if g > 0}
    if not relevant:
        return 0.0
    return len(relevant & set(ranking[:k])) / len(relevant)


def reciprocal_rank(ranking: Sequence[str], judged: Mapping[str, int]) -> float:
    for i, d in enumerate(ranking):
        if judged.get(d, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def judged_share(ranking: Sequence[str], judged: Mapping[str, int], k: int = 10) -> float | None:
    top = ranking[:k]
    if not top:
        return None
    return sum(1 for d in top if d in judged) / len(top)


def summarise(
    rankings: Mapping[str, Sequence[str]],
    judgements: Mapping[str, Mapping[str, int]],
    errors: Mapping[str, str] | None = None,
) -> dict:
    """One mode's figures over every query with at least one relevant document."""
    errors = errors or {}
    scored = [q for q, j in judgements.items() if any(g > 0 for g in j.values())]
    n = len(scored) or 1  # no judged query: every mean is 0
    top10 = [d for q in scored for d in rankings.get(q, [])[:10]]
    judged10 = sum(1 for q in scored for d in rankings.get(q, [])[:10] if d in judgements[q])
    empty = [q for q in scored if not rankings.get(q)]
    return {
        "queries": len(scored),
        "ndcg_at_10": round(
            sum(ndcg_at(rankings.get(q, []), judgements[q]) for q in scored) / n, 4
        ),
        "recall_at_20": round(
            sum(recall_at(rankings.get(q, []), judgements[q]) for q in scored) / n, 4
        ),
        "mrr": round(
            sum(reciprocal_rank(rankings.get(q, []), judgements[q]) for q in scored) / n, 4
        ),
        "empty_answers": len(empty),
        "errors": len([q for q in scored if q in errors]),
        "judged_share_top10": round(judged10 / len(top10), 4) if top10 else None,
        "empty_queries": sorted(empty),
    }

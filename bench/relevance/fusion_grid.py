"""The default fusion's grid (`python -m bench.relevance --fusion-grid`).

On the same stack as the modes (corpus loaded once per backend), every query is sent again
through gRPC SearchResources with no mode set, once per setting of the grid: method (`minmax`
normalised scores or `rrf` ranks), keyword weight 0.3-0.7 (the vector side gets the rest),
the keyword side's mode (most_fields / best_fields) and fuzzy words on or off. The setting is
put in place by patching the service's module globals in this process (the app runs here), so
no production code path learns about the grid: `search_service.query.DEFAULT_FUSION` (read by
`fusion()` and `hybrid_keyword_query()`) and `hybrid_keyword_query` itself for fuzzy.

`analyse` scores each setting on each backend (nDCG@10, margin over the best single mode of
that backend's run) and guards against fitting the 40-odd queries: leave-half-out, a setting
chosen on half the queries (by mean nDCG over both backends) and scored on the other half,
both ways round, against the current default on the same half.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from bench.relevance.metrics import judged_share, ndcg_at

WEIGHTS = (0.3, 0.4, 0.5, 0.6, 0.7)


@dataclasses.dataclass(frozen=True)
class Setting:
    method: str
    keyword_weight: float
    keyword_mode: str
    fuzzy: bool

    @property
    def name(self) -> str:
        fuzzy = "fuzzy" if self.fuzzy else "exact"
        return f"{self.method}/kw{self.keyword_weight:.1f}/{self.keyword_mode}/{fuzzy}"


def grid() -> list[Setting]:
    return [
        Setting(method, w, mode, fuzzy)
        for method in ("minmax", "rrf")
        for w in WEIGHTS
        for mode in ("most_fields", "best_fields")
        for fuzzy in (True, False)
    ]


def current() -> Setting:
    """The service's DEFAULT_FUSION as a grid setting (fuzzy is always on in production)."""
    from search_service.hybrid import DEFAULT_FUSION as F

    share = F.keyword_weight / (F.keyword_weight + F.vector_weight)
    return Setting(F.method, round(share, 1), F.keyword_mode, True)


@contextlib.contextmanager
def override(setting: Setting) -> Iterator[None]:
    """The service's default fusion replaced by `setting` for the duration (this process)."""
    from search_service import query as rq
    from search_service.hybrid import DEFAULT_FUSION

    fusion = dataclasses.replace(
        DEFAULT_FUSION,
        method=setting.method,
        keyword_weight=setting.keyword_weight,
        vector_weight=round(1 - setting.keyword_weight, 1),
        keyword_mode=setting.keyword_mode,
    )
    original = rq.hybrid_keyword_query

    def keyword_query(*args: Any, **kwargs: Any):
        kq = original(*args, **kwargs)
        kq.fuzzy = setting.fuzzy
        return kq

    saved = rq.DEFAULT_FUSION
    rq.DEFAULT_FUSION, rq.hybrid_keyword_query = fusion, keyword_query
    try:
        yield
    finally:
        rq.DEFAULT_FUSION, rq.hybrid_keyword_query = saved, original


async def search_grid(address: str, queries: list[dict[str, Any]], search_all) -> dict[str, Any]:
    """Every query with no mode set, once per grid setting (`search_all` of the runner):
    {"rankings": {setting name: {query id: ranking}}, "errors": ...}."""
    out: dict[str, Any] = {"rankings": {}, "errors": {}}
    for setting in grid():
        with override(setting):
            searched = await search_all(address, queries, only=("default",))
        out["rankings"][setting.name] = searched["rankings"]["default"]
        out["errors"][setting.name] = searched["errors"]["default"]
    return out


def _mean_ndcg(
    rankings: Mapping[str, Sequence[str]], judgements: Mapping[str, Mapping[str, int]], qids
) -> float:
    qids = list(qids)
    return sum(ndcg_at(rankings.get(q, []), judgements[q]) for q in qids) / (len(qids) or 1)


def analyse(
    grids: Mapping[str, Mapping[str, Any]],
    singles: Mapping[str, float],
    judgements: Mapping[str, Mapping[str, int]],
) -> dict[str, Any]:
    """grids: backend -> search_grid's answer; singles: backend -> its best single mode's nDCG@10.
    Per setting and backend: nDCG@10 and the margin over the best single mode; the best setting
    by mean nDCG over the backends; leave-half-out both ways."""
    scored = sorted(q for q, j in judgements.items() if any(g > 0 for g in j.values()))
    backends = list(grids)
    names = [s.name for s in grid()]
    table: dict[str, dict[str, Any]] = {}
    for name in names:
        row: dict[str, Any] = {}
        for b in backends:
            ranks = grids[b]["rankings"][name]
            nd = _mean_ndcg(ranks, judgements, scored)
            top = [judged_share(ranks.get(q, []), judgements[q]) for q in scored]
            top = [t for t in top if t is not None]
            row[b] = {
                "ndcg_at_10": round(nd, 4),
                # below 1: unjudged documents in the top 10, counted as 0 (judge the pool)
                "judged_share_top10": round(sum(top) / len(top), 4) if top else None,
                "margin": round(nd - singles[b], 4),
                "errors": len(grids[b]["errors"][name]),
            }
        row["mean_ndcg_at_10"] = round(
            sum(row[b]["ndcg_at_10"] for b in backends) / len(backends), 4
        )
        table[name] = row

    def mean_on(name: str, qids: Sequence[str]) -> float:
        return sum(
            _mean_ndcg(grids[b]["rankings"][name], judgements, qids) for b in backends
        ) / len(backends)

    halves = (scored[0::2], scored[1::2])
    held_out = []
    for pick, score in ((0, 1), (1, 0)):
        chosen = max(names, key=lambda n: (round(mean_on(n, halves[pick]), 4), -names.index(n)))
        held_out.append(
            {
                "chosen_on": f"half {pick + 1} ({len(halves[pick])} queries)",
                "chosen": chosen,
                "chosen_held_out_mean_ndcg": round(mean_on(chosen, halves[score]), 4),
                "current_held_out_mean_ndcg": round(mean_on(current().name, halves[score]), 4),
            }
        )
    best = max(names, key=lambda n: (table[n]["mean_ndcg_at_10"], -names.index(n)))
    return {
        "current": current().name,
        "best_single": {b: round(v, 4) for b, v in singles.items()},
        "best_by_mean": best,
        "leave_half_out": held_out,
        "settings": table,
    }

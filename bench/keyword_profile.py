"""Where a keyword answer's CPU goes: `python -m bench.keyword_profile --dir D --json`.

Opens the keyword index of a corpus `bench.search --dir D` built (read-only: nothing is written)
and times, in this process, the pieces of `TantivyIndex._search_sync` for bench.search's keyword
request (best_fields, the 2 filters, the 3 facets) over its queries: the whole answer, the top-k
search (the score-shaping window, with and without counting), the facet aggregation, and what
the same engine calls cost in other forms (most_fields' flat disjunction, one facet, counting
only, all documents), and the whole answer with tantivy alone (no hot-term columns). Each figure
is CPU milliseconds per query (process time, which a busy machine moves much less than wall
time), the median of `--rounds` rounds over all queries.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from bench.corpus import FACETS, QUERIES, _filters


def _cpu_ms(fn: Callable[[str], object], queries: list[str], rounds: int) -> float:
    for q in queries:
        fn(q)  # warm
    per_round = []
    for _ in range(rounds):
        t0 = time.process_time()
        for q in queries:
            fn(q)
        per_round.append((time.process_time() - t0) * 1000 / len(queries))
    return round(statistics.median(per_round), 3)


def profile(keyword_dir: Path, rounds: int = 5, queries: list[str] | None = None) -> dict:
    import tantivy

    from learnflow.stores.keyword import KeywordQuery
    from learnflow.stores.tantivy_index import SHAPING_WINDOW, TantivyKeywordIndex

    qs = queries or QUERIES
    ix = TantivyKeywordIndex(keyword_dir)
    searcher = ix.index.searcher()

    def request(text: str, mode: str = "best_fields") -> KeywordQuery:
        return KeywordQuery(
            text=text, filters=_filters(), facets=FACETS, limit=10, search_mode=mode
        )

    def engine_query(text: str, mode: str) -> tantivy.Query:
        kq = request(text, mode)
        return ix._combine(ix._text_query(kq, searcher), ix._filter_query(kq.filters))

    best = {q: engine_query(q, "best_fields") for q in qs}
    flat = {q: engine_query(q, "most_fields") for q in qs}
    terms = {n: {"terms": {"field": f"f_{n}", "size": 10000}} for n in FACETS}
    window = min(50, SHAPING_WINDOW)  # the window a 10-hit page re-ranks
    pages = {q: [a for _s, a in searcher.search(best[q], limit=10, count=False).hits] for q in qs}
    all_docs = tantivy.Query.all_query()

    def tantivy_only(q: str) -> object:
        budget, ix.columns.budget_bytes = ix.columns.budget_bytes, 0
        try:
            return ix._search_sync(request(q))
        finally:
            ix.columns.budget_bytes = budget

    pieces: dict[str, Callable[[str], object]] = {
        # As served: from the second request of its terms on, the hot-term columns answer.
        "answer (_search_sync)": lambda q: ix._search_sync(request(q)),
        "answer, tantivy only (no hot-term columns)": tantivy_only,
        "query building": lambda q: engine_query(q, "best_fields"),
        "top-k best_fields, counted (as served)": lambda q: searcher.search(
            best[q], limit=window, count=True
        ),
        "top-k best_fields, not counted": lambda q: searcher.search(
            best[q], limit=window, count=False
        ),
        "top-k most_fields flat, not counted": lambda q: searcher.search(
            flat[q], limit=window, count=False
        ),
        "facets: 3 terms aggs on the flat query (as served)": lambda q: searcher.aggregate(
            flat[q], terms
        ),
        "facets: 1 terms agg": lambda q: searcher.aggregate(
            flat[q], {"platform": terms["platform"]}
        ),
        "facets: value_count only (iterating the matches)": lambda q: searcher.aggregate(
            flat[q], {"n": {"value_count": {"field": "id"}}}
        ),
        "facets: 3 terms aggs over all documents": lambda q: searcher.aggregate(all_docs, terms),
        "10 stored documents + json.loads": lambda q: [
            json.loads(searcher.doc(a)["doc"][0]) for a in pages[q]
        ],
    }
    for q in qs:  # each query's hot-term columns, built as the service builds them
        ix._search_sync(request(q))
        ix._search_sync(request(q))
    ix.columns.wait_idle()
    matches = searcher.search(flat[qs[0]], limit=1, count=True).count
    return {
        "cpu_ms_per_query": {name: _cpu_ms(fn, qs, rounds) for name, fn in pieces.items()},
        "meta": {
            "docs": searcher.num_docs,
            "segments": searcher.num_segments,
            "queries": len(qs),
            "rounds": rounds,
            "matches_of_first_query": matches,
            "load_average": [round(x, 2) for x in os.getloadavg()],
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, required=True, help="a bench.search --dir")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = profile(args.dir / "keyword", args.rounds)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

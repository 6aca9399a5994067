"""Benchmark the OpenSearch keyword backend: `python -m bench.opensearch_search --docs N`.

Against a real node (started here, or `--url`): bulk indexing throughput with byte-bounded
chunks, keyword search latency (text + 2 filters + 3 facets; facets only; sorted), and a full
zero-downtime rebuild with a search loop running through the alias swap (failed searches
counted). Uses the corpus generator of bench/search.py. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid

import numpy as np

from bench.search import FACETS, _filters, generate


def _pct(samples: list[float], q: float) -> float:
    return round(float(np.percentile(samples, q)) * 1000, 2)


async def run(url: str, n: int, repeats: int) -> dict:
    from learnflow.stores.keyword import KeywordQuery
    from learnflow.stores.opensearch import OpenSearchKeywordIndex

    docs = generate(n)
    ix = OpenSearchKeywordIndex(url, f"bench_{uuid.uuid4().hex[:8]}")
    out: dict = {"docs": n}
    try:
        await ix.ensure_indexes()
        t0 = time.perf_counter()
        bulk = {"requests": 0, "largest_request_bytes": 0}
        for start in range(0, n, 5000):
            await ix.upsert(docs[start : start + 5000])
            bulk["requests"] += ix.last_bulk.requests
            bulk["largest_request_bytes"] = max(
                bulk["largest_request_bytes"], ix.last_bulk.largest_request_bytes
            )
        await ix.refresh_all()
        elapsed = time.perf_counter() - t0
        out["index"] = {"seconds": round(elapsed, 2), "docs_per_s": round(n / elapsed), **bulk}
        queries = {
            "text_2filters_3facets": KeywordQuery(
                text="machine learning", filters=_filters(), facets=FACETS
            ),
            "text_best_fields": KeywordQuery(text="supply chain data", search_mode="best_fields"),
            "facets_only": KeywordQuery(facets=FACETS),
            "sorted_views": KeywordQuery(sort="-views", filters=_filters()),
        }
        out["search_ms"] = {}
        for name, q in queries.items():
            await ix.search(q)
            samples = []
            for _ in range(repeats):
                t = time.perf_counter()
                await ix.search(q)
                samples.append(time.perf_counter() - t)
            out["search_ms"][name] = {"p50": _pct(samples, 50), "p99": _pct(samples, 99)}

        done = asyncio.Event()
        counts = {"searches": 0, "failed": 0}

        async def loop() -> None:
            while not done.is_set():
                try:
                    await ix.search(queries["text_2filters_3facets"])
                    counts["searches"] += 1
                except Exception:  # counting failures is the measurement
                    counts["failed"] += 1

        async def batches():
            for start in range(0, n, 1000):
                yield docs[start : start + 1000]

        task = asyncio.create_task(loop())
        t0 = time.perf_counter()
        await ix.rebuild(batches())
        done.set()
        await task
        out["rebuild"] = {"seconds": round(time.perf_counter() - t0, 2), **counts}
    finally:
        await ix.drop_all()
        await ix.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--url", default="", help="an OpenSearch node; default: start one")
    args = parser.parse_args()
    node = None
    url = args.url
    if not url:
        from devstack.harness.opensearch import OpenSearchNode

        node = OpenSearchNode()
        url = node.start()
    try:
        print(json.dumps(asyncio.run(run(url, args.docs, args.repeats)), indent=1))
    finally:
        if node is not None:
            node.stop()


if __name__ == "__main__":
    main()

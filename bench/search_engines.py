"""bench.search's engine-level measurements: the same work as the search service minus gRPC
(query building, engine calls, query encoding, fusion), on the embedded engines and with
OpenSearch as the keyword engine."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np

from bench.corpus import FACETS, QUERIES, _filters, generate

# -- measuring ----------------------------------------------------------------------------------


def _pct(samples: list[float], q: float) -> float:
    return round(float(np.percentile(samples, q)) * 1000, 3)


class QueryCostEncoder:
    """The configured default encoder's cost on each query, the corpus encoder's vector."""

    def __init__(self, corpus) -> None:
        from learnflow.settings import get_settings
        from learnflow.stores.encoders import get_encoder

        s = get_settings()
        self.default = get_encoder(
            s.qdrant_encoder,
            s.qdrant_dense_model,
            model_dir=str(s.encoder_model_dir) if s.encoder_model_dir else None,
        )
        self.corpus = corpus
        self.name, self.dim = corpus.name, corpus.dim

    def encode(self, texts: list[str]):
        self.default.encode(texts)
        return self.corpus.encode(texts)


def query_encoder(kind: str):
    from learnflow.stores.encoders import HashingProjectionEncoder

    corpus = HashingProjectionEncoder()
    return QueryCostEncoder(corpus) if kind == "default" else corpus


def engine_latencies(data_dir: Path, repeats: int, encoder_kind: str = "hash") -> dict[str, dict]:
    """Same work as the service minus gRPC: query building, engine call, encoder, RRF."""
    from learnflow.stores.keyword import KeywordQuery
    from learnflow.stores.tantivy_index import TantivyKeywordIndex
    from learnflow.stores.vector import EdgeVectorStore
    from search_service.query import rrf

    keyword = TantivyKeywordIndex(data_dir / "keyword")
    vector = EdgeVectorStore(path=str(data_dir / "qdrant"), collection="bench.resources")
    encoder = query_encoder(encoder_kind)

    def kw(q: str, limit: int = 10, facets=FACETS):
        return keyword.search_sync(
            KeywordQuery(
                text=q, filters=_filters(), facets=facets, limit=limit, search_mode="best_fields"
            )
        )

    def vec(q: str, limit: int = 10):
        return vector.search_sync(encoder.encode([q])[0], {}, limit)

    def hybrid(q: str):
        k, v = kw(q, 30, []), vec(q, 30)
        return rrf(
            [[(h.id, h.document) for h in k.hits], [(h.id, h.document) for h in v.hits]], [1, 1]
        )

    out = {}
    for name, fn in (("keyword", kw), ("vector", vec), ("hybrid", hybrid)):
        for _ in range(2):  # warm: twice, so the keyword columns of every query are built
            for q in QUERIES:
                fn(q)
        keyword.columns.wait_idle()
        samples = []
        for i in range(repeats):
            t0 = time.perf_counter()
            fn(QUERIES[i % len(QUERIES)])
            samples.append(time.perf_counter() - t0)
        out[name] = {"p50_ms": _pct(samples, 50), "p99_ms": _pct(samples, 99)}
    asyncio.run(vector.close())
    return out


JVM_WARMUP_S = 20.0  # keyword queries against the node before its latencies are sampled


def opensearch_prefix(n: int) -> str:
    """The index prefix of an N-doc bench corpus (fixed, so `--reuse` finds it again)."""
    return f"bench_search_{n}"


async def load_opensearch(url: str, prefix: str, n: int, reuse: bool) -> dict:
    """Bulk the N-doc corpus into OpenSearch (5000-doc upserts), unless `reuse` and the index
    already holds exactly N documents."""
    from learnflow.stores.opensearch import OpenSearchKeywordIndex

    ix = OpenSearchKeywordIndex(url, prefix)
    try:
        await ix.ensure_indexes()
        held = await ix.count()
        if reuse and held == n:
            return {"opensearch_bulk_reused": True}
        if held:
            await ix.drop_all()  # another corpus under this prefix: start clean
            await ix.ensure_indexes()
        docs = generate(n)
        t0 = time.perf_counter()
        for i in range(0, n, 5000):
            await ix.upsert(docs[i : i + 5000])
        await ix.refresh_all()
        elapsed = time.perf_counter() - t0
        held = await ix.count()
        if held != n:
            raise SystemExit(f"OpenSearch holds {held} docs after bulk, expected {n}")
        # Settle the index before measuring (as the vector store is optimized): no background
        # merges of the bulk's segments running under the latency samples.
        t0 = time.perf_counter()
        await ix.client.indices.forcemerge(
            index=f"{prefix}_*", params={"max_num_segments": 1}, request_timeout=1800
        )
        return {
            "opensearch_bulk_s": round(elapsed, 2),
            "opensearch_docs_per_s": round(n / elapsed),
            "opensearch_forcemerge_s": round(time.perf_counter() - t0, 2),
        }
    finally:
        await ix.close()


async def opensearch_engine_latencies(
    data_dir: Path, url: str, prefix: str, repeats: int, encoder_kind: str = "hash"
) -> dict[str, dict]:
    """`engine_latencies` with OpenSearch as the keyword engine: `OpenSearchKeywordIndex.search`
    (query building, HTTP round trip, response parsing) with the same KeywordQuery; hybrid runs
    the keyword request and the vector search concurrently, as the service does. Also reports the
    node's own `took` of the same sampled requests (keyword, hybrid)."""
    from learnflow.stores.keyword import KeywordQuery
    from learnflow.stores.opensearch import OpenSearchKeywordIndex
    from learnflow.stores.vector import EdgeVectorStore
    from search_service.query import rrf

    keyword = OpenSearchKeywordIndex(url, prefix)
    vector = EdgeVectorStore(path=str(data_dir / "qdrant"), collection="bench.resources")
    encoder = query_encoder(encoder_kind)

    def query(q: str, limit: int = 10, facets=FACETS) -> KeywordQuery:
        return KeywordQuery(
            text=q, filters=_filters(), facets=facets, limit=limit, search_mode="best_fields"
        )

    async def kw(q: str, limit: int = 10, facets=FACETS):
        return await keyword.search(query(q, limit, facets))

    def vec_sync(q: str, limit: int = 10):
        return vector.search_sync(encoder.encode([q])[0], {}, limit)

    async def vec(q: str, limit: int = 10):
        return vec_sync(q, limit)

    async def hybrid(q: str):
        k, v = await asyncio.gather(kw(q, 30, []), asyncio.to_thread(vec_sync, q, 30))
        return rrf(
            [[(h.id, h.document) for h in k.hits], [(h.id, h.document) for h in v.hits]], [1, 1]
        )

    # The node's own time (`took`) of each sampled request, to split node time from client time.
    took: list[float] = []
    node_search = keyword.client.search

    async def search_recording_took(*args, **kwargs):
        res = await node_search(*args, **kwargs)
        took.append(res["took"] / 1000)
        return res

    keyword.client.search = search_recording_took  # type: ignore[method-assign]

    out: dict[str, dict] = {}
    try:
        # A JVM warms up over many more requests than tantivy's 12 warm-up queries: keep querying
        # until the node's JIT has seen the query shapes (bounded).
        warm_until = time.perf_counter() + JVM_WARMUP_S
        i = 0
        while time.perf_counter() < warm_until:
            await kw(QUERIES[i % len(QUERIES)])
            await kw(QUERIES[i % len(QUERIES)], 30, [])
            i += 1
        for name, fn in (("keyword", kw), ("vector", vec), ("hybrid", hybrid)):
            for q in QUERIES:
                await fn(q)  # warm
            samples = []
            took.clear()
            for i in range(repeats):
                t0 = time.perf_counter()
                await fn(QUERIES[i % len(QUERIES)])
                samples.append(time.perf_counter() - t0)
            out[name] = {"p50_ms": _pct(samples, 50), "p99_ms": _pct(samples, 99)}
            if took:
                out[name]["opensearch_took_p50_ms"] = _pct(took, 50)
                out[name]["opensearch_took_p99_ms"] = _pct(took, 99)
    finally:
        await keyword.close()
        await vector.close()
    return out

"""Benchmark search: `python -m bench.search --docs N --json`.

Generates an N-resource corpus in MIT Learn's shapes (resource model → search document, real
platforms/offerors/topics/departments from the reference data), indexes it into the embedded
engines (tantivy, qdrant-edge), then measures, for keyword (3 facets + 2 filters), vector and
hybrid: straight to the engine in this process, and through gRPC to the service running in a
separate process (`--serve`), itself `--processes` server processes on one port (default one
per core, as SEARCH_PROCESSES=0). p50/p99 at 1 client, QPS at 16 concurrent clients, and
overhead_ratio = gRPC p50 / engine p50. Prints one JSON object.

The corpus's vectors come from the fast hashing encoder (building 100k with the default encoder
would take hours here); `--query-encoder default` (the default) still runs the configured
default encoder on every query text, so vector and hybrid latencies include its cost, and then
searches with the hashing encoder's vector of the same text.

`--keyword-backend opensearch`: the keyword corpus goes into a real OpenSearch node (started
here, or `--opensearch-url`) through `OpenSearchKeywordIndex`, as in the service's OpenSearch
configuration; vector stays on the embedded qdrant-edge and hybrid fuses both by RRF.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

WORDS = [
    "differential",
    "equations",
    "linear",
    "algebra",
    "machine",
    "learning",
    "python",
    "data",
    "science",
    "economics",
    "supply",
    "chain",
    "management",
    "biology",
    "chemistry",
    "physics",
    "mechanics",
    "quantum",
    "climate",
    "energy",
    "policy",
    "design",
    "thinking",
    "leadership",
    "finance",
    "accounting",
    "statistics",
    "probability",
    "calculus",
    "robotics",
    "neural",
    "networks",
    "deep",
    "optimization",
    "algorithms",
    "systems",
    "circuits",
    "signals",
    "materials",
    "structures",
    "entrepreneurship",
    "innovation",
    "marketing",
    "strategy",
    "healthcare",
    "genetics",
    "neuroscience",
    "urban",
    "planning",
    "architecture",
    "history",
    "philosophy",
    "writing",
    "communication",
    "music",
    "ethics",
]
QUERIES = [
    "machine learning",
    "differential equations",
    "supply chain",
    "quantum physics",
    "climate policy",
    "neural networks",
    "linear algebra",
    "data science python",
    "finance accounting",
    "robotics systems",
    "urban planning",
    "genetics biology",
]
FACETS = ["resource_type", "platform", "offered_by"]


def _filters() -> dict[str, list[str]]:
    return {"free": ["true"], "delivery": ["online"]}


def generate(n: int, seed: int = 7) -> list[dict]:
    """N search documents built through the real model and `to_search_document`."""
    from learnflow.models import Resource
    from learnflow.reference import reference_data
    from learnflow.search_doc import to_search_document

    ref = reference_data()
    rng = random.Random(seed)
    platforms = sorted(ref.platforms)
    offerors = sorted(ref.offerors)
    topics = sorted(t["name"] for t in ref.topics.values())
    departments = sorted(ref.departments.items())
    types = ["course"] * 5 + ["program", "video", "podcast_episode", "document"]
    levels = ["introductory", "intermediate", "advanced", "undergraduate", "graduate"]
    now = datetime(2026, 1, 1, tzinfo=UTC)
    docs = []
    for i in range(1, n + 1):
        title = " ".join(rng.sample(WORDS, rng.randint(2, 6))).title()
        rtype = rng.choice(types)
        dept_id, dept_name = rng.choice(departments)
        start = now + timedelta(days=rng.randint(-900, 300))
        res = Resource.model_validate(
            {
                "readable_id": f"bench-{i}",
                "platform": rng.choice(platforms),
                "resource_type": rtype,
                "etl_source": "bench",
                "title": title,
                "offered_by": rng.choice(offerors),
                "description": " ".join(rng.choices(WORDS, k=rng.randint(15, 40))),
                "full_description": " ".join(rng.choices(WORDS, k=rng.randint(40, 120))),
                "url": f"https://learn.mit.edu/bench/{i}",
                "topics": [{"name": t} for t in rng.sample(topics, rng.randint(1, 3))],
                "departments": [{"department_id": dept_id, "name": dept_name}],
                "certification": rng.random() < 0.3,
                "professional": rng.random() < 0.2,
                "delivery": [rng.choice(["online", "online", "in_person", "hybrid"])],
                "runs": [
                    {
                        "run_id": f"bench-{i}-r1",
                        "start_date": start.isoformat(),
                        "level": [rng.choice(levels)],
                        "prices": [] if rng.random() < 0.6 else [{"amount": "100"}],
                    }
                ],
                "prices": [] if rng.random() < 0.6 else [{"amount": "100"}],
                "last_modified": (start - timedelta(days=30)).isoformat(),
                "completeness": round(rng.random(), 2),
                "details": {"view_count": rng.randint(0, 5000)},
            }
        )
        docs.append(to_search_document(res, i, start - timedelta(days=60)))
    return docs


def build(data_dir: Path, n: int) -> dict:
    from learnflow.search_doc import embedding_text, filter_values
    from learnflow.stores.encoders import HashingProjectionEncoder
    from learnflow.stores.tantivy_index import TantivyKeywordIndex
    from learnflow.stores.vector import EdgeVectorStore, VectorPoint, payload_for

    t0 = time.perf_counter()
    docs = generate(n)
    t_gen = time.perf_counter() - t0
    keyword = TantivyKeywordIndex(data_dir / "keyword", heap_bytes=256_000_000)
    t0 = time.perf_counter()
    for i in range(0, n, 5000):
        keyword._upsert_sync(docs[i : i + 5000])  # one commit per 5000
    t_kw = time.perf_counter() - t0
    encoder = HashingProjectionEncoder()
    vector = EdgeVectorStore(path=str(data_dir / "qdrant"), collection="bench.resources")

    async def load() -> tuple[float, float]:
        await vector.ensure_collection(encoder.dim, encoder.name)
        t0 = time.perf_counter()
        for i in range(0, n, 2000):
            batch = docs[i : i + 2000]
            vecs = encoder.encode([embedding_text(d) for d in batch])
            await vector.upsert(
                [
                    VectorPoint(str(d["id"]), v, payload_for(d, filter_values(d)))
                    for d, v in zip(batch, vecs, strict=True)
                ]
            )
        t_up = time.perf_counter() - t0
        t0 = time.perf_counter()
        await vector.optimize()
        return t_up, time.perf_counter() - t0

    t_up, t_opt = asyncio.run(load())
    asyncio.run(vector.close())
    return {
        "generate_s": round(t_gen, 2),
        "keyword_index_s": round(t_kw, 2),
        "vector_encode_upsert_s": round(t_up, 2),
        "vector_optimize_s": round(t_opt, 2),
    }


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
        for q in QUERIES:
            fn(q)  # warm
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


def _requests():
    from search_service.pb import search_pb2 as pb

    flt = pb.ResourceFilter(free=True, delivery=["online"])
    return {
        "keyword": [
            pb.SearchResourcesRequest(
                query=q,
                mode=pb.SEARCH_MODE_KEYWORD,
                filter=flt,
                facets=FACETS,
                keyword_options=pb.KeywordOptions(search_mode=pb.KEYWORD_SEARCH_MODE_BEST_FIELDS),
            )
            for q in QUERIES
        ],
        "vector": [pb.SearchResourcesRequest(query=q, mode=pb.SEARCH_MODE_VECTOR) for q in QUERIES],
        "hybrid": [
            pb.SearchResourcesRequest(
                query=q,
                mode=pb.SEARCH_MODE_HYBRID,
                filter=flt,
                keyword_options=pb.KeywordOptions(search_mode=pb.KEYWORD_SEARCH_MODE_BEST_FIELDS),
            )
            for q in QUERIES
        ],
    }


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of process `pid` and its live children."""
    import psutil

    root = psutil.Process(pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            t = proc.cpu_times()
            total += t.user + t.system
    return total


async def grpc_latencies(
    address: str, repeats: int, seconds: float, server_pid: int
) -> dict[str, dict]:
    """Latencies at 1 client and QPS at 16, with the CPU each answer cost the server processes
    and this (client) process during the 16-client run: on a shared machine the wall-clock QPS
    follows the neighbours' load, the CPU per answer much less (see `cpu_bound_qps`)."""
    import grpc

    from search_service.pb import search_pb2_grpc

    out = {}
    async with grpc.aio.insecure_channel(address) as channel:
        stub = search_pb2_grpc.SearchServiceStub(channel)
        for name, reqs in _requests().items():
            for r in reqs:
                await stub.SearchResources(r, timeout=30)
            samples = []
            for i in range(repeats):
                t0 = time.perf_counter()
                resp = await stub.SearchResources(reqs[i % len(reqs)], timeout=30)
                samples.append(time.perf_counter() - t0)
                assert resp.results, name
            done = 0
            stop_at = time.perf_counter() + seconds

            async def client(k: int, reqs=reqs, stub=stub, stop_at=stop_at) -> None:
                nonlocal done
                i = k
                while time.perf_counter() < stop_at:
                    await stub.SearchResources(reqs[i % len(reqs)], timeout=30)
                    done += 1
                    i += 1

            server_cpu, client_cpu = _cpu_seconds(server_pid), time.process_time()
            t0 = time.perf_counter()
            await asyncio.gather(*(client(k) for k in range(16)))
            elapsed = time.perf_counter() - t0
            server_ms = (_cpu_seconds(server_pid) - server_cpu) / max(done, 1) * 1000
            client_ms = (time.process_time() - client_cpu) / max(done, 1) * 1000
            out[name] = {
                "p50_ms": _pct(samples, 50),
                "p99_ms": _pct(samples, 99),
                "qps_16": round(done / elapsed, 1),
                "server_cpu_ms_per_answer": round(server_ms, 2),
                "client_cpu_ms_per_answer": round(client_ms, 2),
                # What these CPU costs allow on the machine's cores with no neighbours (tantivy
                # and qdrant-edge release the GIL: one process already uses both cores).
                "cpu_bound_qps": round((os.cpu_count() or 1) * 1000 / (server_ms + client_ms), 1),
            }
    return out


# -- the server process ---------------------------------------------------------------------------


def _bench_stores(data_dir: Path, vector, opensearch: tuple[str, str] | None, encoder_kind: str):
    from learnflow.settings import get_settings
    from learnflow.stores import Stores
    from learnflow.stores.tantivy_index import TantivyKeywordIndex

    if opensearch:
        from learnflow.stores.opensearch import OpenSearchKeywordIndex

        keyword = OpenSearchKeywordIndex(*opensearch)
    else:
        keyword = TantivyKeywordIndex(data_dir / "keyword")
    return Stores(
        settings=get_settings(),
        pool=None,  # type: ignore[arg-type]
        catalog=None,  # type: ignore[arg-type]
        keyword=keyword,
        vector=vector,
        blobs=None,  # type: ignore[arg-type]
        _encoder=query_encoder(encoder_kind),
    )


async def child_stores(data_dir: str, opensearch, encoder_kind: str):
    """A spawned bench server's stores (`search_service.processes`): its own keyword reader,
    the first process's vector shard (`vector_store` hands out the shared one)."""
    from learnflow.settings import get_settings
    from learnflow.stores.vector_serving import RESOURCES, configured_encoder, vector_store

    settings = get_settings()
    vector = vector_store(settings, RESOURCES, configured_encoder(settings))
    return _bench_stores(Path(data_dir), vector, opensearch, encoder_kind), None


def serve(
    data_dir: Path,
    port_file: Path,
    opensearch: tuple[str, str] | None = None,
    processes: int = 1,
    encoder_kind: str = "hash",
) -> None:
    """The gRPC service over the bench's indexes (no Postgres: search RPCs only); keyword on
    OpenSearch when `opensearch` = (url, index prefix)."""
    from learnflow.stores.vector import EdgeVectorStore
    from search_service.processes import start_server_group

    async def run() -> None:
        vector = EdgeVectorStore(path=str(data_dir / "qdrant"), collection="bench.resources")
        stores = _bench_stores(data_dir, vector, opensearch, encoder_kind)
        keyword = stores.keyword
        running = await start_server_group(
            stores,
            "127.0.0.1:0",
            processes,
            auth=None,
            health_interval=30,
            stores_factory="bench.search:child_stores",
            factory_args=(str(data_dir), opensearch, encoder_kind),
            grace=1,
        )
        port_file.write_text(str(running.port))  # noqa: ASYNC240 - once, at start
        stop = asyncio.Event()
        import signal

        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        await running.stop(grace=1)
        await stores.vector.close()
        if opensearch:
            await keyword.close()

    asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=5.0, help="per 16-client QPS run")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--dir", type=Path, help="keep the indexes here (default: a temp dir)")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="with --dir: measure the indexes a previous run built there for the same --docs "
        "(building 100k takes ~12 minutes, mostly the HNSW graph)",
    )
    parser.add_argument(
        "--keyword-backend",
        choices=("tantivy", "opensearch"),
        default="tantivy",
        help="keyword engine: embedded tantivy, or a real OpenSearch node",
    )
    parser.add_argument(
        "--opensearch-url", default="", help="an existing OpenSearch node (default: start one)"
    )
    parser.add_argument(
        "--opensearch-heap", default="1g", help="JVM heap of the node the bench starts"
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=0,
        help="server processes sharing the port (0 = one per core, as SEARCH_PROCESSES=0)",
    )
    parser.add_argument(
        "--query-encoder",
        choices=("default", "hash"),
        default="default",
        help="default: every query also pays the configured default encoder (see above)",
    )
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--opensearch-prefix", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    if args.serve:
        opensearch = (
            (args.opensearch_url, args.opensearch_prefix)
            if args.keyword_backend == "opensearch"
            else None
        )
        processes = args.processes or os.cpu_count() or 1
        serve(args.serve, args.port_file, opensearch, processes, args.query_encoder)
        return
    with contextlib.ExitStack() as stack:
        node_url = args.opensearch_url
        if args.keyword_backend == "opensearch" and not node_url:
            from devstack.harness.opensearch import OpenSearchNode

            node = OpenSearchNode(heap=args.opensearch_heap)
            node_url = node.start()
            stack.callback(node.stop)
        result = run(args, node_url, stack)
    if args.json:
        print(json.dumps(result))
    else:
        print(json.dumps(result, indent=2))


def _default_encoder_name() -> str:
    from learnflow.settings import get_settings
    from learnflow.stores.encoders import encoder_id

    s = get_settings()
    return encoder_id(s.qdrant_encoder, s.qdrant_dense_model)


def run(args: argparse.Namespace, opensearch_url: str, stack: contextlib.ExitStack) -> dict:
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    on_opensearch = args.keyword_backend == "opensearch"
    prefix = opensearch_prefix(args.docs)
    data_dir = args.dir or Path(
        stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-search-"))
    )
    built_marker = data_dir / "built.json"
    previous = json.loads(built_marker.read_text()) if built_marker.exists() else {}
    reused = args.reuse and args.dir and previous.get("docs") == args.docs
    if reused:
        build_times = {**previous["build"], "reused": True}
    else:
        built_marker.unlink(missing_ok=True)
        build_times = build(data_dir, args.docs)
        built_marker.write_text(json.dumps({"docs": args.docs, "build": build_times}))
    if on_opensearch:
        build_times.update(
            asyncio.run(load_opensearch(opensearch_url, prefix, args.docs, bool(reused)))
        )
        engine = asyncio.run(
            opensearch_engine_latencies(
                data_dir, opensearch_url, prefix, args.repeats, args.query_encoder
            )
        )
    else:
        engine = engine_latencies(data_dir, args.repeats, args.query_encoder)
    port_file = data_dir / "port"
    port_file.unlink(missing_ok=True)
    serve_cmd = [
        sys.executable,
        "-m",
        "bench.search",
        "--serve",
        str(data_dir),
        "--port-file",
        str(port_file),
        "--processes",
        str(args.processes),
        "--query-encoder",
        args.query_encoder,
    ]
    if on_opensearch:
        serve_cmd += [
            "--keyword-backend",
            "opensearch",
            "--opensearch-url",
            opensearch_url,
            "--opensearch-prefix",
            prefix,
        ]
    server = subprocess.Popen(serve_cmd, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not port_file.exists() or not port_file.read_text():
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("bench server did not start")
            time.sleep(0.05)
        remote = asyncio.run(
            grpc_latencies(
                f"127.0.0.1:{port_file.read_text()}",
                args.repeats,
                args.seconds,
                server.pid,
            )
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
    result: dict = {}
    for name in ("keyword", "vector", "hybrid"):
        result[name] = {
            **remote[name],
            "overhead_ratio": round(remote[name]["p50_ms"] / engine[name]["p50_ms"], 2),
            "engine_p50_ms": engine[name]["p50_ms"],
            "engine_p99_ms": engine[name]["p99_ms"],
        }
        for key in ("opensearch_took_p50_ms", "opensearch_took_p99_ms"):
            if key in engine[name]:
                result[name][key] = engine[name][key]
    result["meta"] = {
        "docs": args.docs,
        "cpus": os.cpu_count(),
        "engines": (
            "opensearch (keyword, one local node) + qdrant-edge (embedded)"
            if on_opensearch
            else "tantivy + qdrant-edge (embedded)"
        ),
        "corpus_encoder": query_encoder("hash").name,
        "query_encoder": (
            f"{args.query_encoder}: {_default_encoder_name()} (cost), then the corpus encoder"
            if args.query_encoder == "default"
            else "the corpus encoder"
        ),
        "server": "a separate process group",
        "server_processes": args.processes or os.cpu_count(),
        "load_average_at_start": load_at_start,
        **build_times,
    }
    if on_opensearch:
        result["meta"]["opensearch"] = {
            "url": opensearch_url,
            "index_prefix": prefix,
            "started_by_bench": not args.opensearch_url,
            "heap": None if args.opensearch_url else args.opensearch_heap,
            "engine_hybrid": "keyword request and vector search concurrent, as the service",
        }
    return result


if __name__ == "__main__":
    main()

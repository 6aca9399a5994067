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
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.corpus import FACETS, QUERIES, WORDS, _filters, generate  # noqa: F401 - re-exported
from bench.search_engines import (
    _pct,
    engine_latencies,
    load_opensearch,
    opensearch_engine_latencies,
    opensearch_prefix,
    query_encoder,
)


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
    # One connection per client, as 16 separate clients would open: the server's processes share
    # the port through SO_REUSEPORT, which the kernel balances per connection, so 16 calls on one
    # channel (one HTTP/2 connection) all land in one process. A local subchannel pool keeps
    # grpc from sharing one connection between channels to the same address.
    options = [("grpc.use_local_subchannel_pool", 1)]
    channels = [grpc.aio.insecure_channel(address, options=options) for _ in range(16)]
    try:
        stubs = [search_pb2_grpc.SearchServiceStub(c) for c in channels]
        stub = stubs[0]
        for name, reqs in _requests().items():
            # Warm-up: every query twice on every connection, so each server process has seen
            # each query's terms twice and holds their keyword columns (built in the background,
            # during the 1-client run that follows) before the 16-client run: steady state.
            for _ in range(2):
                for s in stubs:
                    for r in reqs:
                        await s.SearchResources(r, timeout=30)
            samples = []
            for i in range(repeats):
                t0 = time.perf_counter()
                resp = await stub.SearchResources(reqs[i % len(reqs)], timeout=30)
                samples.append(time.perf_counter() - t0)
                assert resp.results, name
            done = 0
            stop_at = time.perf_counter() + seconds

            async def client(k: int, reqs=reqs, stop_at=stop_at) -> None:
                nonlocal done
                i = k
                while time.perf_counter() < stop_at:
                    await stubs[k].SearchResources(reqs[i % len(reqs)], timeout=30)
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
                # What these CPU costs allow on the machine's cores with no neighbours and the
                # load spread over the server processes (the engines release the GIL while they
                # search; each process runs the Python part of its calls one at a time).
                "cpu_bound_qps": round((os.cpu_count() or 1) * 1000 / (server_ms + client_ms), 1),
            }
    finally:
        for c in channels:
            await c.close()
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

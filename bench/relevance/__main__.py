"""Relevance on a judged set: `python -m bench.relevance --json`.

The corpus is MIT Learn's recorded payloads through the sources' pure transforms (corpus.py),
written as JSON lines and loaded with `learn load` into a real stack: Temporal dev server,
PostgreSQL and learnflow in this process (workers + gRPC service, as `learn up`), with the
embedded engines or, with `--keyword-backend opensearch`, an OpenSearch node on the keyword side.
`--keyword-backend both` (the default) measures one stack after the other.
Every query of queries.jsonl is sent through gRPC SearchResources in every mode; the rankings
are scored against judgements.jsonl (graded 0/1/2, keyed by query and `platform/readable_id`):
nDCG@10, Recall@20, MRR, empty answers and errors per mode, and the judged share of each top 10.

Judging is pooled: `--pool-out FILE` writes every unjudged document of any mode's top
`--pool-depth` with its title and description, for the assessor to grade into judgements.jsonl;
`--rankings-out R` keeps the run's rankings and `--rescore R` scores them again once the pool is
judged (a figure is recorded with every document of its top 10 judged).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.relevance.corpus import write_corpus
from bench.relevance.metrics import summarise

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
QUERIES = HERE / "queries.jsonl"
JUDGEMENTS = HERE / "judgements.jsonl"
CLI_MODULE = "learn_cli"
DEPTH = 20  # results asked per query: Recall@20 needs 20
RANKINGS = REPO / "bench" / "results" / "relevance_rankings.json"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def load_judgements(path: Path = JUDGEMENTS) -> dict[str, dict[str, int]]:
    """query id -> {platform/readable_id: grade}."""
    out: dict[str, dict[str, int]] = {}
    for j in read_jsonl(path):
        out.setdefault(j["query"], {})[f"{j['platform']}/{j['readable_id']}"] = int(j["grade"])
    return out


def modes() -> dict[str, dict[str, Any]]:
    """Each mode as the fields of a SearchResourcesRequest: MIT Learn's explicit ones and the
    service's default (no mode set), whatever that default is on this commit."""
    from search_service.pb import search_pb2 as pb

    def keyword(kind: int) -> dict[str, Any]:
        return {
            "mode": pb.SEARCH_MODE_KEYWORD,
            "keyword_options": pb.KeywordOptions(search_mode=kind),
        }

    return {
        "default": {},
        "keyword_phrase": keyword(pb.KEYWORD_SEARCH_MODE_PHRASE),
        "keyword_best_fields": keyword(pb.KEYWORD_SEARCH_MODE_BEST_FIELDS),
        "keyword_most_fields": keyword(pb.KEYWORD_SEARCH_MODE_MOST_FIELDS),
        "vector": {"mode": pb.SEARCH_MODE_VECTOR},
        "hybrid": {"mode": pb.SEARCH_MODE_HYBRID},
    }


async def search_all(
    address: str, queries: list[dict[str, Any]], only: tuple[str, ...] | None = None
) -> dict[str, Any]:
    """Every query in every mode (or the `only` ones): rankings, errors and what each returned
    document is."""
    import grpc

    from search_service.pb import search_pb2 as pb
    from search_service.pb import search_pb2_grpc

    rankings: dict[str, dict[str, list[str]]] = {}
    errors: dict[str, dict[str, str]] = {}
    docs: dict[str, dict[str, str]] = {}
    latencies: list[float] = []
    async with grpc.aio.insecure_channel(address) as channel:
        stub = search_pb2_grpc.SearchServiceStub(channel)
        for name, fields in modes().items():
            if only is not None and name not in only:
                continue
            rankings[name], errors[name] = {}, {}
            for q in queries:
                req = pb.SearchResourcesRequest(query=q["text"], page_size=DEPTH, **fields)
                started = time.perf_counter()
                try:
                    resp = await stub.SearchResources(req, timeout=30)
                except grpc.aio.AioRpcError as exc:
                    errors[name][q["id"]] = f"{exc.code().name}: {exc.details()}"
                    rankings[name][q["id"]] = []
                    continue
                latencies.append(time.perf_counter() - started)
                ranking = []
                for r in resp.results:
                    doc = f"{r.resource.platform}/{r.resource.readable_id}"
                    ranking.append(doc)
                    docs.setdefault(
                        doc,
                        {
                            "resource_type": r.resource.resource_type,
                            "title": r.resource.title,
                            "description": r.resource.description[:200],
                        },
                    )
                rankings[name][q["id"]] = ranking
    latencies.sort()
    return {
        "rankings": rankings,
        "errors": errors,
        "docs": docs,
        "p50_ms": round(1000 * latencies[len(latencies) // 2], 1) if latencies else None,
    }


async def load_corpus(work: Path, corpus: Path) -> dict[str, Any]:
    """`learn load` in its own process, finding the stack through WORK/learnflow.env."""
    env = {k: v for k, v in os.environ.items() if k != "LEARNFLOW_ENV_FILE"}
    env["PYTHONPATH"] = str(REPO)
    started = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        CLI_MODULE,
        "load",
        "--data-dir",
        str(work),
        "--json",
        str(corpus),
        cwd=str(work),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"learn load failed ({proc.returncode}): {err.decode()[-2000:]}")
    result = json.loads(out.decode().strip().splitlines()[-1])
    return {
        "seconds": round(time.perf_counter() - started, 1),
        "lines": result["lines"],
        "loaded": result["inserted"] + result["updated"],
        "unchanged": result["unchanged"],
        "quarantined": result["quarantined"],
        "indexed": result["indexed"],
        "embedded": result["embedded"],
    }


async def measure(
    backend: str, work: Path, corpus: Path, queries: list[dict], fusion_grid: bool = False
) -> dict[str, Any]:
    """A fresh stack on `backend`, the corpus loaded through `learn load`, every query searched
    (and, with `fusion_grid`, searched again with each setting of fusion_grid.grid())."""
    from devstack.harness.postgres import DebianPostgres
    from devstack.harness.temporal import DevServer
    from devstack.system import start_app
    from learnflow.settings import reset_settings
    from learnflow.stores import reset_stores

    with contextlib.ExitStack() as stack:
        pg = stack.enter_context(DebianPostgres())
        temporal = stack.enter_context(
            DevServer(db_file=work / "temporal.db", log_file=work / "temporal.log")
        )
        env = {
            "LEARNFLOW_ENV_FILE": "",
            "DATABASE_URL": pg.dsn,
            "TEMPORAL_ADDRESS": temporal.address,
            "DATA_DIR": str(work / "data"),
            "BLOB_STORE_URL": str(work / "blobs"),
            "QDRANT_PATH": "",
            "QDRANT_URL": "",
            "GRPC_AUTH_ENABLED": "false",
            "KEYWORD_BACKEND": "tantivy",
            "OPENSEARCH_URL": "",
        }
        if backend == "opensearch":
            from devstack.harness.opensearch import OpenSearchNode

            node = OpenSearchNode()
            env["OPENSEARCH_URL"] = node.start()
            stack.callback(node.stop)
            env["KEYWORD_BACKEND"] = "opensearch"
            env["OPENSEARCH_INDEX"] = "relevance"
        os.environ.update(env)
        reset_settings()
        await reset_stores()
        app = await start_app()
        try:
            env_file = "".join(f"{k}={v}\n" for k, v in env.items() if k != "LEARNFLOW_ENV_FILE")
            env_file += f"GRPC_ADDRESS={app.grpc_address}\n"
            await asyncio.to_thread((work / "learnflow.env").write_text, env_file)
            loaded = await load_corpus(work, corpus)
            searched = await search_all(app.grpc_address, queries)
            if fusion_grid:
                from bench.relevance.fusion_grid import search_grid

                searched["fusion_grid"] = await search_grid(app.grpc_address, queries, search_all)
        finally:
            await app.stop()
            await reset_stores()
    return {"load": loaded, **searched}


def score(searched: dict[str, Any], judgements: dict[str, dict[str, int]]) -> dict[str, Any]:
    return {
        mode: summarise(ranks, judgements, searched["errors"][mode])
        for mode, ranks in searched["rankings"].items()
    }


SINGLE_MODES = ("keyword_phrase", "keyword_best_fields", "keyword_most_fields", "vector")


def goals(scores: dict[str, Any]) -> dict[str, Any]:
    """The issue's goals: default nDCG@10 >= 0.80 with no empty answer for a query that has
    relevant documents; hybrid >= the best single mode + 0.03."""
    best = max(SINGLE_MODES, key=lambda m: scores[m]["ndcg_at_10"])
    return {
        "default_ndcg_at_10": scores["default"]["ndcg_at_10"],
        "default_empty_answers": scores["default"]["empty_answers"],
        "best_single_mode": best,
        "best_single_ndcg_at_10": scores[best]["ndcg_at_10"],
        "hybrid_minus_best_single": round(
            scores["hybrid"]["ndcg_at_10"] - scores[best]["ndcg_at_10"], 4
        ),
    }


def unjudged_pool(
    searched: dict[str, Any],
    queries: list[dict],
    judgements: dict[str, dict[str, int]],
    depth: int,
) -> list[dict[str, Any]]:
    """Every document some mode ranks in its top `depth` for a query, not judged for it yet."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    text = {q["id"]: q["text"] for q in queries}
    for mode, ranks in searched["rankings"].items():
        for qid, ranking in ranks.items():
            for rank, doc in enumerate(ranking[:depth], 1):
                if doc in judgements.get(qid, {}):
                    continue
                entry = out.setdefault(
                    (qid, doc),
                    {
                        "query": qid,
                        "text": text[qid],
                        "doc": doc,
                        **searched["docs"][doc],
                        "ranks": {},
                    },
                )
                entry["ranks"][mode] = rank
    return sorted(out.values(), key=lambda e: (e["query"], min(e["ranks"].values())))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object (default)")
    parser.add_argument(
        "--keyword-backend",
        choices=("tantivy", "opensearch", "both"),
        default="both",
        help="keyword side: embedded tantivy, an OpenSearch node this starts, or one after the other",
    )
    parser.add_argument("--pool-out", type=Path, help="write unjudged top documents here (JSONL)")
    parser.add_argument("--pool-depth", type=int, default=10)
    parser.add_argument("--work", type=Path, help="keep the stacks' state here")
    parser.add_argument(
        "--rankings-out",
        type=Path,
        default=RANKINGS,
        help="keep every ranking of this run here (JSON; default beside bench.all's report, so"
        " the recorded figures can be pooled and rescored)",
    )
    parser.add_argument(
        "--rescore",
        type=Path,
        help="score rankings kept by --rankings-out against today's judgements (runs nothing):"
        " judge a run's pool, then rescore that same run",
    )
    parser.add_argument(
        "--update-report",
        type=Path,
        help="with --rescore: put the rescored figures into this bench.all report's relevance"
        " entry (bench/results/latest.json), marked rescored",
    )
    parser.add_argument(
        "--fusion-grid",
        action="store_true",
        help="also search with every setting of the default fusion's grid (fusion_grid.py; the"
        " setting is patched in this process, production code is unchanged) and report each"
        " setting's nDCG@10, margin and a leave-half-out check",
    )
    args = parser.parse_args(argv)
    from learnflow.logging import configure_logging

    configure_logging(level="WARNING", json=False)  # stdout carries the JSON report only

    queries = read_jsonl(QUERIES)
    judgements = load_judgements()
    report: dict[str, Any] = {
        "queries": len(queries),
        "judged_pairs": sum(len(j) for j in judgements.values()),
        "relevant_pairs": sum(1 for j in judgements.values() for g in j.values() if g > 0),
    }
    if args.rescore:
        kept = json.loads(args.rescore.read_text())
        report["corpus"], runs = kept["corpus"], kept["runs"]
    else:
        work = args.work or Path(tempfile.mkdtemp(prefix="learnflow-bench-relevance-"))
        work.mkdir(parents=True, exist_ok=True)
        corpus = work / "corpus.jsonl"
        report["corpus"] = write_corpus(corpus)
        backends = (
            ["tantivy", "opensearch"] if args.keyword_backend == "both" else [args.keyword_backend]
        )
        runs = {}
        for backend in backends:
            (work / backend).mkdir(exist_ok=True)
            runs[backend] = asyncio.run(
                measure(backend, work / backend, corpus, queries, args.fusion_grid)
            )
        if args.rankings_out:
            args.rankings_out.parent.mkdir(parents=True, exist_ok=True)
            kept = {"corpus": report["corpus"], "runs": runs}
            args.rankings_out.write_text(json.dumps(kept, separators=(",", ":")) + "\n")
    pool: list[dict[str, Any]] = []
    for backend, searched in runs.items():
        scores = score(searched, judgements)
        report[backend] = {
            "load": searched["load"],
            "search_p50_ms": searched["p50_ms"],
            "goals": goals(scores),
            "modes": scores,
            "errors": {m: e for m, e in searched["errors"].items() if e},
        }
        pool += unjudged_pool(searched, queries, judgements, args.pool_depth)
    grids = {b: s["fusion_grid"] for b, s in runs.items() if "fusion_grid" in s}
    if grids:
        from bench.relevance.fusion_grid import analyse

        singles = {b: report[b]["goals"]["best_single_ndcg_at_10"] for b in grids}
        report["fusion_grid"] = analyse(grids, singles, judgements)
    if args.pool_out:
        seen: set[tuple[str, str]] = set()
        with args.pool_out.open("w") as f:
            for entry in pool:
                if (entry["query"], entry["doc"]) not in seen:
                    seen.add((entry["query"], entry["doc"]))
                    f.write(json.dumps(entry) + "\n")
        report["unjudged_pooled"] = len(seen)
    if args.rescore and args.update_report:
        recorded = json.loads(args.update_report.read_text())
        entry = recorded["benchmarks"]["relevance"]
        entry["result"] = report
        entry["rescored"] = datetime.now(UTC).isoformat(timespec="seconds")
        args.update_report.write_text(json.dumps(recorded, indent=2) + "\n")
    print(json.dumps(report, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark ingestion end to end: `python -m bench.ingest --resources N --json`.

Generates a catalog of about N resources in the MITx Online and edX formats (`devstack.demo`'s
generators, half each), serves it from a local FixtureServer at the real API paths (large pages),
and runs the real system: Temporal dev server + a throwaway Debian Postgres (`devstack.harness`),
learnflow in-process (`devstack.system.start_app`: workers + embedded tantivy / Qdrant local).

Two figures, as the pipeline has two paths (#17):
* `first` — the catalog path: both sources' IngestSourceWorkflow (fetch → transform → Postgres →
  prune → keyword index) started together, plus the all-sources index pass, until every resource
  is keyword-findable. `resources_per_second` is this path; `share_of_store` compares it with
  `store_limit` (the store's own COPY→upsert rate, same rows, same run). Per stage the summed
  activity time (from the workflow histories) — what dominates — and `cpu_seconds_by_process`:
  the whole machine's CPU over the same window by process (bench/machine_cpu.py: the worker by
  thread, Postgres, Temporal, the rest of the machine), what bounds the figure.
* `embed` — embedding catch-up on the `embeddings` queue with the configured encoder
  (QDRANT_ENCODER): the embed children the runs started and left running (embed-async-v1), plus
  the all-sources embed pass; `docs_per_second` against `encoder_alone` (the same encoder on
  whole pages of the same texts, spread over the catalog, with nothing else running),
  `share_of_encoder` the ratio. `time_to_*_findable`: seconds from the runs' start until
  keyword / vector search finds every resource.
* `rerun`: the same catalog again (catalog path and its embedding); wall time, its share of the
  first run, and rows rewritten (learning_resource / learning_resource_run tuples whose xmin
  changed: must be 0). Raw pages identical to the first run's are skipped by hash.
* `first.steps`, `rerun.steps`: per source, where each run's wall time went: each activity (or
  child) as [name, scheduled, started, completed], seconds from the run's start; the gaps are
  Temporal's. The worker's CPU pool (activities/cpu_pool.py) is up before the first run starts,
  as in a worker in service.
* `phase_seconds` (both runs): per source, the wall time of load (fetch → transform → upsert →
  prune) and index — the sources run side by side, so their sum is not the wall time.
* `store_limit`: the raw store path with straight asyncpg on the same rows — COPY into a staging
  table + one INSERT … ON CONFLICT DO UPDATE … WHERE hash differs, into an empty table (all
  inserts) and again (no change).

* `--workers N`: the default queue is served by N `python -m worker --queue default` processes
  instead of the bench's own, the keyword index by an OpenSearch node; with N > 1 a round with
  one process runs first (fresh services, same catalog) and `scaling` compares the two.

Prints one JSON object (with the machine: nproc, memory, CPU model).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench import machine_cpu
from bench.run_history import phases, stage_times, steps


def machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "cpu_model": cpu,
        "python": platform.python_version(),
    }


def build_catalog(n: int) -> tuple[dict[str, Any], int]:
    """MITx Online + edX payloads totalling about n resources (courses + programs)."""
    from sources.edx_demo import edx_catalog
    from sources.mitxonline_demo import mitxonline_catalog

    # mitxonline: c courses + c//12 programs; edX: c courses + c//8 programs + 1 non-MIT course
    mx_courses = max(12, round(n / 2 / (1 + 1 / 12)))
    edx_courses = max(8, round((n - mx_courses - mx_courses // 12) / (1 + 1 / 8)))
    courses, programs = mitxonline_catalog(mx_courses)
    ecourses, eprograms = edx_catalog(edx_courses)
    total = len(courses) + len(programs) + edx_courses + len(eprograms)
    return {"mitxonline": (courses, programs), "edx": (ecourses, eprograms)}, total


async def rows_version(pool) -> dict[str, dict[int, str]]:
    async with pool.acquire() as conn:
        res = await conn.fetch("SELECT id, xmin::text AS x FROM learning_resource")
        runs = await conn.fetch("SELECT id, xmin::text AS x FROM learning_resource_run")
    return {
        "learning_resource": {r["id"]: r["x"] for r in res},
        "learning_resource_run": {r["id"]: r["x"] for r in runs},
    }


async def ingest_all(app, sources: list[str], tag: str) -> tuple[float, list[Any], list[str]]:
    from learnflow.contracts import IngestResult, IngestSourceInput

    started = time.perf_counter()
    ids = [f"bench/{tag}/{s}" for s in sources]
    results = await asyncio.gather(
        *(
            app.client.execute_workflow(
                "IngestSourceWorkflow",
                IngestSourceInput(source=s),
                id=wid,
                task_queue="default",
                result_type=IngestResult,
                execution_timeout=None,
            )
            for s, wid in zip(sources, ids, strict=True)
        )
    )
    return time.perf_counter() - started, list(results), ids


async def index_all(app, tag: str) -> int:
    """One index pass over every source (what the schedule runs): the runs index by source NAME,
    so edX (etl_source mit_edx) is left to it (activities/search.py)."""
    from learnflow.contracts import IndexInput, IndexResult

    indexed = await app.client.execute_workflow(
        "IndexResourcesWorkflow",
        IndexInput(),
        id=f"bench/{tag}/index-all",
        task_queue="default",
        result_type=IndexResult,
    )
    return indexed.indexed


async def embed_all(app, runs: list[Any], tag: str) -> tuple[int, float]:
    """Wait for the embed children the runs left running, then one embed pass over every source
    (edX, as for the index). Returns (embedded, when the first child started: perf_counter)."""
    from learnflow.contracts import EmbedInput, EmbedResult

    children = [
        app.client.get_workflow_handle(r.embed_workflow_id, result_type=EmbedResult)
        for r in runs
        if r.embed_workflow_id
    ]
    starts = [(await h.describe()).start_time.timestamp() for h in children]
    # describe() gives wall-clock starts: shift the earliest onto the perf_counter timeline
    first_start = time.perf_counter() - (time.time() - min(starts)) if starts else None
    embedded = sum(r.embedded for r in runs)  # runs before embed-async-v1 embedded inline
    for h in children:
        embedded += (await h.result()).embedded
    rest = await app.client.execute_workflow(
        "EmbedResourcesWorkflow",
        EmbedInput(),
        id=f"bench/{tag}/embed-all",
        task_queue="embeddings",
        result_type=EmbedResult,
    )
    return embedded + rest.embedded, first_start if first_start is not None else time.perf_counter()


ALONE_BATCH = 256  # the embed activity's page size (EmbedInput.batch_size)


async def encoder_alone(app, limit: int) -> dict[str, Any]:
    """The configured encoder on the pipeline's own embedding texts, nothing else running.

    The sample is whole pages of the pass (256 consecutive published ids, as `embed_pending`
    reads them) spread evenly over the catalog: the first `limit` ids alone are one source's
    (MITx Online, 39.5 tokens a text on average against 46.6 over both sources at 10k), which
    made the encoder look faster than it is on what the pipeline encodes."""
    from learnflow.models import Resource
    from learnflow.search_doc import embedding_text, to_search_document

    async with app.stores.pool.acquire() as conn:
        ids = [
            r["id"]
            for r in await conn.fetch(
                "SELECT id FROM learning_resource WHERE published ORDER BY id"
            )
        ]
        # full pages only: the pass's last page is a remainder
        pages = [
            ids[i : i + ALONE_BATCH] for i in range(0, len(ids) - ALONE_BATCH + 1, ALONE_BATCH)
        ]
        pages = pages or [ids]
        want = max(1, min(len(pages), -(-limit // ALONE_BATCH)))
        chosen = [pages[round(k * (len(pages) - 1) / max(want - 1, 1))] for k in range(want)]
        rows = await conn.fetch(
            "SELECT id, data, created_on FROM learning_resource WHERE id = ANY($1::bigint[])"
            " ORDER BY id",
            [i for page in chosen for i in page],
        )
    texts = [
        embedding_text(
            to_search_document(Resource.model_validate(r["data"]), r["id"], r["created_on"])
        )
        for r in rows
    ]
    encoder = app.stores.encoder
    encoder.encode(texts[:8])  # loaded and warm, as in a running worker
    started = time.perf_counter()
    for i in range(0, len(texts), ALONE_BATCH):
        encoder.encode(texts[i : i + ALONE_BATCH])
    seconds = time.perf_counter() - started
    return {
        "encoder": app.stores.encoder_id,
        "docs": len(texts),
        "pages": len(chosen),
        "seconds": round(seconds, 2),
        "docs_per_second": round(len(texts) / seconds, 1) if seconds else None,
    }


async def store_limit(dsn: str) -> dict[str, Any]:
    """COPY + upsert of the catalog's rows with straight asyncpg into a fresh table, twice."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT platform, readable_id, resource_type, etl_source, offered_by, title, url,"
            " published, test_mode, last_modified, data::text AS data, content_hash"
            " FROM learning_resource"
        )
        records = [tuple(r) for r in rows]
        await conn.execute(
            "DROP TABLE IF EXISTS bench_resource;"
            " CREATE TABLE bench_resource (LIKE learning_resource INCLUDING ALL)"
        )
        columns = [
            "platform", "readable_id", "resource_type", "etl_source", "offered_by", "title",
            "url", "published", "test_mode", "last_modified", "data", "content_hash",
        ]  # fmt: skip

        async def upsert() -> tuple[float, int]:
            started = time.perf_counter()
            async with conn.transaction():
                await conn.execute(
                    "CREATE TEMP TABLE stage (platform text, readable_id text, resource_type text,"
                    " etl_source text, offered_by text, title text, url text, published boolean,"
                    " test_mode boolean, last_modified timestamptz, data text, content_hash text)"
                    " ON COMMIT DROP;"
                    # as the catalog's own stage (CatalogStore.upsert_resource_rows)
                    " ALTER TABLE stage ALTER COLUMN data SET STORAGE EXTERNAL"
                )
                await conn.copy_records_to_table("stage", records=records, columns=columns)
                status = await conn.execute(
                    """
                    INSERT INTO bench_resource AS lr (platform, readable_id, resource_type,
                        etl_source, offered_by, title, url, published, test_mode, last_modified,
                        data, content_hash)
                    SELECT platform, readable_id, resource_type, etl_source, offered_by, title,
                        url, published, test_mode, last_modified, data::jsonb, content_hash
                    FROM stage
                    ON CONFLICT (platform, readable_id, resource_type) DO UPDATE SET
                        title = EXCLUDED.title, data = EXCLUDED.data,
                        content_hash = EXCLUDED.content_hash, updated_on = now()
                    WHERE lr.content_hash IS DISTINCT FROM EXCLUDED.content_hash
                    """
                )
            return time.perf_counter() - started, int(status.split()[-1])

        first_s, first_rows = await upsert()
        second_s, second_rows = await upsert()
        await conn.execute("DROP TABLE bench_resource")
    finally:
        await conn.close()
    return {
        "rows": len(records),
        "insert_seconds": round(first_s, 3),
        "insert_rows_per_second": round(len(records) / first_s) if first_s else None,
        "no_change_seconds": round(second_s, 3),
        "no_change_rows_written": second_rows,
        "insert_rows_written": first_rows,
    }


async def run(
    n: int,
    page_size: int,
    encoder_sample: int,
    catalog_only: bool = False,
    workers: int | None = None,
) -> dict[str, Any]:
    """One round on fresh services. `workers`: the default queue is served by that many
    `python -m worker --queue default` processes (bench.scaling's), not by this process, and
    the keyword index is an OpenSearch node (tantivy's writer belongs to one process)."""
    from bench.scaling import REPO, start_workers
    from devstack.harness.fixture_server import FixtureServer
    from devstack.harness.opensearch import OpenSearchNode
    from devstack.harness.postgres import DebianPostgres
    from devstack.harness.temporal import DevServer
    from devstack.system import start_app
    from learnflow.settings import reset_settings
    from learnflow.stores import reset_stores
    from sources.edx_demo import install_edx
    from sources.mitxonline_demo import install_mitxonline

    gen_started = time.perf_counter()
    catalog, total = build_catalog(n)
    generate_s = time.perf_counter() - gen_started
    work = Path(tempfile.mkdtemp(prefix="learnflow-bench-ingest-"))
    pg = DebianPostgres().start()
    temporal = DevServer(db_file=work / "temporal.db", log_file=work / "temporal.log").start()
    server = FixtureServer()  # served from its own process once the routes are in (below)
    node = OpenSearchNode() if workers else None
    app = None
    processes: list = []
    try:
        env = {
            "LEARNFLOW_ENV_FILE": "",
            "DATABASE_URL": pg.dsn,
            "TEMPORAL_ADDRESS": temporal.address,
            "DATA_DIR": str(work / "data"),
            "QDRANT_PATH": "",
            "QDRANT_URL": "",
            "HTTP_ALLOW_PRIVATE_HOSTS": "true",
            "GRPC_AUTH_ENABLED": "false",
            "BLOB_STORE_URL": str(work / "blobs"),
        }
        if node is not None:
            env.update(
                KEYWORD_BACKEND="opensearch",
                OPENSEARCH_URL=node.start(),
                OPENSEARCH_INDEX=f"bench{workers}",
                WORKER_METRICS_BIND="",
            )
        env.update(install_mitxonline(server, *catalog["mitxonline"], page_size=page_size))
        env.update(install_edx(server, *catalog["edx"], page_size=page_size))
        # The upstream is another machine in production: its JSON encoding must not share the
        # measured process's GIL (in-process, it cost the fetch ~0.2 s of each run).
        # Its catalog is fixed: each page is encoded once, on the first run; the re-run's fetch
        # then measures our client, not one upstream process encoding 2 MB pages again for both
        # sources at once (it doubled the re-run's fetch: 0.21 -> 0.55 s per source).
        server.answer_once()
        server.start_process()
        os.environ.update(env)
        reset_settings()
        await reset_stores()
        from learnflow.contracts import DEFAULT_QUEUE, EMBEDDINGS_QUEUE, TASK_QUEUES

        # --catalog-only: no worker on the embeddings queue (the embed children wait, unrun)
        skipped = {EMBEDDINGS_QUEUE} if catalog_only else set()
        if workers:
            skipped.add(DEFAULT_QUEUE)
        app = await start_app(queues=[q for q in TASK_QUEUES if q not in skipped])
        # A worker in service has its CPU pool up (cpu_pool.warm, which start_app began): wait
        # for it, so the first page does not measure the forkserver's start.
        from activities import cpu_pool

        warming = cpu_pool.warm()
        if warming is not None:
            await asyncio.to_thread(warming.join)
        if workers:  # after start_app: its process migrated the database
            logs = work / "logs"
            logs.mkdir()
            worker_env = {**os.environ, "PYTHONPATH": str(REPO)}
            processes = await start_workers(DEFAULT_QUEUE, workers, worker_env, logs)
        sources = ["mitxonline", "edx"]

        if os.environ.get("BENCH_GC_FREEZE", "1") == "1":
            # The generated catalog and the fixture routes (the upstream's data) live in the
            # worker's process only because the bench runs the worker in-process: out of the
            # collector's generations, as they would be in another machine.
            gc.collect()
            gc.freeze()
        cpu_roots = {
            "postgres (postmaster and backends)": pg.postmaster_pid(),
            "temporal dev server": temporal.proc.pid if temporal.proc else None,
        }
        cpu_before = machine_cpu.snapshot(cpu_roots)
        started = time.perf_counter()
        with machine_cpu.CollectorTime() as collector:
            first_s, first, first_ids = await ingest_all(app, sources, "first")
            first_indexed = sum(r.indexed for r in first) + await index_all(app, "first")
        catalog_s = time.perf_counter() - started  # every resource keyword-findable
        first_cpu = machine_cpu.by_process(cpu_before, machine_cpu.snapshot(cpu_roots))
        first_cpu["bench_collector"] = collector.summary()
        if catalog_only:
            embedded, vector_s, embed_s = 0, None, None
        else:
            embedded, embed_started = await embed_all(app, first, "first")
            vector_s = time.perf_counter() - started  # every resource vector-findable
            embed_s = time.perf_counter() - embed_started
        loaded = sum(r.inserted + r.updated + r.unchanged for r in first)
        stages: dict[str, float] = defaultdict(float)
        for wid in first_ids:
            for name, seconds in (await stage_times(app.client, wid)).items():
                stages[name] += seconds
        first_phases = {
            s: await phases(app.client, w) for s, w in zip(sources, first_ids, strict=True)
        }
        before = await rows_version(app.stores.pool)
        optimize_s = None
        if not catalog_only:
            # The pass ends when its points are searchable; the store's optimize runs after it,
            # in the background. Wait for it here, so its CPU is not inside the encoder's own
            # measurement (which would flatter share_of_encoder) nor the re-run's.
            optimize_started = time.perf_counter()
            await app.stores.vector.optimize()
            optimize_s = time.perf_counter() - optimize_started
        alone = None if catalog_only else await encoder_alone(app, min(embedded, encoder_sample))

        started = time.perf_counter()
        _, rerun, rerun_ids = await ingest_all(app, sources, "rerun")
        rerun_indexed = sum(r.indexed for r in rerun) + await index_all(app, "rerun")
        rerun_catalog_s = time.perf_counter() - started
        if catalog_only:
            rerun_embedded, rerun_vector_s = 0, None
        else:
            rerun_embedded, _ = await embed_all(app, rerun, "rerun")
            rerun_vector_s = time.perf_counter() - started
        after = await rows_version(app.stores.pool)
        rewritten = {
            table: sum(1 for k, x in after[table].items() if before[table].get(k) != x)
            for table in before
        }
        rerun_phases = {
            s: await phases(app.client, w) for s, w in zip(sources, rerun_ids, strict=True)
        }
        rerun_steps = {
            s: await steps(app.client, w) for s, w in zip(sources, rerun_ids, strict=True)
        }
        rerun_steps["index-all"] = await steps(app.client, "bench/rerun/index-all")
        rerun_stages: dict[str, float] = defaultdict(float)
        for wid in rerun_ids:
            for name, seconds in (await stage_times(app.client, wid)).items():
                rerun_stages[name] += seconds

        limit = await store_limit(pg.dsn)
        catalog_rate = loaded / catalog_s
        return {
            "benchmark": "ingest",
            "resources_requested": n,
            "resources_generated": total,
            "page_size": page_size,
            "catalog_only": catalog_only,
            # default-queue worker processes (None: the default queue ran in the bench's process)
            "workers": workers,
            "keyword_backend": "opensearch" if workers else "tantivy",
            "generate_seconds": round(generate_s, 2),
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "first": {
                # the catalog path: fetch → transform → Postgres → keyword index
                "seconds": round(catalog_s, 2),
                "resources": loaded,
                "resources_per_second": round(catalog_rate, 1),
                "share_of_store": round(catalog_rate / limit["insert_rows_per_second"], 3),
                "ingest_workflows_seconds": round(first_s, 2),
                "indexed": first_indexed,
                "pages": sum(r.pages for r in first),
                "outcomes": {r.source: r.outcome for r in first},
                "time_to_keyword_findable_seconds": round(catalog_s, 2),
                "time_to_vector_findable_seconds": _round(vector_s),
                # wall seconds per source (the sources run side by side)
                "phase_seconds": first_phases,
                # per source, each activity or child as [name, scheduled, started, completed]
                "steps": {
                    s: await steps(app.client, w) for s, w in zip(sources, first_ids, strict=True)
                },
                "activity_seconds_by_stage": {k: round(v, 2) for k, v in sorted(stages.items())},
                # the whole machine's CPU over the same window, by process (bench.machine_cpu)
                "cpu_seconds_by_process": first_cpu,
            },
            "embed": _embed_figures(alone, embedded, embed_s, vector_s, catalog_s, optimize_s),
            "rerun": {
                "seconds": round(rerun_catalog_s, 2),
                "share_of_first": round(rerun_catalog_s / catalog_s, 3),
                "with_embedding_seconds": _round(rerun_vector_s),
                "with_embedding_share_of_first": _round(
                    rerun_vector_s and vector_s and rerun_vector_s / vector_s, 3
                ),
                "rows_rewritten": rewritten,
                "inserted_or_updated": sum(r.inserted + r.updated for r in rerun),
                "indexed": rerun_indexed,
                "embedded": rerun_embedded,
                "phase_seconds": rerun_phases,
                # per source: [activity, scheduled, started, completed] from the run's start
                "steps": rerun_steps,
                "activity_seconds_by_stage": {
                    k: round(v, 2) for k, v in sorted(rerun_stages.items())
                },
            },
            "store_limit": limit,
            "goals": {
                "resources_per_second": 2000,
                "share_of_store_min": 0.25,
                "share_of_encoder_min": 0.8,
                "rerun_share_max": 0.10,
                "rows_rewritten": 0,
            },
            "machine": machine(),
        }
    finally:
        for proc in processes:
            proc.stop()
        if app is not None:
            await app.stop()
        await reset_stores()
        if node is not None:
            node.stop()
        server.stop()
        temporal.stop()
        pg.stop()


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def _embed_figures(
    alone: dict[str, Any] | None,
    embedded: int,
    embed_s: float | None,
    vector_s: float | None,
    catalog_s: float,
    optimize_s: float | None = None,
) -> dict[str, Any]:
    """The embedding catch-up's figures; `--catalog-only` ran no embeddings worker: none."""
    if alone is None or not embed_s or vector_s is None:
        return {"skipped": "--catalog-only: no embeddings worker ran (catalog path + re-run only)"}
    embed_rate = embedded / embed_s
    return {
        "encoder": alone["encoder"],
        "embedded": embedded,
        # from the first embed child's start to the last embedding written
        "seconds": round(embed_s, 2),
        "docs_per_second": round(embed_rate, 1),
        "encoder_alone": alone,
        "share_of_encoder": round(embed_rate / alone["docs_per_second"], 3)
        if alone["docs_per_second"]
        else None,
        "after_catalog_seconds": round(vector_s - catalog_s, 2),
        # the vector store's optimize after the pass (HNSW, payload indexes), waited for by the
        # bench only: points are searchable before it, by brute force over unindexed segments
        "optimize_after_pass_seconds": _round(optimize_s),
    }


def scaling(one: dict[str, Any], many: dict[str, Any]) -> dict[str, Any]:
    """The catalog path's and the re-run's figures with N default-queue processes ÷ with 1
    (each round on fresh services, same catalog)."""
    first = [r["first"]["resources_per_second"] for r in (one, many)]
    rerun = [r["rerun"]["seconds"] for r in (one, many)]
    return {
        "workers": many["workers"],
        "first_resources_per_second": {"1": first[0], str(many["workers"]): first[1]},
        "first_speedup": round(first[1] / first[0], 2),
        "rerun_seconds": {"1": rerun[0], str(many["workers"]): rerun[1]},
        "load_average_at_end": {
            "1": one["load_average"],
            str(many["workers"]): many["load_average"],
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, default=10_000)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument(
        "--encoder-sample",
        type=int,
        default=2048,
        help="texts for the encoder-alone figure (whole 256-text pages spread over the catalog)",
    )
    parser.add_argument(
        "--catalog-only",
        action="store_true",
        help="no embeddings worker: the catalog path and the re-run only (embedding 100k with"
        " the default encoder takes ~45 min here); the output's embed section says so",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="serve the default queue by N worker processes (python -m worker --queue default;"
        " keyword index on an OpenSearch node); N > 1 first runs a round with 1 process on"
        " fresh services and adds `scaling` (N processes ÷ 1)",
    )
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    args = parser.parse_args(argv)
    from learnflow.logging import configure_logging

    configure_logging(level="WARNING")  # logs on stderr; the JSON object alone on stdout
    sized = (args.resources, args.page_size, args.encoder_sample, args.catalog_only)
    baseline = None
    if args.workers and args.workers > 1:
        baseline = asyncio.run(run(*sized, workers=1))
    result = asyncio.run(run(*sized, workers=args.workers))
    if baseline is not None:
        result["scaling"] = scaling(baseline, result)
    print(json.dumps(result, indent=None if args.json else 2))
    sys.stdout.flush()


if __name__ == "__main__":
    main()

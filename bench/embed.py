"""Benchmark embedding catch-up against the encoder alone: `python -m bench.embed --resources N`.

Issue #17 (b): with the default encoder the embeddings workflow may add at most 20% over the
encoder's own throughput. The run: a throwaway Postgres + Temporal dev server, learnflow's workers
in-process (`devstack.system.start_app`, embedded Qdrant), N MITx Online resources written into
the catalog directly (no ingest run, so no embed child competes), then

* `encoder_alone`: the configured encoder (QDRANT_ENCODER) on the pipeline's own embedding texts
  for every resource, in the embed activity's batches, nothing else running, just before and
  just after the pipeline (their mean: the machine's load drifts);
* `pipeline`: one `EmbedResourcesWorkflow` over the whole catalog on the `embeddings` queue —
  the embedding documents built from Postgres, encoding, Qdrant upserts with payloads,
  `embedding_state`, heartbeats; until every resource is vector-findable (the probes query
  right then; the store's optimize is left to run in the background, as a Qdrant server's);
* `optimize_after_pass`: that deferred optimize, run to its end before the encoder is measured
  again (so it does not share the cores with it), its seconds and CPU;
* `share_of_encoder`: pipeline docs/s ÷ encoder-alone docs/s (goal ≥ 0.8).
* `cpu_ms_per_doc`: this process's CPU (every thread: workers, encoder, embedded Qdrant, and its
  optimize's child process; not the Postgres and Temporal servers) per document, for the
  pipeline (the pass and its deferred optimize; `pass_only` without the optimize) and the
  encoder alone, and `cpu_share` = alone ÷ pipeline: what the pass adds in CPU, which moves far
  less than the wall-clock share with the neighbours' load on a shared machine;
  `pass_event_loop`, the event loop's thread alone during the pass (the workers run on it: the
  rows read and decoded, the documents and payloads built, the marks, Temporal's handling; not
  the encoder's or the vector store's threads).

Prints one JSON object with the load average at start.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def process_cpu() -> float:
    """CPU seconds of this process, every thread, and of its children that ended (the vector
    store's optimize runs in one: `edge_optimize`); not the servers, which are still running."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def catalog_resources(n: int) -> list[Any]:
    """About n MITx Online course resources, from the demo generator through the real transform."""
    from sources.mitxonline import transform_course
    from sources.mitxonline_demo import mitxonline_catalog

    courses, _ = mitxonline_catalog(n)
    return [r for r in (transform_course(c) for c in courses) if r is not None][:n]


async def encoder_alone(app, batch_size: int) -> dict[str, Any]:
    """The configured encoder on every published resource's embedding text, in the activity's
    batches: what the pipeline would reach if it added nothing."""
    from learnflow.search_doc import embedding_text, search_document

    async with app.stores.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT id, data, created_on FROM learning_resource WHERE published ORDER BY id"
        )
    texts = [embedding_text(search_document(r["data"], r["id"], r["created_on"])) for r in rows]
    encoder = app.stores.encoder
    cpu = process_cpu()
    started = time.perf_counter()
    for i in range(0, len(texts), batch_size):
        encoder.encode(texts[i : i + batch_size])
    seconds = time.perf_counter() - started
    return {
        "cpu_ms_per_doc": round((process_cpu() - cpu) * 1000 / len(texts), 3),
        "encoder": app.stores.encoder_id,
        "docs": len(texts),
        "seconds": round(seconds, 2),
        "docs_per_second": round(len(texts) / seconds, 1) if seconds else None,
    }


async def vector_findable(app, resource: Any) -> bool:
    """The resource's point answers a vector query for its own title (narrowed to its id: the
    generated catalog holds many near-identical titles)."""
    async with app.stores.pool.acquire() as conn:
        rid = await conn.fetchval(
            "SELECT id FROM learning_resource WHERE readable_id = $1", resource.readable_id
        )
    vector = app.stores.encoder.encode([resource.title])[0]
    found = await app.stores.vector.search(vector, {"id": [str(rid)]}, limit=1)
    return [h.id for h in found.hits] == [rid]


async def run(n: int, batch_size: int) -> dict[str, Any]:
    from devstack.harness.postgres import DebianPostgres
    from devstack.harness.temporal import DevServer
    from devstack.system import start_app
    from learnflow.contracts import EmbedInput, EmbedResult
    from learnflow.settings import reset_settings
    from learnflow.stores import reset_stores

    load_average = [round(x, 2) for x in os.getloadavg()]
    resources = catalog_resources(n)
    work = Path(tempfile.mkdtemp(prefix="learnflow-bench-embed-"))
    pg = DebianPostgres().start()
    temporal = DevServer(db_file=work / "temporal.db", log_file=work / "temporal.log").start()
    app = None
    try:
        os.environ.update(
            {
                "LEARNFLOW_ENV_FILE": "",
                "DATABASE_URL": pg.dsn,
                "TEMPORAL_ADDRESS": temporal.address,
                "DATA_DIR": str(work / "data"),
                "QDRANT_PATH": "",
                "QDRANT_URL": "",
                "GRPC_AUTH_ENABLED": "false",
                "BLOB_STORE_URL": str(work / "blobs"),
            }
        )
        reset_settings()
        await reset_stores()
        app = await start_app()
        for i in range(0, len(resources), 1000):
            await app.stores.catalog.upsert_resources("bench-embed", resources[i : i + 1000])
        app.stores.encoder.encode(["warm up"] * 8)  # loaded and warm, as in a running worker
        before = await encoder_alone(app, batch_size)

        cpu, loop_cpu = process_cpu(), time.thread_time()
        started = time.perf_counter()
        result = await app.client.execute_workflow(
            "EmbedResourcesWorkflow",
            EmbedInput(batch_size=batch_size),
            id="bench/embed/all",
            task_queue="embeddings",
            result_type=EmbedResult,
        )
        seconds = time.perf_counter() - started
        pass_cpu, loop_cpu = process_cpu() - cpu, time.thread_time() - loop_cpu
        probes = [resources[0], resources[len(resources) // 2], resources[-1]]
        findable = [await vector_findable(app, r) for r in probes]  # right at the pass's end
        optimize_cpu, optimize_started = process_cpu(), time.perf_counter()
        await app.stores.vector.optimize()  # the deferred one, now, and until it ends
        optimize_s = time.perf_counter() - optimize_started
        optimize_cpu = process_cpu() - optimize_cpu
        pipeline_cpu = (pass_cpu + optimize_cpu) * 1000 / max(result.embedded, 1)
        rate = result.embedded / seconds if seconds else None
        # the encoder alone before and after the pass: the machine's load drifts, the mean of
        # the two brackets the pass
        after = await encoder_alone(app, batch_size)
        alone = {
            **before,
            "seconds": round((before["seconds"] + after["seconds"]) / 2, 2),
            "docs_per_second": round((before["docs_per_second"] + after["docs_per_second"]) / 2, 1),
            "docs_per_second_before_after": [before["docs_per_second"], after["docs_per_second"]],
        }
        return {
            "benchmark": "embed",
            "load_average": load_average,
            "resources": len(resources),
            "batch_size": batch_size,
            "encoder_alone": alone,
            "pipeline": {
                "embedded": result.embedded,
                "seconds": round(seconds, 2),
                "docs_per_second": round(rate, 1) if rate else None,
                "vector_findable_probes": findable,
            },
            "optimize_after_pass": {
                "seconds": round(optimize_s, 2),
                "cpu_seconds": round(optimize_cpu, 2),
            },
            "share_of_encoder": round(rate / alone["docs_per_second"], 3)
            if rate and alone["docs_per_second"]
            else None,
            "goal_share_of_encoder_min": 0.8,
            "cpu_ms_per_doc": {
                "pipeline": round(pipeline_cpu, 3),
                "pass_only": round(pass_cpu * 1000 / max(result.embedded, 1), 3),
                "pass_event_loop": round(loop_cpu * 1000 / max(result.embedded, 1), 3),
                "alone_before_after": [before["cpu_ms_per_doc"], after["cpu_ms_per_doc"]],
                "cpu_share": round(
                    (before["cpu_ms_per_doc"] + after["cpu_ms_per_doc"]) / 2 / pipeline_cpu, 3
                ),
            },
        }
    finally:
        if app is not None:
            await app.stop()
        await reset_stores()
        temporal.stop()
        pg.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=256, help="EmbedInput.batch_size")
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    args = parser.parse_args(argv)
    from learnflow.logging import configure_logging

    configure_logging(level="WARNING")
    result = asyncio.run(run(args.resources, args.batch_size))
    print(json.dumps(result, indent=None if args.json else 2))
    sys.stdout.flush()


if __name__ == "__main__":
    main()

"""In-process CPU per resource of `load_page`'s worker part, no services:
`python -m bench.load_page_cpu --resources 10000 --json`.

The same pages `bench.ingest` loads (its catalog generator, page size and fixture upstream, fetched
through the sources' own extract), then, page by page as `load_page` runs them: the transform
(parse + the source's transform + blocklist), the COPY rows, the keyword documents, and the
tantivy add + commit (an embedded index in a temporary directory). Process time per stage, in µs
per resource, best of `--repeat` passes (the machine is shared: the least disturbed pass).

* `--profile N`: a cProfile of one pass over transform + rows + documents, the top N functions.
* `--digest PATH`: every row, content hash and keyword document of the pages, as JSON lines, to
  compare two commits' outputs byte for byte (`cmp`).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import hashlib
import io
import json
import os
import pstats
import tempfile
import time
from typing import Any


async def fetch_pages(
    n: int, page_size: int
) -> list[tuple[str, str, str, bytes, list[tuple[str, bytes]]]]:
    """(source, kind, page key, raw, context pages as (kind, raw)) of every page bench.ingest's
    sources give."""
    from bench.ingest import build_catalog
    from devstack.harness.environ import environ
    from devstack.harness.fixture_server import FixtureServer
    from learnflow.http import SourceHttp
    from learnflow.settings import get_settings, reset_settings
    from sources import get_source
    from sources.base import ExtractContext
    from sources.edx_demo import install_edx
    from sources.mitxonline_demo import install_mitxonline

    catalog, _ = build_catalog(n)
    server = FixtureServer()
    env = {"LEARNFLOW_ENV_FILE": "", "HTTP_ALLOW_PRIVATE_HOSTS": "true"}
    env.update(install_mitxonline(server, *catalog["mitxonline"], page_size=page_size))
    env.update(install_edx(server, *catalog["edx"], page_size=page_size))
    server.start()
    pages = []
    with environ(env):
        reset_settings()
        try:
            for name in ("mitxonline", "edx"):
                source, settings = get_source(name), get_settings()
                http = SourceHttp(
                    source.allowed_hosts(settings) or None,
                    allow_private=True,
                    max_bytes=settings.http_max_response_bytes,
                )
                got = []
                try:
                    async for page in source.extract(ExtractContext(http=http, settings=settings)):
                        got.append((page.kind, page.body))
                finally:
                    await http.aclose()
                for i, (kind, body) in enumerate(got):
                    wanted = source.context_kinds.get(kind, ())
                    context = [(k, b) for k, b in got if k in wanted]
                    pages.append((name, kind, f"raw/{name}/bench/{i:05d}-{kind}", body, context))
        finally:
            server.stop()
    reset_settings()
    return pages


def run_pass(pages, index, digest: io.TextIOBase | None = None) -> dict[str, float]:
    """One pass as load_page runs a page; process seconds per stage and the resource count.
    As in a worker that meets the pages first: no context page is held indexed at the start
    (`ingest_cpu.indexed_context`), the course pages are indexed as they are transformed."""
    from activities import ingest_cpu
    from activities.ingest_cpu import _transform, page_documents, placed_document
    from learnflow.db.catalog import resource_rows
    from learnflow.http import collector_paused

    seconds = {"transform": 0.0, "rows": 0.0, "documents": 0.0, "tantivy": 0.0}
    resources = 0
    next_id = 1
    clock = time.process_time
    created = None
    ingest_cpu.forget_indexed()
    for source, kind, key, raw, context in pages:
        # what the fetch recorded and load_page's read of the page gives the transform
        sha = hashlib.sha256(raw).hexdigest()
        kinds = [k for k, _ in context]
        shas = [hashlib.sha256(b).hexdigest() for _, b in context]
        context_raw = [
            ingest_cpu.indexed_context(source, k, d) or b
            for (k, b), d in zip(context, shas, strict=True)
        ]
        with collector_paused():  # as transform_to_load runs them
            t0 = clock()
            out = _transform(source, kind, key, raw, context_raw, b"", sha, kinds, shas)
            t1 = clock()
            rows = resource_rows(out.resources)
            t2 = clock()
            documents = page_documents(out.resources)
            t3 = clock()
            # as transform_to_load ends: the models are dropped before the collector is back on
            count, rest = len(out.resources), out.model_copy(update={"resources": []})
            del out
        if created is None:
            from datetime import UTC, datetime

            created = datetime(2026, 1, 1, tzinfo=UTC)
        placed = []
        for doc in documents.values():
            placed.append(placed_document(doc, next_id, created))
            next_id += 1
        index._upsert_sync(placed)
        t4 = clock()
        seconds["transform"] += t1 - t0
        seconds["rows"] += t2 - t1
        seconds["documents"] += t3 - t2
        seconds["tantivy"] += t4 - t3
        resources += count
        if digest is not None:
            for row in rows:
                digest.write(json.dumps(row, sort_keys=True, default=str) + "\n")
            for natural_key, doc in documents.items():
                digest.write(json.dumps([natural_key, doc], sort_keys=True, default=str) + "\n")
            digest.write(rest.model_dump_json() + "\n")
    return {"resources": resources, **seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resources", type=int, default=10_000)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", type=int, default=0, metavar="N")
    parser.add_argument("--digest", default=None, metavar="PATH")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from learnflow.stores.tantivy_index import TantivyKeywordIndex

    pages = asyncio.run(fetch_pages(args.resources, args.page_size))
    passes: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(
        prefix="learnflow-load-cpu-", ignore_cleanup_errors=True
    ) as tmp:
        index = TantivyKeywordIndex(tmp)
        if args.digest:
            with open(args.digest, "w") as fh:
                run_pass(pages, index, fh)
        for _ in range(args.repeat):
            passes.append(run_pass(pages, index))
        profile_text = None
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            run_pass(pages, index)
            profiler.disable()
            buf = io.StringIO()
            pstats.Stats(profiler, stream=buf).sort_stats("cumulative").print_stats(args.profile)
            buf.write("\n")
            pstats.Stats(profiler, stream=buf).sort_stats("tottime").print_stats(args.profile)
            profile_text = buf.getvalue()
    n = passes[0]["resources"]
    stages = ("transform", "rows", "documents", "tantivy")
    best = min(passes, key=lambda p: sum(p[s] for s in stages))
    per = {s: round(best[s] / n * 1e6, 1) for s in stages}
    result = {
        "benchmark": "load_page_cpu",
        "pages": len(pages),
        "resources": n,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "us_per_resource": {**per, "total": round(sum(per.values()), 1)},
        "passes_us_total": [round(sum(p[s] for s in stages) / n * 1e6, 1) for p in passes],
    }
    if profile_text:
        print(profile_text)
    print(json.dumps(result, indent=None if args.json else 2))


if __name__ == "__main__":
    main()

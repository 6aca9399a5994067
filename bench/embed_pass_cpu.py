"""In-process CPU per document of the embedding pass's own work, no services and no encoder:
`python -m bench.embed_pass_cpu --resources 3000 --json`.

`embed_pending` spends CPU of its own on each document besides the encoder's: the catalog row's
jsonb decoded (the pool's codec, on the event loop), the page built (`_embed_batch`: the search
document, the embedding text, its checksum) and written (`_write_embed_batch`: the points with
their payloads, the embedding-state marks; the stores here are stand-ins that take the writes
and do nothing). This times those stages over stored rows made from bench.embed's corpus (MITx
Online courses through the real transform, stored as the loader stores them and read back as
Postgres's jsonb gives them: keys reordered, its text decoded by `json.loads`), every 25th one
unpublished (a removal), in pages of `--batch-size`. Process time per stage, µs per document,
the median of `--repeat` passes (the machine is shared).

* `--digest PATH`: every point's key and payload, every mark (id, text checksum) and every
  removal of one pass, as JSON lines, to compare two commits' outputs byte for byte (`cmp`).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import hashlib
import io
import json
import os
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

STAGES = ("decode", "build", "write")


def jsonb_order(value: Any) -> Any:
    """`value` with every object's keys in the order Postgres's jsonb gives them back (shorter
    keys first, then by bytes): a pass must not depend on the order the loader wrote."""
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (len(k.encode()), k.encode()))
        return {k: jsonb_order(value[k]) for k in keys}
    if isinstance(value, list):
        return [jsonb_order(v) for v in value]
    return value


def stored_rows(n: int) -> list[dict[str, Any]]:
    """n rows as `pending_embedding` returns them, the jsonb `data` still as its text."""
    from bench.embed import catalog_resources

    created = datetime(2026, 1, 1, tzinfo=UTC)
    rows = []
    for i, res in enumerate(catalog_resources(n), start=1):
        data, _, _ = res.stored_form()
        rows.append(
            {
                "id": i,
                "data": json.dumps(jsonb_order(data)),  # jsonb's text: ", " and ": "
                "published": i % 25 != 0,
                "created_on": created + timedelta(minutes=i),
                "text_checksum": None,
                "stored_checksum": None,
            }
        )
    return rows


class _Stores:
    """The stores the pass reads from and writes to: the catalog gives the rows' pages, their
    jsonb decoded as the pool's codec does (`json.loads`, timed on its own), and the writes are
    kept."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        self.ids = [row["id"] for row in rows]
        self.decode_seconds = 0.0
        self.points: list[Any] = []
        self.deleted: list[str] = []
        self.marks: list[tuple[int, str]] = []
        self.removed: list[int] = []
        self.encoder_id = "bench"
        self.vector = self
        self.catalog = self

    async def pending_embedding(self, etl_source, after_id: int, limit: int, encoder: str):
        started = time.process_time()
        first = bisect.bisect_right(self.ids, after_id)
        page = self.rows[first : first + limit]
        decoded = [{**row, "data": json.loads(row["data"])} for row in page]
        self.decode_seconds += time.process_time() - started
        return decoded

    async def upsert(self, points) -> None:
        self.points.extend(points)

    async def delete(self, keys) -> None:
        self.deleted.extend(keys)

    async def mark_embedded(self, items, removed=(), encoder: str = "") -> None:
        self.marks.extend(items)
        self.removed.extend(removed)


async def run_pass(
    rows: list[dict[str, Any]], batch_size: int, dim: int = 384
) -> tuple[dict[str, float], _Stores]:
    """One pass over `rows` as `embed_pending` makes it, page by page, without the encoder:
    process seconds per stage, and what it wrote."""
    from collections import defaultdict

    from activities.search import _read_embed_batch, _write_embed_batch
    from learnflow.contracts import EmbedResult

    clock = time.process_time
    stores = _Stores(rows)
    result = EmbedResult()
    timings: dict[str, float] = defaultdict(float)
    read = write = 0.0
    after_id = 0
    while True:
        t0 = clock()
        batch = await _read_embed_batch(stores, None, after_id, batch_size, timings)
        t1 = clock()
        read += t1 - t0
        if batch is None:
            break
        vectors = np.zeros((len(batch.to_embed), dim), dtype=np.float32)
        t2 = clock()
        await _write_embed_batch(stores, batch, vectors, result, timings)
        write += clock() - t2
        after_id = batch.last_id
    decode = stores.decode_seconds
    return {"decode": decode, "build": read - decode, "write": write}, stores


def write_digest(writes: _Stores, out: io.TextIOBase) -> None:
    for point in writes.points:
        out.write(json.dumps(["point", point.key, point.payload], sort_keys=True) + "\n")
    for rid, checksum in writes.marks:
        out.write(json.dumps(["mark", rid, checksum]) + "\n")
    for key in writes.deleted:
        out.write(json.dumps(["delete", key]) + "\n")
    for rid in writes.removed:
        out.write(json.dumps(["removed", rid]) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resources", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--digest", default=None, metavar="PATH")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    rows = stored_rows(args.resources)
    passes = []
    digest = None
    for _ in range(args.repeat):
        seconds, writes = asyncio.run(run_pass(rows, args.batch_size))
        passes.append(seconds)
        if digest is None:
            buf = io.StringIO()
            write_digest(writes, buf)
            digest = buf.getvalue()
    if args.digest:
        with open(args.digest, "w") as fh:
            fh.write(digest or "")
    n = len(rows)
    per = {s: round(statistics.median(p[s] for p in passes) / n * 1e6, 1) for s in STAGES}
    totals = [round(sum(p[s] for s in STAGES) / n * 1e6, 1) for p in passes]
    result = {
        "benchmark": "embed_pass_cpu",
        "resources": n,
        "batch_size": args.batch_size,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "us_per_doc": {**per, "own": round(per["build"] + per["write"], 1)},
        "passes_us_total": totals,
        "digest_sha256": hashlib.sha256((digest or "").encode()).hexdigest(),
    }
    print(json.dumps(result, indent=None if args.json else 2))


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        main()

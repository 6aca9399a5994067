"""`bench.embed_pass_cpu` times the embed pass's own CPU stages over stored rows, no services,
and writes every output the pass made (the before/after comparison of a CPU cut)."""

from __future__ import annotations

import asyncio
import io
import json

from bench.embed_pass_cpu import run_pass, stored_rows, write_digest


def test_a_pass_times_every_stage_and_writes_every_output():
    rows = stored_rows(60)
    seconds, writes = asyncio.run(run_pass(rows, 16))
    assert all(seconds[stage] > 0 for stage in ("decode", "build", "write"))
    published = [row for row in rows if row["published"]]
    assert 0 < len(published) < len(rows)  # removals too
    digest = io.StringIO()
    write_digest(writes, digest)
    lines = [json.loads(line) for line in digest.getvalue().splitlines()]
    points = [x for x in lines if x[0] == "point"]
    marks = [x for x in lines if x[0] == "mark"]
    assert [p[2]["resource_id"] for p in points] == [row["id"] for row in published]
    assert [m[1] for m in marks] == [row["id"] for row in published]
    assert all(len(m[2]) == 32 for m in marks)  # the embedding text's md5
    assert len([x for x in lines if x[0] == "delete"]) == len(rows) - len(published)
    assert all(json.loads(p[2]["doc"])["key"] == p[1] for p in points)

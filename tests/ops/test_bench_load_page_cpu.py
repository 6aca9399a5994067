"""`bench.load_page_cpu` times load_page's CPU stages over bench.ingest's pages, no services, and
writes every output it made (the before/after comparison of a CPU cut)."""

from __future__ import annotations

import asyncio
import io
import json
import os

from bench.load_page_cpu import fetch_pages, run_pass
from learnflow.stores.tantivy_index import TantivyKeywordIndex


def test_a_pass_times_every_stage_and_writes_every_output(tmp_path):
    before = dict(os.environ)
    pages = asyncio.run(fetch_pages(240, 50))
    assert dict(os.environ) == before  # the fixture upstream's settings do not leak
    kinds = {(source, kind) for source, kind, *_ in pages}
    assert {("mitxonline", "courses"), ("edx", "courses"), ("edx", "programs")} <= kinds
    digest = io.StringIO()
    result = run_pass(pages, TantivyKeywordIndex(tmp_path), digest)
    assert result["resources"] >= 200
    assert all(result[stage] > 0 for stage in ("transform", "rows", "documents", "tantivy"))
    lines = [json.loads(line) for line in digest.getvalue().splitlines()]
    rows = [x for x in lines if isinstance(x, dict) and "content_hash" in x]
    assert len(rows) == result["resources"]
    assert all(len(r["content_hash"]) == 64 for r in rows)

"""`bench.all --only X` refreshes X in the report and keeps every other benchmark's figures."""

from __future__ import annotations

from bench.all import markdown, merge_partial


def test_a_partial_run_replaces_its_entries_and_says_when():
    previous = {
        "finished": "2026-11-25T13:37:00+00:00",
        "machine": {"git_commit": "old"},
        "benchmarks": {
            "search": {"ok": True, "result": {"keyword": {"p50_ms": 2.6}}},
            "relevance": {"ok": False, "error": "timeout"},
        },
    }
    partial = {
        "finished": "2026-12-04T20:40:00+00:00",
        "machine": {"git_commit": "new"},
        "benchmarks": {
            "relevance": {"ok": True, "result": {"tantivy": {"goals": {"default_ndcg_at_10": 0.8}}}}
        },
    }
    merged = merge_partial(previous, partial)
    assert merged["benchmarks"]["search"] == previous["benchmarks"]["search"]
    assert (
        merged["benchmarks"]["relevance"]["result"]["tantivy"]["goals"]["default_ndcg_at_10"] == 0.8
    )
    assert merged["machine"] == {"git_commit": "old"} and merged["finished"] == previous["finished"]
    table = markdown(merged)
    assert "| 2.6 ms |" in table and "| 0.8 |" in table
    assert "Re-measured since with `--only`: relevance (2026-12-04 20:40 UTC, commit new)." in table

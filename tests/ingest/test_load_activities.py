"""The `learn load` activities and the run bookkeeping on their own (ActivityEnvironment), against
the session's real stores: `split_jsonl` cuts a file into pages whose keys a retry rewrites,
`read_jsonl_page` numbers its problems by their line in the file, and `finish_run` records the
outcome and deletes the run's raw pages and batches."""

from __future__ import annotations

import json

import pytest
from temporalio.testing import ActivityEnvironment

from activities.ingest import finish_run, start_run
from activities.load import read_jsonl_page, split_jsonl
from learnflow.contracts import (
    FetchInput,
    IngestResult,
    LoadPageInput,
    LoadResourcesInput,
    LoadSplitResult,
)
from tests.conftest import unique_id
from tests.helpers.catalog import course

pytestmark = [pytest.mark.postgres]


def _line(readable_id: str) -> str:
    return course("learn_load", readable_id, f"Course {readable_id}").model_dump_json()


async def _split(req: LoadResourcesInput) -> tuple[LoadSplitResult, list]:
    env = ActivityEnvironment()
    beats: list = []
    env.on_heartbeat = lambda *details: beats.append(details)
    return await env.run(split_jsonl, req), beats


async def test_split_pages_keep_line_numbers_and_a_retry_rewrites_the_same_keys(app):
    load_id = unique_id("load")
    lines = [_line(f"{load_id}-a"), "", "{not json", _line(f"{load_id}-b"), '{"readable_id": 1}']
    file_key = await app.stores.blobs.put(
        f"uploads/{load_id}.jsonl", ("\n".join(lines) + "\n").encode()
    )
    req = LoadResourcesInput(load_id=load_id, file_key=file_key, lines_per_page=2)

    first, beats = await _split(req)
    assert first.lines == 5  # the final newline starts no line
    assert [p.item_count for p in first.pages] == [2, 2, 1]
    assert len(beats) == 3  # one heartbeat per page: a long split shows progress
    again, _ = await _split(req)
    assert [p.key for p in again.pages] == [p.key for p in first.pages]

    # Page 2 holds lines 3 and 4: its problems are numbered in the file, not in the page.
    page = first.pages[1]
    out = await ActivityEnvironment().run(
        read_jsonl_page,
        LoadPageInput(load_id=load_id, page=page, first_line=3, file_name="courses.jsonl"),
    )
    assert out.resources == 1 and out.quarantined == 1
    assert [p.line for p in out.problems] == [3]
    batch = json.loads(await app.stores.blobs.get(out.batch_key))
    assert f"{load_id}-b" in json.dumps(batch)
    # Page 3 holds line 5: a Resource without its required fields is a problem of line 5.
    last = await ActivityEnvironment().run(
        read_jsonl_page, LoadPageInput(load_id=load_id, page=first.pages[2], first_line=5)
    )
    assert last.resources == 0 and [p.line for p in last.problems] == [5]


async def test_finish_run_records_the_outcome_and_drops_the_runs_pages(app):
    run_id = unique_id("finish")
    source = "mitxonline"
    await ActivityEnvironment().run(start_run, FetchInput(source=source, run_id=run_id))
    raw = await app.stores.blobs.put(f"raw/{source}/{run_id}/00000-courses", b"{}")
    batch = await app.stores.blobs.put(f"batch/{source}/{run_id}/00000-courses.json", b"{}")

    result = IngestResult(source=source, run_id=run_id, outcome="ok", pages=1, inserted=2)
    await ActivityEnvironment().run(finish_run, result)

    async with app.stores.pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT outcome, finished_on, counts ->> 'inserted' AS inserted FROM etl_run"
            " WHERE run_id = $1",
            run_id,
        )
    assert row["outcome"] == "ok" and row["finished_on"] is not None and row["inserted"] == "2"
    for gone in (raw, batch):
        with pytest.raises(Exception):  # each blob store says "missing" its own way
            await app.stores.blobs.get(gone)

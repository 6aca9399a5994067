"""`learn histories record`'s core against the session's real services (the `app` fixture):
it runs each table row, writes new-shaped histories only, and what it writes replays."""

from __future__ import annotations

import json

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from activities.search import index_in_line
from learn_cli.commands.histories import (
    RECORDINGS,
    Recording,
    history_files,
    history_shape,
    load_history,
    record_histories,
)
from tests.conftest import unique_id
from worker import registered_workflow_types

pytestmark = [pytest.mark.temporal, pytest.mark.postgres, pytest.mark.replay]


async def test_record_writes_replayable_histories_once_per_shape(app, tmp_path):
    rows = tuple(r for r in RECORDINGS if r.workflow_id.startswith("histories/ingest/"))
    rows += (Recording("NoSuchWorkflow", "histories/none", {}, "not registered"),)
    # Other tests of the session may have loaded the same MITx Online pages: with hashes that
    # no longer match, the first run transforms and writes its rows again (a full run).
    async with app.stores.pool.acquire() as conn:
        await conn.execute(
            "UPDATE learning_resource SET content_hash = 'stale' WHERE etl_source = 'mitxonline'"
        )
    outcomes = await record_histories(app.client, tmp_path, rows, id_suffix=unique_id("-rec"))
    # Content files other tests attached to its resources and changed since the content index's
    # watermark (a per-source pass does not move it) wait for every per-source index pass: the
    # re-run's index child too. Whether they do depends on the tests before: ask, as the run did.
    files_wait = not await index_in_line(app.stores, "mitxonline")
    by_id = {o.recording.workflow_id: o for o in outcomes}
    assert by_id["histories/none"].path is None
    assert "not registered" in by_id["histories/none"].note
    written = history_files(tmp_path)
    assert [p.name for p in written] == [
        "IngestSourceWorkflow__1.json",
        "IngestSourceWorkflow__2.json",
        "IngestSourceWorkflow__3.json",
    ]
    full, skipped, idle = (history_shape(load_history(p)) for p in written)
    # (its pages index their own rows: an index child only if the session's indexes lag)
    assert "START_CHILD_WORKFLOW_EXECUTION_INITIATED:EmbedResourcesWorkflow" in full
    assert not any(s.startswith("START_CHILD") for s in skipped)  # the edX run was skipped
    # the unchanged re-run: pages skipped and the prune run by the fetch (fetch-skips-v1,
    # fetch-prunes-v1), no embed child, and no index child unless content files wait for it
    # (rerun-idle-v1); with nothing to index, the fetch records the outcome too
    # (fetch-finishes-v1): one activity
    assert "ACTIVITY_TASK_SCHEDULED:prune_source" in full
    assert "START_CHILD_WORKFLOW_EXECUTION_INITIATED:EmbedResourcesWorkflow" not in idle
    index_child = "START_CHILD_WORKFLOW_EXECUTION_INITIATED:IndexResourcesWorkflow" in idle
    assert index_child == files_wait, (files_wait, idle)
    idle_activities = [s for s in idle if s.startswith("ACTIVITY_TASK_SCHEDULED:")]
    finish = ["ACTIVITY_TASK_SCHEDULED:finish_run"] if index_child else []
    assert idle_activities == ["ACTIVITY_TASK_SCHEDULED:fetch_source_pages", *finish], idle
    # encoded as the server stores it: payloads are base64 JSON, not decoded objects
    first = json.loads(written[0].read_text())["events"][0]
    payload = first["workflowExecutionStartedEventAttributes"]["input"]["payloads"][0]
    assert set(payload) == {"metadata", "data"}

    replayer = Replayer(
        workflows=list(registered_workflow_types().values()),
        data_converter=pydantic_data_converter,
    )
    for path in written:
        await replayer.replay_workflow(load_history(path))

    # the same runs again: same shapes, nothing new written
    again = await record_histories(app.client, tmp_path, rows[:3], id_suffix=unique_id("-rec"))
    assert all(o.path is None and "same commands" in o.note for o in again)
    assert len(history_files(tmp_path)) == 3

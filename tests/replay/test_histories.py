"""`learn histories record`'s core against the session's real services (the `app` fixture):
it runs each table row, writes new-shaped histories only, and what it writes replays."""

from __future__ import annotations

import json

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

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
    rows = tuple(r for r in RECORDINGS if r.workflow_id in ("histories/ingest/mitxonline",
                                                            "histories/ingest/edx"))  # fmt: skip
    rows += (Recording("NoSuchWorkflow", "histories/none", {}, "not registered"),)
    outcomes = await record_histories(app.client, tmp_path, rows, id_suffix=unique_id("-rec"))
    by_id = {o.recording.workflow_id: o for o in outcomes}
    assert by_id["histories/none"].path is None
    assert "not registered" in by_id["histories/none"].note
    written = history_files(tmp_path)
    assert [p.name for p in written] == [
        "IngestSourceWorkflow__1.json",
        "IngestSourceWorkflow__2.json",
    ]
    full, skipped = (history_shape(load_history(p)) for p in written)
    assert "START_CHILD_WORKFLOW_EXECUTION_INITIATED:IndexResourcesWorkflow" in full
    assert not any(s.startswith("START_CHILD") for s in skipped)  # the edX run was skipped
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
    again = await record_histories(app.client, tmp_path, rows[:2], id_suffix=unique_id("-rec"))
    assert all(o.path is None and "same commands" in o.note for o in again)
    assert len(history_files(tmp_path)) == 2

"""Every recorded history in tests/histories/ replays against today's workflow code, with the
worker's own data converter; and a non-deterministic edit is caught by the same replay.

New histories come from `learn histories record` (learn_cli/commands/histories.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from learn_cli.commands.histories import (
    HISTORIES_DIR,
    history_files,
    history_shape,
    load_history,
    workflow_type_of,
)
from tests.replay.variants import FetchBeforeStartRun, PatchedFetchBeforeStartRun
from worker import registered_workflow_types

pytestmark = [pytest.mark.replay]

HISTORIES = history_files()


def _replayer(*workflows: type) -> Replayer:
    # The same converter the worker's client uses (worker.connect): a different one would fail
    # to decode the recorded payloads and mask real non-determinism.
    return Replayer(
        workflows=list(workflows or registered_workflow_types().values()),
        data_converter=pydantic_data_converter,
    )


def test_histories_are_recorded():
    assert HISTORIES, f"no histories in {HISTORIES_DIR}: run `learn histories record`"


def test_every_registered_workflow_type_has_a_history():
    recorded = {workflow_type_of(p) for p in HISTORIES}
    missing = sorted(set(registered_workflow_types()) - recorded)
    assert not missing, f"no history for {missing}: run `learn histories record`"


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_history_replays(path: Path):
    history = load_history(path)
    assert history.events, path
    result = await _replayer().replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"


def _full_ingest_history():
    """The recorded IngestSourceWorkflow run that went through fetch, load and children."""
    for path in HISTORIES:
        if workflow_type_of(path) != "IngestSourceWorkflow":
            continue
        history = load_history(path)
        if "START_CHILD_WORKFLOW_EXECUTION_INITIATED:EmbedResourcesWorkflow" in history_shape(
            history
        ):
            return history
    raise AssertionError("no full IngestSourceWorkflow history recorded")


async def test_reordered_activities_fail_the_replay():
    history = _full_ingest_history()
    with pytest.raises(NondeterminismError, match="TMPRL1100"):
        await _replayer(FetchBeforeStartRun).replay_workflow(history)


async def test_the_same_edit_behind_patched_keeps_old_histories_replaying():
    for path in HISTORIES:
        if workflow_type_of(path) == "IngestSourceWorkflow":
            await _replayer(PatchedFetchBeforeStartRun).replay_workflow(load_history(path))


def test_shapes_tell_the_ingest_paths_apart():
    shapes = [
        history_shape(load_history(p))
        for p in HISTORIES
        if workflow_type_of(p) == "IngestSourceWorkflow"
    ]
    assert len(shapes) == len({tuple(s) for s in shapes}), "two files record the same path"
    fetch_records = 0
    for shape in shapes:
        activities = [s for s in shape if s.startswith("ACTIVITY_TASK_SCHEDULED:")]
        # fetch-skips-v1: the fetch records the run itself (no start_run before it)
        if "MARKER_RECORDED:core_patch:fetch-skips-v1" in shape:
            fetch_records += 1
            assert activities[0] == "ACTIVITY_TASK_SCHEDULED:fetch_source_pages"
            assert "ACTIVITY_TASK_SCHEDULED:start_run" not in activities
        else:
            assert activities[:2] == [
                "ACTIVITY_TASK_SCHEDULED:start_run",
                "ACTIVITY_TASK_SCHEDULED:fetch_source_pages",
            ]
        assert shape[-1] == "WORKFLOW_EXECUTION_COMPLETED"
    assert 0 < fetch_records < len(shapes)  # both stages recorded

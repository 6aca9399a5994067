"""What an ingestion run's Temporal history says of its time (bench.ingest, bench.scaling):
summed activity seconds, the wall time of its phases, and where an idle re-run's seconds go."""

from __future__ import annotations

from collections import defaultdict
from typing import Any


async def stage_times(client, workflow_id: str) -> dict[str, float]:
    """Summed activity durations (scheduled → completed) of a workflow and its children."""
    from temporalio.api.enums.v1 import EventType

    totals: dict[str, float] = defaultdict(float)
    handle = client.get_workflow_handle(workflow_id)
    history = await handle.fetch_history()
    scheduled: dict[int, tuple[str, float]] = {}
    children: list[str] = []
    for event in history.events:
        t = event.event_time.ToDatetime().timestamp()
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            scheduled[event.event_id] = (name, t)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            name, start = scheduled[
                event.activity_task_completed_event_attributes.scheduled_event_id
            ]
            totals[name] += t - start
        elif event.event_type == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED:
            attrs = event.child_workflow_execution_started_event_attributes
            children.append(attrs.workflow_execution.workflow_id)
    for child in children:
        for name, seconds in (await stage_times(client, child)).items():
            totals[name] += seconds
    return dict(totals)


async def phases(client, workflow_id: str) -> dict[str, float]:
    """Wall time of an IngestSourceWorkflow's phases: load (fetch → transform → upsert → prune)
    and index (its IndexResourcesWorkflow child); the embed child runs on after (embed-async-v1)."""
    from temporalio.api.enums.v1 import EventType

    history = await client.get_workflow_handle(workflow_id).fetch_history()
    events = history.events
    start = events[0].event_time.ToDatetime().timestamp()
    end = events[-1].event_time.ToDatetime().timestamp()
    children = [
        e.event_time.ToDatetime().timestamp()
        for e in events
        if e.event_type == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED
    ]
    if len(children) < 2:
        return {"total": round(end - start, 2)}
    return {
        "load": round(children[0] - start, 2),
        "index": round(children[1] - children[0], 2),
        "total": round(end - start, 2),
    }


async def steps(client, workflow_id: str) -> list[list[Any]]:
    """Where an (idle) run's wall time goes: each workflow task and activity as [name,
    scheduled, started, completed] and each child as [type, initiated, started, completed], in
    seconds from the run's start; then ["end", seconds]. scheduled -> started is Temporal's
    dispatch, started -> completed the worker's (an activity's own work, or the workflow
    code's and its task's round trip)."""
    from temporalio.api.enums.v1 import EventType

    history = await client.get_workflow_handle(workflow_id).fetch_history()
    start = history.events[0].event_time.ToDatetime().timestamp()
    rows: dict[int, list[Any]] = {}
    out: list[list[Any]] = []
    for e in history.events:
        t = round(e.event_time.ToDatetime().timestamp() - start, 3)
        kind = e.event_type
        if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            rows[e.event_id] = [e.activity_task_scheduled_event_attributes.activity_type.name, t]
            out.append(rows[e.event_id])
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            rows[e.activity_task_started_event_attributes.scheduled_event_id].append(t)
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            rows[e.activity_task_completed_event_attributes.scheduled_event_id].append(t)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
            rows[e.event_id] = ["workflow task", t]
            out.append(rows[e.event_id])
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            rows[e.workflow_task_started_event_attributes.scheduled_event_id].append(t)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            rows[e.workflow_task_completed_event_attributes.scheduled_event_id].append(t)
        elif kind == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
            attrs = e.start_child_workflow_execution_initiated_event_attributes
            rows[e.event_id] = [attrs.workflow_type.name, t]
            out.append(rows[e.event_id])
        elif kind == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED:
            rows[e.child_workflow_execution_started_event_attributes.initiated_event_id].append(t)
        elif kind == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED:
            attrs = e.child_workflow_execution_completed_event_attributes
            rows[attrs.initiated_event_id].append(t)
    end = history.events[-1].event_time.ToDatetime().timestamp()
    return [*out, ["end", round(end - start, 3)]]

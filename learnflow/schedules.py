"""Schedules as code: each source declares its schedules (`SCHEDULES` in its module, collected by
`sources.all_schedules()`), the platform's are here (`PLATFORM_SCHEDULES`), and one reconcile
step makes Temporal's schedules match them (create, update, delete). Cadences are the seed's, UTC.

Every schedule: overlap SKIP (a slow run is never doubled), a catch-up window of about one
interval (a server that was down runs the missed action once, not a backlog), a small jitter.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import structlog
from pydantic_core import to_jsonable_python
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from learnflow import search_attributes as sa
from learnflow.contracts import (
    ARCHIVE_QUEUE,
    DEFAULT_QUEUE,
    EMBEDDINGS_QUEUE,
    EmbedInput,
    IngestSourceInput,
)

log = structlog.get_logger(__name__)

# Schedule memo marking what reconcile owns (others' schedules on the same server are left alone),
# and the action memo key holding the fingerprint of the table entry it was built from.
# The prefix is in the memo too, so a sync without prefix never deletes a prefixed set (tests,
# staging) sharing the server, and the other way round.
MANAGED_BY = "managed_by"
MANAGER = "learnflow"
MANAGED_MEMO = {MANAGED_BY: MANAGER}
ID_PREFIX_MEMO = "id_prefix"
FINGERPRINT_MEMO = "schedule_fingerprint"
# The server turns cron strings into calendar specs; the action memo keeps them as written.
CRON_MEMO = "cron_utc"


@dataclass(frozen=True)
class ScheduledWorkflow:
    """One row of the table: what to start, when (cron, UTC), on which queue."""

    schedule_id: str
    workflow: str
    arg: Any
    cron: tuple[str, ...]
    catchup: timedelta
    task_queue: str = DEFAULT_QUEUE
    source: str | None = None
    paused: bool = False
    note: str = ""
    jitter: timedelta = field(default=timedelta(minutes=2))


def ingest_schedule(
    source: str, cron: str | tuple[str, ...], catchup: timedelta, **kw: Any
) -> ScheduledWorkflow:
    """A catalog source's `IngestSourceWorkflow` schedule (declared in `sources/<name>.py`)."""
    options = kw.pop("options", {})
    suffix = kw.pop("suffix", "")
    return ScheduledWorkflow(
        schedule_id=f"ingest/{source}{suffix}",
        workflow="IngestSourceWorkflow",
        arg=IngestSourceInput(source=source, options=options),
        cron=(cron,) if isinstance(cron, str) else cron,
        catchup=catchup,
        source=source,
        **kw,
    )


def archive_schedule(source: str, cron: str, catchup: timedelta) -> ScheduledWorkflow:
    """An archive source's `IngestArchivesWorkflow` schedule (edx_content queue). OCW runs on
    webhook / on demand, not on a schedule."""
    return ScheduledWorkflow(
        schedule_id=f"archives/{source}",
        workflow="IngestArchivesWorkflow",
        arg={"source": source},
        cron=(cron,),
        catchup=catchup,
        task_queue=ARCHIVE_QUEUE,
        source=source,
    )


DAY = timedelta(days=1)
H3 = timedelta(hours=3)

# The schedules of no source. Each source declares its own (`SCHEDULES` in its module, found by
# `sources.all_schedules()`, which adds these).
PLATFORM_SCHEDULES: tuple[ScheduledWorkflow, ...] = (
    ScheduledWorkflow(
        schedule_id="embeddings/resources",
        workflow="EmbedResourcesWorkflow",
        arg=EmbedInput(),
        cron=("*/30 * * * *",),
        catchup=timedelta(minutes=30),
        task_queue=EMBEDDINGS_QUEUE,
        jitter=timedelta(seconds=30),
    ),
    ScheduledWorkflow(
        schedule_id="content-files/purge",
        workflow="PurgeContentFilesWorkflow",
        arg={"retention_days": 14},
        cron=("0 4 * * *",),
        catchup=DAY,
    ),
)


def fingerprint(entry: ScheduledWorkflow, id_prefix: str = "") -> str:
    """What we own of a schedule, hashed: a changed table entry changes this.

    Pause state and note are left out on purpose: once a schedule exists they belong to operators
    (`learn schedules pause`), and a sync must not undo an operator's pause.
    """
    data = {
        "id": f"{id_prefix}{entry.schedule_id}",
        "workflow": entry.workflow,
        "arg": to_jsonable_python(entry.arg),
        "cron": list(entry.cron),
        "queue": entry.task_queue,
        "catchup": entry.catchup.total_seconds(),
        "jitter": entry.jitter.total_seconds(),
        "source": entry.source,
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def _search_attributes(entry: ScheduledWorkflow) -> TypedSearchAttributes:
    if not entry.source:
        return TypedSearchAttributes.empty
    return TypedSearchAttributes([SearchAttributePair(sa.SOURCE, entry.source)])


def static_summary(entry: ScheduledWorkflow) -> str:
    """The line operators read in the workflow list (Temporal caps it at 200 bytes)."""
    what = entry.source or "all sources"
    extra = f" {entry.arg.options}" if getattr(entry.arg, "options", None) else ""
    return f"{entry.workflow}: {what}{extra}, cron {' | '.join(entry.cron)} UTC"[:200]


def build_schedule(entry: ScheduledWorkflow, id_prefix: str = "") -> Schedule:
    """The Temporal schedule for one table entry (the action's workflow id is the schedule id;
    the server appends the action time, and sets TemporalScheduledById for filtering)."""
    return Schedule(
        action=ScheduleActionStartWorkflow(
            entry.workflow,
            entry.arg,
            id=f"{id_prefix}{entry.schedule_id}",
            task_queue=entry.task_queue,
            memo={
                FINGERPRINT_MEMO: fingerprint(entry, id_prefix),
                CRON_MEMO: " | ".join(entry.cron),
            },
            typed_search_attributes=_search_attributes(entry),
            static_summary=static_summary(entry),
        ),
        spec=ScheduleSpec(cron_expressions=list(entry.cron), jitter=entry.jitter),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=entry.catchup),
        state=ScheduleState(paused=entry.paused, note=entry.note or None),
    )


def wanted_schedules(
    registered_workflows: set[str], entries: Iterable[ScheduledWorkflow]
) -> list[ScheduledWorkflow]:
    """The entries (`sources.all_schedules()`) this build can run: its workflow type exists."""
    return [e for e in entries if e.workflow in registered_workflows]


@dataclass
class ReconcileReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


async def action_memo(client: Client, action: Any, key: str) -> Any:
    """One memo value of a described schedule's action (cron as written, fingerprint)."""
    return await _decoded_memo(client, getattr(action, "memo", None), key)


async def _decoded_memo(client: Client, memo: Any, key: str) -> Any:
    """A memo value from a described schedule action: raw payloads there, decode them."""
    raw = (memo or {}).get(key)
    if raw is None or not hasattr(raw, "data"):
        return raw
    return (await client.data_converter.decode([raw]))[0]


async def managed_schedule_ids(client: Client, id_prefix: str = "") -> set[str]:
    """Ids of the schedules reconcile created with exactly this `id_prefix` (schedule memo).

    Listing goes through the visibility store, which is eventually consistent: a schedule created
    a moment ago may be missing. Reconcile only uses this list to find schedules to delete, so a
    late one is deleted by the next sync, never duplicated.
    """
    found: set[str] = set()
    async for listed in await client.list_schedules():
        if not listed.id.startswith(id_prefix):
            continue
        if await listed.memo_value(MANAGED_BY, default=None) != MANAGER:
            continue
        if await listed.memo_value(ID_PREFIX_MEMO, default="") == id_prefix:
            found.add(listed.id)
    return found


async def _sync_one(
    client: Client, schedule_id: str, entry: ScheduledWorkflow, id_prefix: str
) -> str:
    """Create or update one schedule; returns "created", "updated" or "unchanged"."""
    desired = build_schedule(entry, id_prefix)
    handle = client.get_schedule_handle(schedule_id)
    try:
        current = (await handle.describe()).schedule
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        try:
            await client.create_schedule(
                schedule_id,
                desired,
                memo={**MANAGED_MEMO, ID_PREFIX_MEMO: id_prefix},
                search_attributes=_search_attributes(entry),
            )
            return "created"
        except ScheduleAlreadyRunningError:  # created concurrently by another sync
            current = (await handle.describe()).schedule
    memo = getattr(current.action, "memo", None)
    if await _decoded_memo(client, memo, FINGERPRINT_MEMO) == fingerprint(entry, id_prefix):
        return "unchanged"

    def keep_operator_state(_: ScheduleUpdateInput) -> ScheduleUpdate:
        desired.state = current.state  # paused/note belong to operators once created
        return ScheduleUpdate(schedule=desired)

    await handle.update(keep_operator_state)
    return "updated"


async def reconcile(
    client: Client,
    entries: list[ScheduledWorkflow],
    *,
    id_prefix: str = "",
) -> ReconcileReport:
    """Make Temporal's schedules match `entries`: create missing, update changed (fingerprint in
    the action memo), delete managed ones under `id_prefix` that are no longer listed.

    `id_prefix` scopes everything (tests and staging use their own prefix on a shared server).
    """
    report = ReconcileReport()
    wanted = {f"{id_prefix}{e.schedule_id}": e for e in entries}
    gate = asyncio.Semaphore(16)

    async def sync(schedule_id: str, entry: ScheduledWorkflow) -> None:
        async with gate:
            outcome = await _sync_one(client, schedule_id, entry, id_prefix)
        getattr(report, outcome).append(schedule_id)

    await asyncio.gather(*(sync(i, e) for i, e in wanted.items()))
    for schedule_id in sorted(await managed_schedule_ids(client, id_prefix) - set(wanted)):
        try:
            await client.get_schedule_handle(schedule_id).delete()
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:  # deleted meanwhile: fine
                raise
        report.deleted.append(schedule_id)
    for name in ("created", "updated", "unchanged"):
        getattr(report, name).sort()
    log.info(
        "schedules.reconciled",
        created=len(report.created),
        updated=len(report.updated),
        deleted=len(report.deleted),
        unchanged=len(report.unchanged),
    )
    return report

"""Schedules as code: one table of every scheduled workflow, and one reconcile step that makes
Temporal's schedules match it (create, update, delete). Cadences are the seed's, in UTC.

Every schedule: overlap SKIP (a slow run is never doubled), a catch-up window of about one
interval (a server that was down runs the missed action once, not a backlog), a small jitter.
"""

from __future__ import annotations

import hashlib
import json
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

from learnflow import search_attributes as sa
from learnflow.contracts import (
    ARCHIVE_QUEUE,
    DEFAULT_QUEUE,
    EMBEDDINGS_QUEUE,
    EmbedInput,
    IngestSourceInput,
)

log = structlog.get_logger(__name__)

MANAGED_MEMO = {"managed_by": "learnflow"}


@dataclass(frozen=True)
class ScheduledWorkflow:
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


def _ingest(
    source: str, cron: str | tuple[str, ...], catchup: timedelta, **kw: Any
) -> ScheduledWorkflow:
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


DAY = timedelta(days=1)
H3 = timedelta(hours=3)

SCHEDULES: tuple[ScheduledWorkflow, ...] = (
    _ingest("mitxonline", "0 */6 * * *", timedelta(hours=6)),
    _ingest("edx", "0 5 * * *", DAY),
    _ingest("xpro", "0 5 * * *", DAY),
    _ingest("mitpe", "0 21 * * *", DAY, options={"kinds": "courses"}),
    _ingest("mitpe", "0 */3 * * *", H3, options={"kinds": "news,events"}, suffix="-news-events"),
    _ingest("sloan", "30 4 * * *", DAY),
    # MIT Learn removed these from its beat schedule (2025-09-05); kept, created paused.
    _ingest("sloan_news", "0 */3 * * *", H3, paused=True, note="paused as in MIT Learn"),
    _ingest("ovs", "0 9 * * *", DAY),
    _ingest("ovs", "30 9 * * *", DAY, options={"transcripts": "true"}, suffix="-transcripts"),
    _ingest("ol_events", "0 */3 * * *", H3),
    _ingest("mit_climate", "30 5 * * *", DAY),
    _ingest("micromasters", "0 5 * * *", DAY),
    _ingest("medium_news", "0 */3 * * *", H3),
    _ingest("podcasts", ("0 6 * * *", "0 23 * * *"), timedelta(hours=7)),
    _ingest("youtube", "30 8 * * *", DAY),
    _ingest("marketing_pages", "0 */12 * * *", timedelta(hours=12)),
    _ingest("oll", "0 5 * * *", DAY),
    _ingest("posthog_views", "0 */3 * * *", H3),
    # Content archives (edx_content queue). OCW runs on webhook / on demand, not on a schedule.
    *(
        ScheduledWorkflow(
            schedule_id=f"archives/{source}",
            workflow="IngestArchivesWorkflow",
            arg={"source": source},
            cron=(cron,),
            catchup=catchup,
            task_queue=ARCHIVE_QUEUE,
            source=source,
        )
        for source, cron, catchup in (
            ("canvas", "0 5 * * 0", timedelta(days=7)),
            ("edx", "0 6 * * *", DAY),
            ("mitxonline", "0 7 * * *", DAY),
            ("xpro", "0 8 * * *", DAY),
        )
    ),
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
    """What we own of a schedule, hashed: a changed table entry changes this."""
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


def _schedule(entry: ScheduledWorkflow, id_prefix: str = "") -> Schedule:
    attrs = (
        TypedSearchAttributes([SearchAttributePair(sa.SOURCE, entry.source)])
        if entry.source
        else None
    )
    return Schedule(
        action=ScheduleActionStartWorkflow(
            entry.workflow,
            entry.arg,
            id=f"{id_prefix}{entry.schedule_id}",
            task_queue=entry.task_queue,
            memo={"schedule_fingerprint": fingerprint(entry, id_prefix)},
            typed_search_attributes=attrs or TypedSearchAttributes.empty,
            static_summary=f"{entry.workflow} for {entry.source or 'all sources'} (schedule {entry.schedule_id})",
        ),
        spec=ScheduleSpec(cron_expressions=list(entry.cron), jitter=entry.jitter),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=entry.catchup),
        state=ScheduleState(paused=entry.paused, note=entry.note or None),
    )


def wanted_schedules(
    registered_workflows: set[str], registered_sources: set[str]
) -> list[ScheduledWorkflow]:
    """Entries this build can run: its workflow type exists and (for ingest) its source module."""
    out = []
    for entry in SCHEDULES:
        if entry.workflow not in registered_workflows:
            continue
        if entry.workflow == "IngestSourceWorkflow" and entry.source not in registered_sources:
            continue
        out.append(entry)
    return out


@dataclass
class ReconcileReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


async def reconcile(
    client: Client,
    entries: list[ScheduledWorkflow],
    *,
    id_prefix: str = "",
) -> ReconcileReport:
    """Create missing schedules, update changed ones, delete managed ones no longer listed."""
    report = ReconcileReport()
    wanted = {f"{id_prefix}{e.schedule_id}": e for e in entries}
    existing: set[str] = set()
    async for listed in await client.list_schedules():
        if not listed.id.startswith(id_prefix):
            continue
        if await listed.memo_value("managed_by", default=None) != MANAGED_MEMO["managed_by"]:
            continue
        existing.add(listed.id)
    for schedule_id, entry in wanted.items():
        desired = _schedule(entry, id_prefix)
        if schedule_id not in existing:
            try:
                await client.create_schedule(schedule_id, desired, memo=MANAGED_MEMO)
                report.created.append(schedule_id)
            except ScheduleAlreadyRunningError:
                existing.add(schedule_id)
        if schedule_id in existing:
            handle = client.get_schedule_handle(schedule_id)
            current = (await handle.describe()).schedule
            # Compare what we own; pause state belongs to operators once created.
            memo = getattr(current.action, "memo", None) or {}
            current_fp = None
            if "schedule_fingerprint" in memo:
                raw = memo["schedule_fingerprint"]
                current_fp = (
                    (await client.data_converter.decode([raw]))[0] if hasattr(raw, "data") else raw
                )
            if current_fp != fingerprint(entry, id_prefix):

                def updater(
                    _: ScheduleUpdateInput, desired: Schedule = desired, current: Schedule = current
                ) -> ScheduleUpdate:
                    desired.state = current.state
                    return ScheduleUpdate(schedule=desired)

                await handle.update(updater)
                report.updated.append(schedule_id)
            else:
                report.unchanged.append(schedule_id)
    for schedule_id in sorted(existing - set(wanted)):
        await client.get_schedule_handle(schedule_id).delete()
        report.deleted.append(schedule_id)
    log.info(
        "schedules.reconciled",
        created=len(report.created),
        updated=len(report.updated),
        deleted=len(report.deleted),
        unchanged=len(report.unchanged),
    )
    return report

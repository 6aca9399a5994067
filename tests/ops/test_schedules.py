"""Schedules as code against a real Temporal dev server: reconcile from empty, after a cadence
change, after a source is removed; and the table itself checked against the seed."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import timedelta

import pytest
from temporalio.client import ScheduleOverlapPolicy, ScheduleRange
from temporalio.service import RPCError, RPCStatusCode

from learnflow import search_attributes as sa
from learnflow.contracts import TASK_QUEUES
from learnflow.schedules import (
    CRON_MEMO,
    ScheduledWorkflow,
    action_memo,
    managed_schedule_ids,
    reconcile,
    wanted_schedules,
)
from sources import all_schedules
from tests.conftest import unique_id
from tests.helpers.polling import eventually

pytestmark = [pytest.mark.temporal]

# Every schedule, as the registry finds them (each source module declares its own).
SCHEDULES = all_schedules()

# The seed's ingestion table (../shared/seed), source → cadence as cron in UTC. OCW is
# "webhook / on-demand" and has no schedule.
SEED_CADENCES = {
    "ingest/mitxonline": ("0 */6 * * *",),
    "ingest/edx": ("0 5 * * *",),
    "ingest/xpro": ("0 5 * * *",),
    "ingest/mitpe": ("0 21 * * *",),
    "ingest/sloan": ("30 4 * * *",),
    "ingest/sloan_news": ("0 */3 * * *",),
    "ingest/ovs": ("0 9 * * *",),
    "ingest/ol_events": ("0 */3 * * *",),
    "ingest/mit_climate": ("30 5 * * *",),
    "ingest/micromasters": ("0 5 * * *",),
    "ingest/medium_news": ("0 */3 * * *",),
    "ingest/podcasts": ("0 6 * * *", "0 23 * * *"),
    "ingest/youtube": ("30 8 * * *",),
    "ingest/marketing_pages": ("0 */12 * * *",),
    "ingest/oll": ("0 5 * * *",),
    "ingest/posthog_views": ("0 */3 * * *",),
    "archives/canvas": ("0 5 * * 0",),
    "archives/edx": ("0 6 * * *",),
    "archives/mitxonline": ("0 7 * * *",),
    "archives/xpro": ("0 8 * * *",),
    "embeddings/resources": ("*/30 * * * *",),
    "content-files/purge": ("0 4 * * *",),
}


def _entry(schedule_id: str) -> ScheduledWorkflow:
    return next(e for e in SCHEDULES if e.schedule_id == schedule_id)


def test_table_matches_the_seed():
    by_id = {e.schedule_id: e for e in SCHEDULES}
    assert len(by_id) == len(SCHEDULES), "schedule ids must be unique"
    for schedule_id, cron in SEED_CADENCES.items():
        assert by_id[schedule_id].cron == cron, schedule_id
    # Every 20 seed sources with a cadence (21 minus OCW) has at least one schedule.
    assert {e.source for e in SCHEDULES if e.source} >= {
        "mitxonline", "edx", "xpro", "mitpe", "sloan", "sloan_news", "ovs", "ol_events",
        "mit_climate", "micromasters", "medium_news", "podcasts", "youtube",
        "marketing_pages", "oll", "posthog_views", "canvas",
    }  # fmt: skip
    assert by_id["ingest/sloan_news"].paused, "MIT Learn stopped it: created paused"
    for e in SCHEDULES:
        assert e.task_queue in TASK_QUEUES
        assert timedelta(0) < e.jitter <= timedelta(minutes=5), e.schedule_id
        assert e.catchup >= timedelta(minutes=10), e.schedule_id


def test_wanted_skips_what_this_build_cannot_run():
    wanted = wanted_schedules({"IngestArchivesWorkflow"}, SCHEDULES)
    assert {e.schedule_id for e in wanted} == {
        "archives/canvas",
        "archives/edx",
        "archives/mitxonline",
        "archives/xpro",
    }


async def test_every_entry_is_accepted_and_catchup_is_about_one_interval(temporal_client):
    """The whole table on the real server: every cron parses, and each catch-up window lies
    between the shortest and longest gap of the server's own next action times."""
    prefix = unique_id("table") + "/"
    report = await reconcile(temporal_client, list(SCHEDULES), id_prefix=prefix)
    assert len(report.created) == len(SCHEDULES)
    for e in SCHEDULES:
        desc = await temporal_client.get_schedule_handle(f"{prefix}{e.schedule_id}").describe()
        times = desc.info.next_action_times
        assert len(times) >= 3, e.schedule_id
        gaps = [b - a for a, b in itertools.pairwise(times)]
        # jitter shifts each action by up to e.jitter
        assert min(gaps) - 2 * e.jitter <= e.catchup <= max(gaps) + 2 * e.jitter, (
            e.schedule_id,
            e.catchup,
            gaps,
        )
        assert desc.schedule.state.paused == e.paused
    for schedule_id in report.created:  # no schedule of this test fires later in the session
        await temporal_client.get_schedule_handle(schedule_id).delete()


async def test_reconcile_from_empty_then_change_then_remove(temporal_client):
    client = temporal_client
    prefix = unique_id("rec") + "/"
    entries = [_entry("ingest/mitxonline"), _entry("ingest/ovs"), _entry("embeddings/resources")]
    ids = [f"{prefix}{e.schedule_id}" for e in entries]

    # 1. from empty: all created, with our policies and what operators read in the UI
    report = await reconcile(client, entries, id_prefix=prefix)
    assert report.created == sorted(ids)
    assert report.updated == report.deleted == report.unchanged == []
    desc = await client.get_schedule_handle(ids[0]).describe()
    s = desc.schedule
    assert await action_memo(client, s.action, CRON_MEMO) == "0 */6 * * *"
    assert [c.hour for c in s.spec.calendars] == [(ScheduleRange(0, 23, 6),)]
    assert s.spec.jitter == timedelta(minutes=2)
    assert s.policy.overlap == ScheduleOverlapPolicy.SKIP
    assert s.policy.catchup_window == timedelta(hours=6)
    assert s.action.workflow == "IngestSourceWorkflow"
    assert s.action.id == ids[0]
    assert s.action.task_queue == "default"
    summary = (await client.data_converter.decode([s.action.static_summary]))[0]
    assert summary == "IngestSourceWorkflow: mitxonline, cron 0 */6 * * * UTC"
    assert s.action.typed_search_attributes.get(sa.SOURCE) == "mitxonline"
    assert await desc.memo_value("managed_by") == "learnflow"
    emb = (await client.get_schedule_handle(ids[2]).describe()).schedule
    assert emb.action.task_queue == "embeddings"
    assert [c.minute for c in emb.spec.calendars] == [(ScheduleRange(0, 59, 30),)]

    # a second sync changes nothing
    report = await reconcile(client, entries, id_prefix=prefix)
    assert report.unchanged == sorted(ids)
    assert report.created == report.updated == report.deleted == []

    # 2. a cadence change updates only that schedule, and keeps an operator's pause
    await client.get_schedule_handle(ids[0]).pause(note="operator: upstream maintenance")
    changed = [dataclasses.replace(entries[0], cron=("15 */4 * * *",)), *entries[1:]]
    report = await reconcile(client, changed, id_prefix=prefix)
    assert report.updated == [ids[0]]
    assert report.unchanged == sorted(ids[1:])
    s = (await client.get_schedule_handle(ids[0]).describe()).schedule
    assert await action_memo(client, s.action, CRON_MEMO) == "15 */4 * * *"
    assert [c.minute for c in s.spec.calendars] == [(ScheduleRange(15, 15, 1),)]
    assert s.state.paused and s.state.note == "operator: upstream maintenance"
    report = await reconcile(client, changed, id_prefix=prefix)
    assert report.updated == []

    # 3. a source removed from the table: its schedule is deleted, the others stay
    async def all_listed() -> bool:
        return set(ids) <= await managed_schedule_ids(client, prefix)

    await eventually(all_listed, "the created schedules are visible to list_schedules")
    report = await reconcile(client, changed[:1] + changed[2:], id_prefix=prefix)
    assert report.deleted == [ids[1]]
    assert report.unchanged == sorted([ids[0], ids[2]])
    with pytest.raises(RPCError) as err:
        await client.get_schedule_handle(ids[1]).describe()
    assert err.value.status == RPCStatusCode.NOT_FOUND
    await client.get_schedule_handle(ids[0]).describe()  # still there


async def test_reconcile_leaves_other_schedules_alone(temporal_client):
    """Schedules someone made by hand, and another prefix's managed set, are never deleted."""
    client = temporal_client
    mine, theirs = unique_id("mine") + "/", unique_id("theirs") + "/"
    entry = _entry("ingest/oll")
    await reconcile(client, [entry], id_prefix=theirs)
    from learnflow.schedules import build_schedule

    handmade = f"{mine}handmade"
    await client.create_schedule(handmade, build_schedule(entry, mine))  # no managed memo

    async def listed() -> bool:
        return f"{theirs}ingest/oll" in await managed_schedule_ids(client, theirs)

    await eventually(listed, "the other prefix's schedule is visible")
    report = await reconcile(client, [], id_prefix=mine)
    assert report.deleted == []
    await client.get_schedule_handle(handmade).describe()
    await client.get_schedule_handle(f"{theirs}ingest/oll").describe()

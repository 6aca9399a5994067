"""Operator commands through typer's CliRunner against the real dev server (and Postgres for
`learn status`): schedules sync/list/pause/unpause/trigger/backfill, status with a progress bar."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from temporalio import activity
from temporalio.client import WorkflowExecutionStatus
from temporalio.worker import Worker
from typer.testing import CliRunner

from learn_cli.cli import app as cli
from learnflow.contracts import FetchInput, FetchResult, IngestSourceInput
from learnflow.schedules import ScheduledWorkflow, reconcile
from tests.conftest import unique_id
from tests.helpers.polling import eventually
from workflows.ingest import IngestSourceWorkflow

pytestmark = [pytest.mark.temporal]

runner = CliRunner()


def learn(*args: str):
    result = runner.invoke(cli, list(args), catch_exceptions=False)
    return result


async def alearn(*args: str):
    """`learn` from an async test: the command runs its own event loop, so give it a thread."""
    return await asyncio.to_thread(learn, *args)


def _unpolled_entry(queue: str, cron: str = "0 * * * *") -> ScheduledWorkflow:
    """A schedule whose runs land on a queue nobody polls: they start and stay pending."""
    return ScheduledWorkflow(
        schedule_id="ops/probe",
        workflow="IngestSourceWorkflow",
        arg=IngestSourceInput(source="oll"),
        cron=(cron,),
        catchup=timedelta(hours=1),
        task_queue=queue,
        source="oll",
    )


async def _terminate_started(client, schedule_id: str) -> None:
    desc = await client.get_schedule_handle(schedule_id).describe()
    for action in desc.info.recent_actions:
        handle = client.get_workflow_handle(action.action.workflow_id)
        with contextlib.suppress(Exception):
            await handle.terminate("test cleanup")
    await client.get_schedule_handle(schedule_id).delete()


async def test_sync_then_list(cli_env, temporal_client):
    from worker import registered_workflow_types

    prefix = unique_id("cli") + "/"
    result = await alearn("schedules", "sync", "--id-prefix", prefix)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{") :])
    created = report["created"]
    try:
        assert f"{prefix}ingest/mitxonline" in created
        assert f"{prefix}embeddings/resources" in created
        # exactly what this build can run: registered workflow types and source modules
        from learn_cli.commands.ops import _wanted

        assert sorted(created) == sorted(f"{prefix}{e.schedule_id}" for e in _wanted())
        if "IngestArchivesWorkflow" not in registered_workflow_types():
            assert not any("archives/" in c for c in created)

        again = await alearn("schedules", "sync", "--id-prefix", prefix)
        assert json.loads(again.output[again.output.index("{") :])["unchanged"] == created

        listed = await alearn("schedules", "list", "--id-prefix", prefix)
        assert listed.exit_code == 0, listed.output
        assert f"{prefix}ingest/mitxonline" in listed.output
        assert "0 */6 * * *" in listed.output
        assert "paused" in listed.output  # sloan_news is created paused
    finally:
        for schedule_id in created:
            await temporal_client.get_schedule_handle(schedule_id).delete()


async def test_pause_unpause_trigger(cli_env, temporal_client):
    prefix = unique_id("cli") + "/"
    schedule_id = f"{prefix}ops/probe"
    await reconcile(temporal_client, [_unpolled_entry(unique_id("nobody"))], id_prefix=prefix)
    handle = temporal_client.get_schedule_handle(schedule_id)
    try:
        result = await alearn("schedules", "pause", schedule_id, "--note", "vendor outage")
        assert result.exit_code == 0, result.output
        state = (await handle.describe()).schedule.state
        assert state.paused and state.note == "vendor outage"

        result = await alearn("schedules", "unpause", schedule_id)
        assert result.exit_code == 0
        assert not (await handle.describe()).schedule.state.paused

        result = await alearn("schedules", "trigger", schedule_id)
        assert result.exit_code == 0, result.output

        async def started() -> bool:
            return len((await handle.describe()).info.recent_actions) == 1

        await eventually(started, "the triggered action started a workflow")
        action = (await handle.describe()).info.recent_actions[0].action
        assert action.workflow_id.startswith(f"{schedule_id}-")  # readable: schedule id + time
        wf = await temporal_client.get_workflow_handle(action.workflow_id).describe()
        assert wf.status == WorkflowExecutionStatus.RUNNING

        missing = await alearn("schedules", "pause", f"{prefix}no-such-schedule")
        assert missing.exit_code == 1
    finally:
        await _terminate_started(temporal_client, schedule_id)


async def test_backfill(cli_env, temporal_client):
    prefix = unique_id("cli") + "/"
    schedule_id = f"{prefix}ops/probe"
    await reconcile(temporal_client, [_unpolled_entry(unique_id("nobody"))], id_prefix=prefix)
    handle = temporal_client.get_schedule_handle(schedule_id)
    try:
        bad = await alearn("schedules", "backfill", schedule_id, "yesterday", "today")
        assert bad.exit_code == 2
        # three hourly actions fall in [00:30, 03:30) of a past day: 01:00, 02:00, 03:00
        day = (datetime.now(UTC) - timedelta(days=2)).date().isoformat()
        result = await alearn(
            "schedules", "backfill", schedule_id, f"{day}T00:30", f"{day}T03:30", "--parallel"
        )
        assert result.exit_code == 0, result.output

        async def three() -> bool:
            return (await handle.describe()).info.num_actions == 3

        await eventually(three, "the backfill started three runs")
    finally:
        await _terminate_started(temporal_client, schedule_id)


# -- learn status ---------------------------------------------------------------------------

FETCH_GATE: asyncio.Event | None = None


@activity.defn(name="start_run")
async def stub_start_run(req: FetchInput) -> None:
    return None


@activity.defn(name="fetch_source_pages")
async def stub_fetch_blocks(req: FetchInput) -> FetchResult:
    """Holds the run in its fetching stage until the test ends it."""
    assert FETCH_GATE is not None
    await FETCH_GATE.wait()
    return FetchResult(skipped_reason="test")


@pytest.mark.postgres
async def test_status_shows_last_run_and_progress_of_running(
    cli_env, temporal_client, postgres_dsn
):
    global FETCH_GATE
    from learnflow.db.migrate import migrate

    conn = await asyncpg.connect(postgres_dsn)
    try:
        await migrate(conn)
        done_source, live_source = unique_id("stat-done"), unique_id("stat-live")
        await conn.execute(
            "INSERT INTO etl_run (run_id, source, finished_on, outcome, counts)"
            " VALUES ($1, $2, now(), 'prune_refused', $3::jsonb)",
            unique_id("run"),
            done_source,
            json.dumps({"inserted": 7, "updated": 5, "unpublished": 0, "quarantined": 2}),
        )
    finally:
        await conn.close()
    cli_env(DATABASE_URL=postgres_dsn)

    FETCH_GATE = asyncio.Event()
    queue = unique_id("status")
    async with Worker(
        temporal_client,
        task_queue=queue,
        workflows=[IngestSourceWorkflow],
        activities=[stub_start_run, stub_fetch_blocks],
    ):
        handle = await temporal_client.start_workflow(
            IngestSourceWorkflow.run,
            IngestSourceInput(source=live_source),
            id=f"ingest/{live_source}",
            task_queue=queue,
            static_summary=f"ingest {live_source}",
        )
        try:

            async def fetching() -> bool:
                progress = await handle.query("progress")
                if progress.get("stage") != "fetching":
                    return False
                q = f'ExecutionStatus="Running" AND WorkflowId="{handle.id}" AND Source="{live_source}"'
                return [w.id async for w in temporal_client.list_workflows(q)] == [handle.id]

            await eventually(fetching, "the run is fetching and visible with its Source")
            result = await alearn("status")
            assert result.exit_code == 0, result.output
            lines = result.output.splitlines()
            live = next(line for line in lines if live_source in line)
            assert "fetching" in live
            assert "━" in live  # rich's progress bar
            done = next(line for line in lines if done_source in line)
            assert "prune_refused" in done
            assert " 12 " in done and " 2 " in done  # upserted 7+5, quarantined 2
        finally:
            await handle.terminate("test done")
            FETCH_GATE.set()


# -- --data-dir: the stack `learn up --data-dir DIR` started ---------------------------------


def test_status_with_a_data_dir_without_a_stack_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("LEARNFLOW_ENV_FILE", "")  # restored after: --data-dir sets it
    result = learn("status", "--data-dir", str(tmp_path / "nothing-here"))
    assert result.exit_code == 1
    assert "learn up --data-dir" in result.output


async def test_commands_find_the_stack_through_its_data_dir(
    temporal_server, temporal_client, tmp_path, monkeypatch
):
    """`learn schedules --data-dir DIR ...` reads DIR/learnflow.env (what `learn up` writes)."""
    monkeypatch.setenv("LEARNFLOW_ENV_FILE", "")  # restored after: --data-dir sets it
    monkeypatch.delenv("TEMPORAL_ADDRESS", raising=False)  # the shell's would win over the file
    prefix = unique_id("datadir") + "/"
    entry = _unpolled_entry(unique_id("datadir-q"))
    await reconcile(temporal_client, [entry], id_prefix=prefix)
    try:
        (tmp_path / "learnflow.env").write_text(f"TEMPORAL_ADDRESS={temporal_server.address}\n")

        async def listed() -> bool:  # schedule listing is eventually consistent
            result = await alearn(
                "schedules", "--data-dir", str(tmp_path), "list", "--id-prefix", prefix
            )
            assert result.exit_code == 0, result.output
            return f"{prefix}ops/probe" in result.output

        await eventually(listed, "the schedule listed through the data dir's env file")
    finally:
        await temporal_client.get_schedule_handle(f"{prefix}ops/probe").delete()

"""Operator commands: schedules, status, quarantine."""

from __future__ import annotations

import asyncio
import json

import typer

schedules_app = typer.Typer(
    help="Temporal schedules (one per source), reconciled from the table in code."
)
quarantine_app = typer.Typer(help="Items a transform could not read.")


def _settings():
    from learnflow.settings import get_settings

    return get_settings()


# -- schedules ------------------------------------------------------------------------------


async def _client():
    from worker import connect

    s = _settings()
    return await connect(s.temporal_address, s.temporal_namespace)


def _wanted():
    from learnflow.schedules import wanted_schedules
    from sources import all_sources
    from worker import queue_registry

    registered = {wf.__name__ for wfs, _ in queue_registry().values() for wf in wfs}
    return wanted_schedules(registered, set(all_sources()))


@schedules_app.command("sync")
def schedules_sync() -> None:
    """Make Temporal's schedules match the table in code (create, update, delete)."""
    from learnflow.schedules import reconcile

    async def go():
        report = await reconcile(await _client(), _wanted())
        typer.echo(json.dumps(report.__dict__, indent=1))

    asyncio.run(go())


@schedules_app.command("list")
def schedules_list() -> None:
    async def go():
        client = await _client()
        async for s in await client.list_schedules():
            d = await client.get_schedule_handle(s.id).describe()
            paused = " (paused)" if d.schedule.state.paused else ""
            nxt = d.info.next_action_times[0].isoformat() if d.info.next_action_times else "-"
            typer.echo(f"{s.id:40s} next {nxt}  runs {d.info.num_actions}{paused}")

    asyncio.run(go())


def _handle_cmd(action: str):
    def cmd(schedule_id: str) -> None:
        async def go():
            handle = (await _client()).get_schedule_handle(schedule_id)
            await getattr(handle, action)()
            typer.echo(f"{action}: {schedule_id}")

        asyncio.run(go())

    cmd.__doc__ = f"{action.capitalize()} one schedule."
    return cmd


schedules_app.command("pause")(_handle_cmd("pause"))
schedules_app.command("unpause")(_handle_cmd("unpause"))
schedules_app.command("trigger")(_handle_cmd("trigger"))


@schedules_app.command("backfill")
def schedules_backfill(schedule_id: str, start: str, end: str) -> None:
    """Run the actions a schedule would have run between START and END (ISO times, UTC)."""
    from datetime import datetime

    from temporalio.client import ScheduleBackfill, ScheduleOverlapPolicy

    async def go():
        handle = (await _client()).get_schedule_handle(schedule_id)
        await handle.backfill(
            ScheduleBackfill(
                start_at=datetime.fromisoformat(start),
                end_at=datetime.fromisoformat(end),
                overlap=ScheduleOverlapPolicy.ALLOW_ALL,
            )
        )

    asyncio.run(go())


# -- quarantine / status ------------------------------------------------------------------


@quarantine_app.command("list")
def quarantine_list(source: str | None = None, limit: int = 50) -> None:
    """Show quarantined items with their reasons."""

    async def go():
        from learnflow.stores import get_stores

        stores = await get_stores()
        rows = await stores.catalog.list_quarantine(source, limit)
        for r in rows:
            typer.echo(
                f"{r['id']:6d} {r['created_on']:%Y-%m-%d %H:%M} {r['source']:16s} {r['item_key'] or '-':40s} {r['reason']}"
            )
        await stores.close()

    asyncio.run(go())


def status() -> None:
    """Per source: published/total resources and the last run's outcome."""

    async def go():
        from learnflow.stores import get_stores

        stores = await get_stores()
        async with stores.pool.acquire() as conn:
            runs = await conn.fetch(
                "SELECT DISTINCT ON (source) source, run_id, outcome, counts, started_on, finished_on"
                " FROM etl_run ORDER BY source, started_on DESC"
            )
        counts = {r["etl_source"]: r for r in await stores.catalog.counts_by_source()}
        for r in runs:
            c = counts.get(r["source"])
            state = r["outcome"] or "running"
            typer.echo(
                f"{r['source']:16s} {state:14s} published {c['published'] if c else 0:6d}/{c['total'] if c else 0:<6d}"
                f" last run {r['started_on']:%Y-%m-%d %H:%M}"
            )
        await stores.close()

    asyncio.run(go())


def register(app: typer.Typer) -> None:
    app.add_typer(schedules_app, name="schedules")
    app.add_typer(quarantine_app, name="quarantine")
    app.command("status")(status)

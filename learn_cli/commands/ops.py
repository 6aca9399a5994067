"""Operator commands: `learn schedules ...`, `learn quarantine list` (and `learn status`, in
`status.py`)."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

schedules_app = typer.Typer(
    help="Temporal schedules (one per source), reconciled from the table in learnflow/schedules.py.",
    no_args_is_help=True,
)
quarantine_app = typer.Typer(help="Items a transform could not read.", no_args_is_help=True)

IdPrefix = Annotated[
    str, typer.Option(help="Only schedules under this id prefix (staging, tests).")
]
DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="The stack `learn up --data-dir DIR` started (reads DIR/learnflow.env).",
        show_default=False,
    ),
]


def use_data_dir(data_dir: Path | None) -> None:
    """Point this command at the stack `learn up --data-dir DIR` started: its env file holds the
    addresses of what it started (variables already set in the shell still win)."""
    if data_dir is None:
        return
    env_file = data_dir / "learnflow.env"
    if not env_file.is_file():
        _fail(f"no {env_file}: start the stack with `learn up --data-dir {data_dir}`")
    if (pid := _up_pid(env_file)) is not None and not _alive(pid):
        _fail(
            f"the stack in {data_dir} is not running (its `learn up`, pid {pid}, has ended):"
            f" start it with `learn up --data-dir {data_dir}`"
        )
    from learnflow.settings import reset_settings

    os.environ["LEARNFLOW_ENV_FILE"] = str(env_file.resolve())
    reset_settings()


def _up_pid(env_file: Path) -> int | None:
    """The pid `learn up` wrote into its env file (LEARNFLOW_UP_PID), if any."""
    for line in env_file.read_text().splitlines():
        key, _, value = line.partition("=")
        if key == "LEARNFLOW_UP_PID" and value.strip().isdigit():
            return int(value)
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _data_dir_callback(data_dir: DataDir = None) -> None:
    use_data_dir(data_dir)


schedules_app.callback()(_data_dir_callback)
quarantine_app.callback()(_data_dir_callback)


def _settings():
    from learnflow.settings import get_settings

    return get_settings()


async def _client():
    from worker import connect

    s = _settings()
    return await connect(s.temporal_address, s.temporal_namespace)


def _wanted():
    from learnflow.schedules import wanted_schedules
    from sources import all_schedules
    from worker import registered_workflow_types

    return wanted_schedules(set(registered_workflow_types()), all_schedules())


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def _run(coro) -> Any:
    """Run a command's coroutine; a missing schedule is an operator error, not a traceback."""
    from temporalio.service import RPCError, RPCStatusCode

    try:
        return asyncio.run(coro)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            _fail(exc.message)
        raise


# -- schedules ------------------------------------------------------------------------------


@schedules_app.command("sync")
def schedules_sync(id_prefix: IdPrefix = "") -> None:
    """Make Temporal's schedules match the table in code (create, update, delete)."""
    from learnflow.schedules import reconcile

    async def go():
        report = await reconcile(await _client(), _wanted(), id_prefix=id_prefix)
        typer.echo(json.dumps(report.__dict__, indent=1))

    _run(go())


@schedules_app.command("list")
def schedules_list(id_prefix: IdPrefix = "") -> None:
    """Every schedule with its cadence, next action, runs so far and paused state."""
    from rich.table import Table

    from learnflow.schedules import CRON_MEMO, action_memo

    async def go() -> list[tuple[str, ...]]:
        client = await _client()
        rows = []
        async for listed in await client.list_schedules():
            if not listed.id.startswith(id_prefix):
                continue
            d = await client.get_schedule_handle(listed.id).describe()
            cron = await action_memo(client, d.schedule.action, CRON_MEMO)
            nxt = d.info.next_action_times[0] if d.info.next_action_times else None
            last = d.info.recent_actions[-1].started_at if d.info.recent_actions else None
            rows.append(
                (
                    listed.id,
                    cron or "-",
                    f"{nxt:%Y-%m-%d %H:%M}" if nxt else "-",
                    f"{last:%Y-%m-%d %H:%M}" if last else "-",
                    str(d.info.num_actions),
                    "paused" if d.schedule.state.paused else "active",
                    d.schedule.state.note or "",
                )
            )
        return sorted(rows)

    rows = _run(go())
    table = Table("schedule", "cron (UTC)", "next", "last", "runs", "state", "note")
    for row in rows:
        table.add_row(*row)
    _console().print(table)


def _pause_cmd(paused: bool):
    def cmd(
        schedule_id: str,
        note: Annotated[str, typer.Option(help="why (shown in the Temporal UI)")] = "",
    ) -> None:
        async def go():
            handle = (await _client()).get_schedule_handle(schedule_id)
            if paused:
                await handle.pause(note=note or "paused with learn schedules pause")
            else:
                await handle.unpause(note=note or "unpaused with learn schedules unpause")

        _run(go())
        typer.echo(f"{'paused' if paused else 'unpaused'}: {schedule_id}")

    cmd.__doc__ = ("Pause" if paused else "Unpause") + " one schedule (a sync leaves this alone)."
    return cmd


schedules_app.command("pause")(_pause_cmd(True))
schedules_app.command("unpause")(_pause_cmd(False))


@schedules_app.command("trigger")
def schedules_trigger(schedule_id: str) -> None:
    """Run a schedule's action now (the overlap policy still applies: SKIP if one is running)."""

    async def go():
        await (await _client()).get_schedule_handle(schedule_id).trigger()

    _run(go())
    typer.echo(f"triggered: {schedule_id}")


@schedules_app.command("backfill")
def schedules_backfill(
    schedule_id: str,
    start: Annotated[str, typer.Argument(help="ISO time, UTC if no offset")],
    end: Annotated[str, typer.Argument(help="ISO time, UTC if no offset")],
    parallel: Annotated[
        bool, typer.Option(help="run the missed actions at once (default: one after another)")
    ] = False,
) -> None:
    """Run the actions a schedule would have run between START and END."""

    from temporalio.client import ScheduleBackfill, ScheduleOverlapPolicy

    def parse(value: str) -> datetime:
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            raise typer.BadParameter(f"not an ISO time: {value!r}") from None
        return when if when.tzinfo else when.replace(tzinfo=UTC)

    start_at, end_at = parse(start), parse(end)
    if end_at <= start_at:
        raise typer.BadParameter("END must be after START")

    async def go():
        handle = (await _client()).get_schedule_handle(schedule_id)
        await handle.backfill(
            ScheduleBackfill(
                start_at=start_at,
                end_at=end_at,
                overlap=ScheduleOverlapPolicy.ALLOW_ALL
                if parallel
                else ScheduleOverlapPolicy.BUFFER_ALL,
            )
        )

    _run(go())
    typer.echo(f"backfill: {schedule_id} {start_at.isoformat()} .. {end_at.isoformat()}")


# -- quarantine -----------------------------------------------------------------------------


@quarantine_app.command("list")
def quarantine_list(source: str | None = None, limit: int = 50) -> None:
    """Show quarantined items with their reasons."""

    async def go():
        from learnflow.db.catalog import CatalogStore, create_pool

        pool = await create_pool(_database_url(), min_size=1, max_size=2)
        try:
            return await CatalogStore(pool).list_quarantine(source, limit)
        finally:
            await pool.close()

    for r in asyncio.run(go()):
        typer.echo(
            f"{r['id']:6d} {r['created_on']:%Y-%m-%d %H:%M} {r['source']:16s}"
            f" {r['item_key'] or '-':40s} {r['reason']}"
        )


def _console():
    from rich.console import Console

    console = Console()
    if not console.is_terminal:  # piped or captured: don't squeeze the table to 80 columns
        console.width = 160
    return console


def _database_url() -> str:
    url = _settings().database_url
    if not url:
        _fail(
            "DATABASE_URL is not set: is `learn up` running? (it names what it started in"
            " .learnflow/learnflow.env, or DIR/learnflow.env with --data-dir DIR)"
        )
    return url


def register(app: typer.Typer) -> None:
    app.add_typer(schedules_app, name="schedules")
    app.add_typer(quarantine_app, name="quarantine")
    from learn_cli.commands.status import status

    app.command("status")(status)

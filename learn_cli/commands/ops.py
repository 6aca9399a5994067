"""Operator commands: `learn schedules ...`, `learn status`, `learn quarantine list`."""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import dataclass, field
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
    from datetime import UTC

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


# -- status ---------------------------------------------------------------------------------

# Stages of IngestSourceWorkflow's `progress` query, in order: the bar's position when the
# workflow reports no finer count.
STAGES = ("starting", "fetching", "loading", "pruning", "indexing", "embedding", "done")


@dataclass
class SourceStatus:
    source: str
    published: int = 0
    total: int = 0
    last_started: datetime | None = None
    last_outcome: str | None = None  # None while the last run has not finished
    last_counts: dict[str, Any] = field(default_factory=dict)
    running: list[dict[str, Any]] = field(default_factory=list)  # progress of each active run


def progress_fraction(progress: dict[str, Any]) -> float:
    """0..1 from a `progress` query answer: pages done/total when reported, else the stage."""
    stage = str(progress.get("stage", "starting"))
    index = STAGES.index(stage) if stage in STAGES else 0
    step = 1 / (len(STAGES) - 1)
    base = index * step
    done, total = progress.get("pages_done"), progress.get("pages_total")
    if stage == "loading" and isinstance(done, int) and isinstance(total, int) and total > 0:
        base += step * min(done, total) / total
    return min(base, 1.0)


def _database_url() -> str:
    url = _settings().database_url
    if not url:
        _fail(
            "DATABASE_URL is not set: is `learn up` running? (it names what it started in"
            " .learnflow/learnflow.env, or DIR/learnflow.env with --data-dir DIR)"
        )
    return url


async def _catalog_status(etl_names: dict[str, str] | None = None) -> dict[str, SourceStatus]:
    """Per source: the last etl_run and the catalog's counts. The catalog names resources by
    ETL source (mit_edx, see, podcast); `etl_names` maps those to the source names etl_run uses."""
    import asyncpg

    conn = await asyncpg.connect(_database_url())
    try:
        runs = await conn.fetch(
            "SELECT DISTINCT ON (source) source, outcome, counts::text AS counts, started_on"
            " FROM etl_run ORDER BY source, started_on DESC"
        )
        # News and events are feed items: no published flag (a prune deletes them), so every
        # stored item is a published one.
        counts = await conn.fetch(
            "SELECT etl_source, count(*) FILTER (WHERE published) AS published, count(*) AS total"
            " FROM learning_resource GROUP BY etl_source"
            " UNION ALL SELECT etl_source, count(*), count(*) FROM feed_item GROUP BY etl_source"
        )
    finally:
        await conn.close()
    out: dict[str, SourceStatus] = {}
    for r in counts:
        name = (etl_names or {}).get(r["etl_source"], r["etl_source"])
        st = out.setdefault(name, SourceStatus(name))
        st.published += r["published"]
        st.total += r["total"]
    for r in runs:
        st = out.setdefault(r["source"], SourceStatus(r["source"]))
        st.last_started = r["started_on"]
        st.last_outcome = r["outcome"]
        st.last_counts = json.loads(r["counts"] or "{}")
    return out


async def running_ingestions(client) -> list[tuple[str, dict[str, Any]]]:
    """(source, progress) of every running IngestSourceWorkflow, asked through its query."""
    from datetime import timedelta

    from learnflow import search_attributes as sa

    found = []
    query = 'ExecutionStatus="Running" AND WorkflowType="IngestSourceWorkflow"'
    async for wf in client.list_workflows(query):
        source = wf.typed_search_attributes.get(sa.SOURCE) or wf.id
        handle = client.get_workflow_handle(wf.id, run_id=wf.run_id)
        try:
            progress = await handle.query("progress", rpc_timeout=timedelta(seconds=3))
        except Exception as exc:  # no worker answering (RPCError, query failure): say so
            progress = {"stage": "unknown", "error": type(exc).__name__}
        found.append((source, {**progress, "workflow_id": wf.id}))
    return found


@dataclass
class ArchiveStatus:
    """The last finished content-archive run of one source (IngestArchivesWorkflow, OCW)."""

    source: str
    workflow_id: str
    closed: datetime | None
    status: str
    outcome: str | None = None
    loaded: int | None = None
    retired: int | None = None


ARCHIVE_WORKFLOWS = ("IngestArchivesWorkflow", "IngestOcwWorkflow")


async def last_archive_runs(client, limit: int = 500) -> list[ArchiveStatus]:
    """Newest closed archive run per source, from Temporal's visibility (the runs keep their
    counts as search attributes; archives write no etl_run row)."""
    from learnflow import search_attributes as sa

    types = " OR ".join(f"WorkflowType = '{t}'" for t in ARCHIVE_WORKFLOWS)
    query = f"({types}) AND ExecutionStatus != 'Running'"
    found: dict[str, ArchiveStatus] = {}
    async for wf in client.list_workflows(query, limit=limit):
        attrs = wf.typed_search_attributes
        source = attrs.get(sa.SOURCE) or ("ocw" if wf.workflow_type == "IngestOcwWorkflow" else "")
        if not source:
            continue
        seen = found.get(source)
        closed = wf.close_time
        never = datetime.min.replace(tzinfo=UTC)
        if seen is not None and (seen.closed or never) >= (closed or never):
            continue
        found[source] = ArchiveStatus(
            source=source,
            workflow_id=wf.id,
            closed=closed,
            status=wf.status.name.lower() if wf.status else "unknown",
            outcome=attrs.get(sa.OUTCOME),
            loaded=attrs.get(sa.UPSERTED),
            retired=attrs.get(sa.UNPUBLISHED),
        )
    return [found[k] for k in sorted(found)]


async def collect_status(
    registered_sources: set[str], etl_names: dict[str, str] | None = None
) -> list[SourceStatus]:
    """Per source: catalog counts, the last etl_run, and the progress of active runs."""
    statuses = await _catalog_status(etl_names)
    for name in registered_sources:
        statuses.setdefault(name, SourceStatus(name))
    client = await _client()
    for source, progress in await running_ingestions(client):
        statuses.setdefault(source, SourceStatus(source)).running.append(progress)
    return [statuses[k] for k in sorted(statuses)]


def _status_table(rows: list[SourceStatus]):
    from rich.progress_bar import ProgressBar
    from rich.table import Table
    from rich.text import Text

    table = Table("source", "last run", "outcome", "upserted", "unpub.", "quar.", "published")
    table.add_column("progress", min_width=34)
    for st in rows:
        c = st.last_counts
        upserted = (c.get("inserted") or 0) + (c.get("updated") or 0)
        if st.running:
            outcome = "running"
        else:
            outcome = st.last_outcome or ("unfinished" if st.last_started else "never run")
        progress: Any = ""
        if st.running:
            p = st.running[0]
            bar = Table.grid(padding=(0, 1))
            bar.add_row(
                ProgressBar(total=100, completed=round(progress_fraction(p) * 100), width=16),
                Text(_progress_label(p)),
            )
            progress = bar
        table.add_row(
            st.source,
            f"{st.last_started:%Y-%m-%d %H:%M}" if st.last_started else "-",
            outcome,
            str(upserted) if c else "-",
            str(c.get("unpublished", "-")) if c else "-",
            str(c.get("quarantined", "-")) if c else "-",
            f"{st.published}/{st.total}",
            progress,
        )
    return table


def _archives_table(rows: list[ArchiveStatus]):
    from rich.table import Table

    table = Table(
        "source", "last archive run", "status", "outcome", "files loaded", "retired",
        title="content archives",
    )  # fmt: skip
    for a in rows:
        table.add_row(
            a.source,
            f"{a.closed:%Y-%m-%d %H:%M}" if a.closed else "-",
            a.status,
            a.outcome or "-",
            "-" if a.loaded is None else str(a.loaded),
            "-" if a.retired is None else str(a.retired),
        )
    return table


def _progress_label(progress: dict[str, Any]) -> str:
    details = ", ".join(
        f"{k} {v}" for k, v in progress.items() if k not in ("stage", "workflow_id", "error")
    )
    return f"{progress.get('stage', '?')}" + (f" ({details})" if details else "")


def _console():
    from rich.console import Console

    console = Console()
    if not console.is_terminal:  # piped or captured: don't squeeze the table to 80 columns
        console.width = 160
    return console


def status(
    watch: Annotated[bool, typer.Option(help="refresh until no ingestion is running")] = False,
    interval: Annotated[float, typer.Option(help="seconds between refreshes")] = 2.0,
    data_dir: DataDir = None,
) -> None:
    """Per source: last run outcome and counts, published/total, a progress bar while running."""
    from rich.live import Live

    from sources import all_sources

    use_data_dir(data_dir)

    sources = all_sources()
    registered = set(sources)
    etl_names = _etl_names(sources)
    console = _console()
    rows = _run(collect_status(registered, etl_names))
    if not watch or not any(r.running for r in rows):
        archives = _run(_archive_runs())
        merge_archive_runs(rows, archives)
        console.print(_status_table(rows))
        if archives:
            console.print(_archives_table(archives))
        console.print(_run(_vector_status()))
        return
    with Live(_status_table(rows), console=console, refresh_per_second=4) as live:
        while any(r.running for r in rows):
            time.sleep(interval)
            rows = _run(collect_status(registered, etl_names))
            live.update(_status_table(rows))


async def _vector_status() -> str:
    """The encoder whose collections the search service reads and, after a change of
    QDRANT_ENCODER, how far the configured one has caught up (it is promoted when complete)."""
    import asyncpg

    from learnflow.db.catalog import create_pool
    from learnflow.db.vector_serving import catch_up, read_serving
    from learnflow.settings import get_settings
    from learnflow.stores.vector_serving import configured_encoder

    configured = configured_encoder(get_settings())
    pool = await create_pool(_database_url(), min_size=1, max_size=1)
    try:
        record = await read_serving(pool)
        progress = await catch_up(pool, configured)
    except asyncpg.PostgresError as exc:  # a database `learn migrate` has not brought up to date
        return f"vectors: unknown ({exc})"
    finally:
        await pool.close()
    line = f"vectors: serving {record.encoder if record else configured + ' (not promoted yet)'}"
    if record is None or record.encoder != configured:
        line += f"; {configured}: {progress.embedded}/{progress.published} resources embedded"
    if record is not None and record.retiring:
        line += f"; {record.retiring}'s collections to be dropped"
    return line


def merge_archive_runs(rows: list[SourceStatus], archives: list[ArchiveStatus]) -> None:
    """A source loaded only by content-archive runs (canvas, ocw) writes no etl_run row: its
    last run is its newest archive run in Temporal, with that run's counts."""
    by_source = {a.source: a for a in archives}
    for st in rows:
        run = by_source.get(st.source)
        if run is None or st.last_started is not None or st.running:
            continue
        st.last_started = run.closed
        st.last_outcome = run.outcome if run.status == "completed" else run.status
        st.last_counts = {"inserted": run.loaded or 0, "unpublished": run.retired or 0}


def _etl_names(sources: dict[str, Any]) -> dict[str, str]:
    """ETL source -> source name, where exactly one source loads that ETL source."""
    by_etl: dict[str, list[str]] = {}
    for name, source in sources.items():
        by_etl.setdefault(source.etl_source, []).append(name)
    return {etl: names[0] for etl, names in by_etl.items() if len(names) == 1 and etl != names[0]}


async def _archive_runs() -> list[ArchiveStatus]:
    return await last_archive_runs(await _client())


def register(app: typer.Typer) -> None:
    app.add_typer(schedules_app, name="schedules")
    app.add_typer(quarantine_app, name="quarantine")
    app.command("status")(status)

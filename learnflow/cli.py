"""`learn`: the command line for developers and operators.

Commands of optional areas live in `learnflow/commands/*.py`; each module's `register(app)` adds
its commands, so a new area adds a file instead of editing this one.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import pkgutil
import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="learnflow: MIT Learn's data flows on Temporal, Postgres, search engines and gRPC.", no_args_is_help=True)
schedules_app = typer.Typer(help="Temporal schedules (one per source), reconciled from the table in code.")
quarantine_app = typer.Typer(help="Items a transform could not read.")
app.add_typer(schedules_app, name="schedules")
app.add_typer(quarantine_app, name="quarantine")


def _settings():
    from learnflow.settings import get_settings

    return get_settings()


@app.command()
def transform(
    source_kind: Annotated[str, typer.Argument(help="SOURCE or SOURCE:KIND, e.g. mitxonline:courses")],
    files: Annotated[list[Path], typer.Argument(help="raw payload files; extra files are context")],
) -> None:
    """Run a source's pure transform on raw payload files; print one JSON object per resource."""
    from sources import get_source
    from sources.base import load_json

    name, _, kind = source_kind.partition(":")
    try:
        source = get_source(name)
    except KeyError as exc:
        raise typer.BadParameter(str(exc)) from None
    kind = kind or source.kinds[0]

    def read(path: Path):
        raw = path.read_bytes()
        return load_json(raw) if raw.lstrip()[:1] in (b"{", b"[") else raw

    payload, *context = [read(f) for f in files]
    try:
        out = source.transform_payload(kind, payload, context)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    for obj in [*out.resources, *out.feed_items, *out.content_files, *out.view_events]:
        typer.echo(obj.model_dump_json())
    for q in out.quarantined:
        typer.echo(f"quarantined {q.item_key or '?'}: {q.reason}", err=True)


@app.command()
def protos() -> None:
    """Generate the gRPC Python code from protos/."""
    from search_service.protos import generate

    for path in generate():
        typer.echo(path)


@app.command()
def migrate() -> None:
    """Apply database migrations and load reference data."""

    async def go() -> None:
        from learnflow.stores import get_stores
        from learnflow.system import prepare_database

        stores = await get_stores()
        await prepare_database(stores)
        await stores.close()

    asyncio.run(go())


@app.command()
def search(
    text: str,
    mode: Annotated[str, typer.Option(help="keyword | vector | hybrid")] = "keyword",
    limit: int = 10,
    address: Annotated[str | None, typer.Option(help="gRPC address (default: GRPC_ADDRESS)")] = None,
    facet: Annotated[list[str] | None, typer.Option(help="facet to count (repeatable)")] = None,
) -> None:
    """Search through the gRPC service (the BFF's view)."""
    import grpc

    from search_service.pb import search_pb2, search_pb2_grpc

    modes = {"keyword": search_pb2.SEARCH_MODE_KEYWORD, "vector": search_pb2.SEARCH_MODE_VECTOR, "hybrid": search_pb2.SEARCH_MODE_HYBRID}
    if mode not in modes:
        raise typer.BadParameter(f"mode must be one of {', '.join(modes)}")
    with grpc.insecure_channel(address or _settings().grpc_address) as channel:
        stub = search_pb2_grpc.SearchServiceStub(channel)
        try:
            resp = stub.SearchResources(
                search_pb2.SearchResourcesRequest(query=text, mode=modes[mode], page_size=limit, facets=facet or []),
                timeout=10,
            )
        except grpc.RpcError as exc:
            typer.echo(f"error: {exc.code().name}: {exc.details()}", err=True)
            raise typer.Exit(1) from None
    typer.echo(f"{resp.total} results")
    for r in resp.results:
        typer.echo(f"{r.score:7.3f}  [{r.resource.platform}/{r.resource.resource_type}] {r.resource.title}  ({r.resource.readable_id})")
    for f in resp.facets:
        typer.echo(f"facet {f.name}: " + ", ".join(f"{b.value}={b.count}" for b in f.buckets))


@app.command()
def up(
    demo: Annotated[bool, typer.Option(help="serve generated source payloads (offline)")] = False,
    opensearch: Annotated[bool, typer.Option(help="use a real OpenSearch node for keyword search")] = False,
    data_dir: Annotated[Path, typer.Option(help="state directory")] = Path(".learnflow"),
    temporal_port: int = 7233,
    ui_port: int = 8233,
    no_trigger: Annotated[bool, typer.Option(help="create schedules but do not trigger a first run")] = False,
) -> None:
    """Start the whole system on embedded defaults; Ctrl-C stops every process it started."""
    from learnflow.logging import configure_logging
    from learnflow.system import ServiceStack, run_up

    configure_logging(json=False)
    stack = ServiceStack(data_dir=data_dir.resolve(), demo=demo, temporal_port=temporal_port, ui_port=ui_port)
    node = None
    try:
        if opensearch:
            from learnflow.harness.opensearch import OpenSearchNode  # type: ignore[import-not-found]

            node = OpenSearchNode()
            stack.env["OPENSEARCH_URL"] = node.start()
            stack.env["KEYWORD_BACKEND"] = "opensearch"
        stack.start()
        asyncio.run(run_up(stack, _settings().grpc_address, trigger=not no_trigger))
    finally:
        stack.stop()
        if node is not None:
            node.stop()


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
            typer.echo(f"{r['id']:6d} {r['created_on']:%Y-%m-%d %H:%M} {r['source']:16s} {r['item_key'] or '-':40s} {r['reason']}")
        await stores.close()

    asyncio.run(go())


@app.command()
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


def _register_command_modules() -> None:
    import learnflow.commands as commands

    for info in pkgutil.iter_modules(commands.__path__):
        module = importlib.import_module(f"learnflow.commands.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(app)


_register_command_modules()


if __name__ == "__main__":
    sys.exit(app())

"""`learn`: the command line for developers and operators.

Commands of optional areas live in `learn_cli/commands/*.py`; each module's `register(app)` adds
its commands, so a new area adds a file instead of editing this one.
"""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="learnflow: MIT Learn's data flows on Temporal, Postgres, search engines and gRPC.",
    no_args_is_help=True,
)


def _settings():
    from learnflow.settings import get_settings

    return get_settings()


@app.command()
def transform(
    source_kind: Annotated[
        str, typer.Argument(help="SOURCE or SOURCE:KIND, e.g. mitxonline:courses")
    ],
    files: Annotated[list[Path], typer.Argument(help="raw payload files; extra files are context")],
) -> None:
    """Run a source's pure transform on raw payload files; print one JSON object per resource."""
    from learnflow.errors import UnknownSource
    from sources import get_source
    from sources.base import load_json

    name, _, kind = source_kind.partition(":")
    try:
        source = get_source(name)
    except UnknownSource as exc:
        raise typer.BadParameter(exc.message) from None
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
        from learnflow.db.migrate import prepare_database
        from learnflow.stores import get_stores

        stores = await get_stores()
        await prepare_database(stores)
        await stores.close()

    asyncio.run(go())


@app.command()
def search(
    text: str,
    mode: Annotated[
        str, typer.Option(help="default (hybrid for text) | keyword | vector | hybrid")
    ] = "default",
    limit: int = 10,
    address: Annotated[
        str | None, typer.Option(help="gRPC address (default: GRPC_ADDRESS)")
    ] = None,
    facet: Annotated[list[str] | None, typer.Option(help="facet to count (repeatable)")] = None,
) -> None:
    """Search through the gRPC service (the BFF's view)."""
    import grpc

    from search_service.pb import search_pb2, search_pb2_grpc

    modes = {
        "default": search_pb2.SEARCH_MODE_UNSPECIFIED,
        "keyword": search_pb2.SEARCH_MODE_KEYWORD,
        "vector": search_pb2.SEARCH_MODE_VECTOR,
        "hybrid": search_pb2.SEARCH_MODE_HYBRID,
    }
    if mode not in modes:
        raise typer.BadParameter(f"mode must be one of {', '.join(modes)}")
    with grpc.insecure_channel(address or _settings().grpc_address) as channel:
        stub = search_pb2_grpc.SearchServiceStub(channel)
        try:
            resp = stub.SearchResources(
                search_pb2.SearchResourcesRequest(
                    query=text, mode=modes[mode], page_size=limit, facets=facet or []
                ),
                timeout=10,
            )
        except grpc.RpcError as exc:
            typer.echo(f"error: {exc.code().name}: {exc.details()}", err=True)
            raise typer.Exit(1) from None
    typer.echo(f"{resp.total} results")
    for r in resp.results:
        typer.echo(
            f"{r.score:7.3f}  [{r.resource.platform}/{r.resource.resource_type}] {r.resource.title}  ({r.resource.readable_id})"
        )
    for f in resp.facets:
        typer.echo(f"facet {f.name}: " + ", ".join(f"{b.value}={b.count}" for b in f.buckets))


@app.command()
def up(
    demo: Annotated[
        bool,
        typer.Option(
            help="serve generated payloads for every source offline: catalogs, feeds, course"
            " archives (in-process S3), course pages (local proxy)"
        ),
    ] = False,
    opensearch: Annotated[
        bool, typer.Option(help="use a real OpenSearch node for keyword search")
    ] = False,
    data_dir: Annotated[
        Path,
        typer.Option(
            help="state directory; its learnflow.env names what was started, for other"
            " commands (`learn status --data-dir DIR`)"
        ),
    ] = Path(".learnflow"),
    temporal_port: int = 7233,
    ui_port: int = 8233,
    no_trigger: Annotated[
        bool, typer.Option(help="create schedules but do not trigger a first run")
    ] = False,
) -> None:
    """Start the whole system on embedded defaults; Ctrl-C stops every process it started."""
    from devstack.system import ServiceStack, run_up
    from learnflow.logging import configure_logging

    configure_logging(json=False)
    stack = ServiceStack(
        data_dir=data_dir.resolve(), demo=demo, temporal_port=temporal_port, ui_port=ui_port
    )
    node = None
    try:
        if opensearch:
            from devstack.harness.opensearch import OpenSearchNode  # type: ignore[import-not-found]

            node = OpenSearchNode()
            stack.env["OPENSEARCH_URL"] = node.start()
            stack.env["KEYWORD_BACKEND"] = "opensearch"
        stack.start()
        asyncio.run(run_up(stack, _settings().grpc_address, trigger=not no_trigger))
    finally:
        stack.stop()
        if node is not None:
            node.stop()


def _register_command_modules() -> None:
    import learn_cli.commands as commands

    for info in pkgutil.iter_modules(commands.__path__):
        module = importlib.import_module(f"learn_cli.commands.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(app)


_register_command_modules()


if __name__ == "__main__":
    sys.exit(app())

"""`learn`: the command line for developers and operators.

Commands of optional areas live in `learn_cli/commands/*.py`; each module's `register(app)` adds
its commands, so a new area adds a file instead of editing this one.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import pkgutil
import sys

# Embedded Tika (native) runs `tesseract` probes with fork() on every parse, while the gRPC
# search service's threads run in the same process (`learn up`). grpcio's fork handlers then
# print "fork_posix.cc: Other threads are currently calling into gRPC, skipping fork() handlers"
# per fork. No child of ours uses gRPC after a fork (they exec at once), so the handlers have
# nothing to do: turn them off. Read by grpcio's core when it loads, hence before any import.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
from pathlib import Path
from typing import Annotated

import typer


class _Learn(typer.Typer):
    """The `learn` script. A command that used Temporal leaves without interpreter finalisation:
    the SDK's Rust threads can abort it after the work is done (sdk-python#300, `Fatal Python
    error: PyGILState_Release`, exit -6), and a compose one-shot job (`learn schedules sync`,
    waited on with service_completed_successfully) would read that as a failure. worker.py and
    `learn up` leave the same way. (typer's CliRunner calls the command, not this.)"""

    def __call__(self, *args, **kwargs):
        try:
            return super().__call__(*args, **kwargs)
        except SystemExit as exc:
            if "temporalio.client" not in sys.modules:
                raise
            code = exc.code
        if isinstance(code, str):
            print(code, file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code if isinstance(code, int) else int(code is not None))


app = _Learn(
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


def _rpc_error_line(exc) -> str:
    """One line for a failed call: the status and the server's message, never a traceback."""
    import grpc

    code = exc.code() if isinstance(exc, grpc.Call) else None
    details = (exc.details() if isinstance(exc, grpc.Call) else None) or str(exc)
    name = code.name if code is not None else "ERROR"
    if code == grpc.StatusCode.UNAVAILABLE:
        return f"error: {name}: no search service answers ({details.splitlines()[0]})"
    return f"error: {name}: {' '.join(details.split())}"


@app.command()
def search(
    text: str,
    mode: Annotated[
        str, typer.Option(help="default (hybrid for text) | keyword | vector | hybrid")
    ] = "default",
    limit: Annotated[int, typer.Option(help="results per page (at most 100)")] = 10,
    page: Annotated[int, typer.Option(help="which page of results, from 1")] = 1,
    address: Annotated[
        str | None, typer.Option(help="gRPC address (default: GRPC_ADDRESS)")
    ] = None,
    facet: Annotated[list[str] | None, typer.Option(help="facet to count (repeatable)")] = None,
) -> None:
    """Search through the gRPC service (the BFF's view): "1–10 of 13", then one result per line
    with its URL."""
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
    if page < 1:
        raise typer.BadParameter("--page counts from 1")
    if not 1 <= limit <= 100:
        raise typer.BadParameter("--limit is 1 to 100")
    offset = (page - 1) * limit
    with grpc.insecure_channel(address or _settings().grpc_address) as channel:
        stub = search_pb2_grpc.SearchServiceStub(channel)
        try:
            resp = stub.SearchResources(
                search_pb2.SearchResourcesRequest(
                    query=text,
                    mode=modes[mode],
                    page_size=limit,
                    offset=offset,
                    facets=facet or [],
                ),
                timeout=10,
            )
        except grpc.RpcError as exc:
            typer.echo(_rpc_error_line(exc), err=True)
            raise typer.Exit(1) from None
    typer.echo(_page_line(offset, len(resp.results), resp.total, page))
    for r in resp.results:
        res = r.resource
        typer.echo(
            f"{r.score:7.3f}  [{res.platform}/{res.resource_type}] {res.title}  ({res.readable_id})"
        )
        if res.url:
            typer.echo(f"         {res.url}")
    for f in resp.facets:
        typer.echo(f"facet {f.name}: " + ", ".join(f"{b.value}={b.count}" for b in f.buckets))


def _page_line(offset: int, shown: int, total: int, page: int) -> str:
    """ "1–10 of 13"; past the last page, say so."""
    if shown:
        return f"{offset + 1}–{offset + shown} of {total}"
    if total and offset >= total:
        return f"no results on page {page}: {total} in all"
    return "no results"


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
    webhook_port: Annotated[
        int, typer.Option(help="the signed-webhook service (with --demo or WEBHOOK_SECRET)")
    ] = 8089,
    no_trigger: Annotated[
        bool, typer.Option(help="create schedules but do not trigger a first run")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="print the logs here too (always in DIR/logs/)")
    ] = False,
    processes: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="search server processes sharing the gRPC port (0 = one per core;"
            " default SEARCH_PROCESSES, else 1)",
        ),
    ] = None,
) -> None:
    """Start the whole system on embedded defaults; Ctrl-C stops every process it started.

    Run it again over the same --data-dir to reuse the catalog, Temporal's history and the
    indexes (also after a crash)."""
    from devstack.up import run

    run(
        data_dir=data_dir,
        demo=demo,
        opensearch=opensearch,
        temporal_port=temporal_port,
        ui_port=ui_port,
        webhook_port=webhook_port,
        trigger=not no_trigger,
        verbose=verbose,
        processes=processes,
    )


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

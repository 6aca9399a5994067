"""`learn load FILE.jsonl`: resources given as JSON lines (what `learn transform` prints) into the
catalog and both indexes, through LoadResourcesWorkflow on the running stack."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from learn_cli.commands.ops import DataDir, _fail, use_data_dir

POLL_SECONDS = 0.5


def new_load_id() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:12]}"


def _progress_line(p: dict) -> str:
    stage = p.get("stage", "?")
    if stage == "loading":
        return (
            f"loading: page {p.get('pages_done', 0)}/{p.get('pages_total', 0)}"
            f" · loaded {p.get('loaded', 0)} · unchanged {p.get('unchanged', 0)}"
            f" · quarantined {p.get('quarantined', 0)}"
        )
    if stage == "indexing":
        return (
            f"indexing: loaded {p.get('loaded', 0)} · unchanged {p.get('unchanged', 0)}"
            f" · quarantined {p.get('quarantined', 0)}"
        )
    if stage == "embedding":
        return f"embedding: indexed {p.get('indexed', 0)}"
    return f"{stage}"


async def load_file(data: bytes, file_name: str, lines_per_page: int, echo=typer.echo):
    """Put the file in the blob store, run the workflow, echo its progress; return its result."""
    from temporalio.client import WorkflowFailureError

    from learnflow.contracts import (
        DEFAULT_QUEUE,
        LoadResourcesInput,
        LoadResult,
        load_file_key,
        load_workflow_id,
    )
    from learnflow.settings import get_settings
    from learnflow.stores import make_blob_store
    from worker import connect

    settings = get_settings()
    try:
        client = await connect(settings.temporal_address, settings.temporal_namespace)
    except RuntimeError as exc:
        _fail(f"no Temporal at {settings.temporal_address} ({exc}): is `learn up` running?")
    load_id = new_load_id()
    key = await make_blob_store(settings).put(load_file_key(load_id), data)
    handle = await client.start_workflow(
        "LoadResourcesWorkflow",
        LoadResourcesInput(
            load_id=load_id, file_key=key, file_name=file_name, lines_per_page=lines_per_page
        ),
        id=load_workflow_id(load_id),
        task_queue=DEFAULT_QUEUE,
        result_type=LoadResult,
    )
    echo(f"workflow {handle.id}")
    result_task = asyncio.ensure_future(handle.result())
    last = ""
    while not result_task.done():
        try:
            line = _progress_line(await handle.query("progress"))
        except Exception:  # no worker has picked it up yet: keep waiting
            line = "waiting for a worker"
        if line != last:
            echo(line)
            last = line
        await asyncio.wait({result_task}, timeout=POLL_SECONDS)
    try:
        return result_task.result()
    except WorkflowFailureError as exc:
        _fail(f"load failed: {exc.cause or exc}")


def load(
    file: Annotated[Path, typer.Argument(help="JSON lines: one resource (or feed item) a line")],
    data_dir: DataDir = None,
    lines_per_page: Annotated[int, typer.Option(help="lines per page (one upsert each)")] = 500,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """Load resources given as JSON lines (what `learn transform` prints) into the catalog and
    both indexes; bad lines are quarantined with their line number, the rest loads."""
    use_data_dir(data_dir)
    if not file.is_file():
        _fail(f"no such file: {file}")
    echo = (lambda _line: None) if as_json else typer.echo
    result = asyncio.run(load_file(file.read_bytes(), file.name, lines_per_page, echo))
    if as_json:
        typer.echo(json.dumps(result.model_dump(mode="json")))
        return
    for problem in result.problems:
        typer.echo(f"quarantined {file.name} {problem.reason}")
    if result.quarantined > len(result.problems):
        typer.echo(
            f"… {result.quarantined - len(result.problems)} more: `learn quarantine list --source load`"
        )
    typer.echo(
        f"{result.lines} lines: loaded {result.inserted + result.updated}"
        f" ({result.inserted} new, {result.updated} updated) · unchanged {result.unchanged}"
        f" · quarantined {result.quarantined} · indexed {result.indexed}"
        f" · embedded {result.embedded}"
    )


def register(app: typer.Typer) -> None:
    app.command("load")(load)

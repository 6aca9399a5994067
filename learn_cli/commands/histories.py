"""`learn histories record`: run every workflow type for real and keep its history for replay.

Each row of `RECORDINGS` is one run (a workflow type, an input, the path it takes). The command
starts throwaway real services (Temporal dev server, Postgres, the demo source server, moto S3),
runs learnflow in-process (`devstack.system.start_app`, the code path of `learn up`), executes
every row whose workflow type the worker registers, and writes each history, encoded as the
server stores it, to `tests/histories/<WorkflowType>__<n>.json`.

Old histories are kept: a new file is written only when a run's command sequence (its "shape")
differs from every file already there for that type. That is the point of the directory: when a
workflow's commands change (behind `workflow.patched()`), the old histories must still replay.
`--clean` starts over (only right before a release that drops old patches).
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from learnflow import REPO_ROOT
from learnflow.contracts import (
    ARCHIVE_QUEUE,
    DEFAULT_QUEUE,
    EMBEDDINGS_QUEUE,
    EmbedInput,
    IndexInput,
    IngestSourceInput,
    LoadResourcesInput,
    load_file_key,
)

HISTORIES_DIR = REPO_ROOT / "tests" / "histories"

histories_app = typer.Typer(
    help="Recorded workflow histories for the replay tests.", no_args_is_help=True
)


@dataclass(frozen=True)
class Recording:
    """One real run to record: what it starts, and which path through the workflow it takes."""

    workflow: str
    workflow_id: str
    arg: Any
    what: str
    task_queue: str = DEFAULT_QUEUE
    # Runs before the start: puts in place what the input names by key (a blob).
    prepare: Callable[[], Awaitable[None]] | None = None


LOAD_RECORDING_ID = "histories"


async def _put_load_file() -> None:
    """Two resources and a bad line for `learn load`'s workflow, where its input says."""
    from learnflow.models import Resource
    from learnflow.stores import get_stores

    lines = [
        Resource(
            readable_id=f"histories-load-{n}",
            platform="xpro",
            resource_type="course",
            etl_source="xpro",
            title=f"Recorded load {n}",
        ).model_dump_json()
        for n in (1, 2)
    ]
    data = "\n".join([lines[0], "{not json", lines[1]]).encode()
    await (await get_stores()).blobs.put(load_file_key(LOAD_RECORDING_ID), data)


async def _pending_retirement() -> None:
    """As after a promotion: an earlier encoder's collections await retirement (a 1 s grace, so
    the run records the timer without waiting the default)."""
    from learnflow.stores import get_stores

    stores = await get_stores()
    stores.settings.vector_retire_grace_seconds = 1.0  # this throwaway process's settings only
    async with stores.pool.acquire() as conn:
        await conn.execute("UPDATE vector_serving SET retiring = 'histories-retired-encoder'")


RECORDINGS: tuple[Recording, ...] = (
    Recording(
        "IngestSourceWorkflow",
        "histories/ingest/mitxonline",
        IngestSourceInput(source="mitxonline"),
        "full run: fetch pages (the courses pages streamed to load as they land, fetch-streams-v1),"
        " load courses then programs, prune, index child, embed child started",
    ),
    Recording(
        "IngestSourceWorkflow",
        "histories/ingest/edx",
        IngestSourceInput(source="edx"),
        "skipped: the source has no credentials (fetch returns a skip reason)",
    ),
    Recording(
        "IngestSourceWorkflow",
        "histories/ingest/mitxonline-again",
        IngestSourceInput(source="mitxonline"),
        "unchanged re-run: every page skipped by hash, the prune and, with nothing to index,"
        " the outcome recorded by the fetch (fetch-skips-v1, fetch-prunes-v1, fetch-finishes-v1:"
        " one activity), no index child and no embed child (rerun-idle-v1)",
    ),
    Recording(
        "IndexResourcesWorkflow",
        "histories/index/all",
        IndexInput(),
        "index every pending resource",
    ),
    Recording(
        "EmbedResourcesWorkflow",
        "histories/embed/all",
        EmbedInput(),
        "embed every pending resource (and promote the configured encoder: the first one)",
        task_queue=EMBEDDINGS_QUEUE,
    ),
    Recording(
        "EmbedResourcesWorkflow",
        "histories/embed/retire",
        EmbedInput(),
        "after a change of encoder: the previous encoder's collections dropped after the grace",
        task_queue=EMBEDDINGS_QUEUE,
        prepare=_pending_retirement,
    ),
    # Content archives and files (workflows/archives.py). Inputs are plain dicts in the shape of
    # that module's models, so this table does not import workflow code.
    Recording(
        "IngestArchivesWorkflow",
        "histories/archives/mitxonline",
        {"source": "mitxonline"},
        "one scheduled run of an archive source (the demo bucket holds no archive)",
        task_queue=ARCHIVE_QUEUE,
    ),
    Recording(
        "IngestArchiveWorkflow",
        "histories/archive/mitxonline",
        {"source": "mitxonline", "content_path": "courses/course-v1:MITxT+18.03x.1/missing.tar.gz"},
        "the content_files webhook for an archive key that is not in the bucket",
        task_queue=ARCHIVE_QUEUE,
    ),
    Recording(
        "IngestOcwWorkflow",
        "histories/ocw/all",
        {"source": "ocw", "options": {}},
        "every OCW site under courses/ (none in the demo bucket)",
        task_queue=ARCHIVE_QUEUE,
    ),
    Recording(
        "PurgeContentFilesWorkflow",
        "histories/content-files/purge",
        {"retention_days": 14},
        "purge content files unpublished for longer than the retention",
    ),
    Recording(
        "DeleteCourseContentWorkflow",
        "histories/delete/mitxonline",
        {"source": "mitxonline", "course_id": "course-v1:MITxT+18.03x.1"},
        "the delete webhook: unpublish one demo course and its files, deindex",
    ),
    Recording(
        "UnpublishOcwCourseWorkflow",
        "histories/ocw-unpublish/unknown",
        {"site_uid": "00000000-0000-0000-0000-000000000000"},
        "the OCW webhook's unpublish for a site the catalog does not have (nothing to do)",
    ),
    Recording(
        "LoadResourcesWorkflow",
        "histories/load",
        LoadResourcesInput(
            load_id=LOAD_RECORDING_ID,
            file_key=load_file_key(LOAD_RECORDING_ID),
            file_name="histories.jsonl",
            lines_per_page=2,
        ),
        "`learn load`: split, two pages read and upserted (a bad line quarantined), index, embed",
        prepare=_put_load_file,
    ),
)

# History events that come from workflow commands: their order is what replay checks.
_COMMAND_EVENTS = {
    "ACTIVITY_TASK_SCHEDULED": lambda a: (
        a.activity_task_scheduled_event_attributes.activity_type.name
    ),
    "TIMER_STARTED": lambda a: "",
    "START_CHILD_WORKFLOW_EXECUTION_INITIATED": (
        lambda a: a.start_child_workflow_execution_initiated_event_attributes.workflow_type.name
    ),
    "MARKER_RECORDED": lambda a: _marker_name(a.marker_recorded_event_attributes),
    "UPSERT_WORKFLOW_SEARCH_ATTRIBUTES": lambda a: "",
    "WORKFLOW_PROPERTIES_MODIFIED": lambda a: "",
    "SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED": lambda a: "",
    "REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED": lambda a: "",
    "WORKFLOW_EXECUTION_COMPLETED": lambda a: "",
    "WORKFLOW_EXECUTION_FAILED": lambda a: "",
    "WORKFLOW_EXECUTION_CONTINUED_AS_NEW": lambda a: "",
}


def _marker_name(attrs: Any) -> str:
    """`core_patch:<patch id>` for workflow.patched() markers, so patch stages differ in shape."""
    name = attrs.marker_name
    data = attrs.details.get("patch-data") if attrs.details else None
    if name == "core_patch" and data is not None and data.payloads:
        try:
            return f"{name}:{json.loads(data.payloads[0].data)['id']}"
        except (ValueError, KeyError, TypeError):
            pass
    return name


def history_shape(history: Any) -> list[str]:
    """The command sequence of a history (`WorkflowHistory`): event kinds with their activity,
    child workflow or marker name. Two runs down the same path have the same shape."""
    from temporalio.api.enums.v1 import EventType

    shape = []
    for event in history.events:
        kind = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")
        if kind in _COMMAND_EVENTS:
            name = _COMMAND_EVENTS[kind](event)
            shape.append(f"{kind}:{name}" if name else kind)
    return shape


def history_files(directory: Path = HISTORIES_DIR) -> list[Path]:
    return sorted(directory.glob("*__*.json"))


def workflow_type_of(path: Path) -> str:
    return path.name.split("__", 1)[0]


def load_history(path: Path):
    """A recorded history with its original workflow id: workflows may derive ids from it
    (children `<workflow id>/index/0`), so replaying under another id is non-deterministic."""
    from temporalio.client import WorkflowHistory

    data = json.loads(path.read_text())
    started = data["events"][0].get("workflowExecutionStartedEventAttributes", {})
    return WorkflowHistory.from_json(started.get("workflowId") or path.stem, data)


def save_if_new_shape(out_dir: Path, workflow: str, history: Any) -> tuple[Path | None, str]:
    """Write `history` as `<workflow>__<n>.json` unless a file of that type has its shape."""
    out_dir.mkdir(parents=True, exist_ok=True)
    shape = history_shape(history)
    for existing in history_files(out_dir):
        if (
            workflow_type_of(existing) == workflow
            and history_shape(load_history(existing)) == shape
        ):
            return None, f"same commands as {existing.name}: kept it"
    taken = {p.name for p in history_files(out_dir)}
    n = 1
    while f"{workflow}__{n}.json" in taken:
        n += 1
    path = out_dir / f"{workflow}__{n}.json"
    # to_json(): the encoded form the server stores (payloads stay base64 JSON), which is what
    # WorkflowHistory.from_json and the Replayer read.
    path.write_text(json.dumps(json.loads(history.to_json()), indent=1) + "\n")
    return path, ""


@dataclass
class RecordOutcome:
    recording: Recording
    path: Path | None = None  # written here; None when skipped or a same-shape file exists
    note: str = ""


async def record_histories(
    client: Any,
    out_dir: Path = HISTORIES_DIR,
    recordings: tuple[Recording, ...] = RECORDINGS,
    *,
    registered: set[str] | None = None,
    id_suffix: str = "",
    task_queue_prefix: str = "",
    timeout_seconds: float = 60.0,
) -> list[RecordOutcome]:
    """Run each recording whose workflow type is registered, write its history if new-shaped.

    `client` talks to a server where learnflow's workers run (`start_app`).
    """
    from datetime import timedelta

    from worker import registered_workflow_types

    registered = set(registered_workflow_types()) if registered is None else registered
    outcomes = []
    for rec in recordings:
        if rec.workflow not in registered:
            outcomes.append(RecordOutcome(rec, note="not registered by any worker: skipped"))
            continue
        if rec.prepare is not None:
            await rec.prepare()
        handle = await client.start_workflow(
            rec.workflow,
            rec.arg,
            id=f"{rec.workflow_id}{id_suffix}",
            task_queue=f"{task_queue_prefix}{rec.task_queue}",
            static_summary=f"history recording: {rec.what}"[:200],
            execution_timeout=timedelta(seconds=timeout_seconds),
        )
        try:
            await handle.result()
        except Exception as exc:
            cause = exc
            while cause.__cause__ is not None:  # the activity's error says why
                cause = cause.__cause__
            outcomes.append(RecordOutcome(rec, note=f"run failed, not recorded: {cause}"))
            continue
        history = await handle.fetch_history()
        path, note = save_if_new_shape(out_dir, rec.workflow, history)
        outcomes.append(RecordOutcome(rec, path=path, note=note or rec.what))
    return outcomes


def _create_buckets(endpoint_url: str, names: list[str]) -> None:
    import boto3

    from learnflow.settings import get_settings

    settings = get_settings()
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=settings.aws_access_key_id,
        aws_secret_access_key=settings.aws_secret_access_key.get_secret_value(),
        region_name=settings.aws_region,
    )
    for name in names:
        s3.create_bucket(Bucket=name)


async def _record_with_services(out_dir: Path) -> list[RecordOutcome]:
    """Throwaway real services + learnflow in-process (as `learn up`), then record."""
    from devstack.demo import install_demo
    from devstack.harness.fixture_server import FixtureServer
    from devstack.harness.postgres import DebianPostgres
    from devstack.harness.s3 import MotoS3
    from devstack.harness.temporal import DevServer
    from devstack.system import start_app
    from learnflow.settings import reset_settings
    from learnflow.stores import reset_stores

    with (
        tempfile.TemporaryDirectory(prefix="learnflow-histories-") as data_dir,
        DevServer() as temporal,
        DebianPostgres() as pg,
        FixtureServer() as fixtures,
        MotoS3() as s3,
    ):
        env = {
            "DATABASE_URL": pg.dsn,
            "TEMPORAL_ADDRESS": temporal.address,
            "TEMPORAL_NAMESPACE": "default",
            "DATA_DIR": data_dir,
            "BLOB_STORE_URL": "",
            "KEYWORD_BACKEND": "tantivy",
            "QDRANT_URL": "",
            "QDRANT_PATH": "",
            "QDRANT_ENCODER": "local",
            "GRPC_AUTH_ENABLED": "false",
            "S3_ENDPOINT_URL": s3.endpoint_url,
            # empty archive buckets: the archive workflows run their "nothing new" path
            "COURSE_ARCHIVE_BUCKET_NAME": "learnflow-histories-archives",
            "OCW_LIVE_BUCKET": "learnflow-histories-ocw",
            **install_demo(fixtures),
        }
        os.environ.update(env)
        _create_buckets(
            s3.endpoint_url, [env["COURSE_ARCHIVE_BUCKET_NAME"], env["OCW_LIVE_BUCKET"]]
        )
        # The "skipped" recording needs edX without credentials, whatever this shell has.
        for name in ("EDX_API_CLIENT_ID", "EDX_API_CLIENT_SECRET"):
            os.environ.pop(name, None)
        reset_settings()
        await reset_stores()
        app = await start_app()
        try:
            return await record_histories(app.client, out_dir)
        finally:
            await app.stop()
            await reset_stores()


@histories_app.command("record")
def record(
    out: Annotated[Path, typer.Option(help="where the JSON files go")] = HISTORIES_DIR,
    clean: Annotated[
        bool, typer.Option(help="delete existing histories first (drops old patch stages)")
    ] = False,
) -> None:
    """Run every workflow type on real services and write new-shaped histories to OUT."""
    if clean:
        for path in history_files(out):
            path.unlink()
    outcomes = asyncio.run(_record_with_services(out))
    for o in outcomes:
        where = o.path.relative_to(out.parent) if o.path else "-"
        typer.echo(f"{o.recording.workflow:28s} {o.recording.workflow_id:34s} {where}  {o.note}")
    from worker import registered_workflow_types

    missing = sorted(
        set(registered_workflow_types()) - {workflow_type_of(p) for p in history_files(out)}
    )
    if missing:
        typer.echo(
            f"no history for registered workflow types: {', '.join(missing)} "
            "(add a row to RECORDINGS in learn_cli/commands/histories.py)",
            err=True,
        )
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(histories_app, name="histories")

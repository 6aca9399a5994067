"""`learn extract-archive` and `learn archive-checksum` run the archive core on a local file;
`learn archives list|ingest|ocw|search` drive the S3 -> Temporal -> content-file pipeline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from learnflow.textextract import make_text_extractor
from sources.archives.checksum import archive_checksum
from sources.archives.safe_extract import UnsafeArchiveError


def _is_zip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) in (b"PK\x03\x04", b"PK\x05\x06")


def _run_id_for(path: Path) -> str:
    """The course run id an OLX export is named after (`course-v1:ORG+NUM+RUN.tar.gz`)."""
    name = path.name
    for suffix in (".tar.gz", ".tgz", ".tar", ".imscc", ".zip"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def extract_archive_cmd(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Archive to read")],
    run_id: Annotated[
        str | None, typer.Option(help="Course run id (default: from the file name)")
    ] = None,
    base_url: Annotated[str | None, typer.Option(help="Content base URL for jump-to links")] = None,
    tika_url: Annotated[
        str | None, typer.Option(help="Use this Tika server instead of embedded Tika")
    ] = None,
    canvas_folder: Annotated[
        str | None, typer.Option(help="Canvas course folder (for .imscc; default: run id)")
    ] = None,
    workers: Annotated[int, typer.Option(min=1, max=32, help="Parallel extractions")] = 1,
    show_failures: Annotated[bool, typer.Option(help="Also print failed files")] = True,
) -> None:
    """Print one JSON object per kept content file of an OLX `.tar.gz` or Canvas `.imscc`."""
    extractor = make_text_extractor("server" if tika_url else "embedded", tika_url)
    try:
        if _is_zip(file):
            from sources.archives.canvas import canvas_content_files

            result = canvas_content_files(
                file,
                canvas_folder or run_id or _run_id_for(file),
                extractor=extractor,
                max_workers=workers,
            )
            files, failures = result.files, result.failures
        else:
            from sources.archives.olx import extract_olx_archive

            walked = extract_olx_archive(
                file,
                run_id or _run_id_for(file),
                extractor=extractor,
                base_url=base_url,
                max_workers=workers,
            )
            files, failures = walked.files, walked.failures
    except UnsafeArchiveError as exc:
        typer.echo(json.dumps({"error": type(exc).__name__, "reason": str(exc)}), err=True)
        raise typer.Exit(code=2) from exc
    finally:
        extractor.close()
    for cf in files:
        row = {
            "key": cf.key,
            "title": cf.title,
            "file_extension": cf.file_extension,
            "content_type": cf.content_type,
            "text_length": len(cf.content),
            "checksum": cf.checksum,
            "archive_checksum": cf.archive_checksum,
            "source_path": cf.source_path,
            "url": cf.url,
        }
        typer.echo(json.dumps(row, ensure_ascii=False))
    if show_failures:
        for failure in failures:
            typer.echo(json.dumps({"failed": failure.key, "reason": failure.reason}), err=True)


def archive_checksum_cmd(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Archive to read")],
) -> None:
    """Print the archive's change-detection checksum (tar headers; Canvas rule for zips)."""
    try:
        typer.echo(archive_checksum(file))
    except UnsafeArchiveError as exc:
        typer.echo(json.dumps({"error": type(exc).__name__, "reason": str(exc)}), err=True)
        raise typer.Exit(code=2) from exc


archives_app = typer.Typer(
    help="Course archives in S3 -> content files (through Temporal).", no_args_is_help=True
)


async def _client():
    from learnflow.settings import get_settings
    from worker import connect

    s = get_settings()
    return await connect(s.temporal_address, s.temporal_namespace)


@archives_app.command("list")
def archives_list(
    source: Annotated[str, typer.Argument(help="canvas | edx (mit_edx) | mitxonline | xpro | oll")],
) -> None:
    """Print the newest archive of every course under the source's S3 prefix (JSON lines)."""
    from activities.archives.discover import discover_archives_sync
    from learnflow.settings import get_settings
    from sources import archive_source

    for ref in discover_archives_sync(archive_source(source), get_settings()):
        typer.echo(ref.model_dump_json())


@archives_app.command("ingest")
def archives_ingest(
    source: Annotated[str, typer.Argument(help="canvas | edx (mit_edx) | mitxonline | xpro | oll")],
    key: Annotated[
        str | None, typer.Option(help="One archive's S3 key (as the webhook would send it)")
    ] = None,
    run_id: Annotated[str | None, typer.Option(help="The course run, with --key")] = None,
    overwrite: Annotated[bool, typer.Option(help="Ignore change detection")] = False,
    wait: Annotated[bool, typer.Option(help="Wait for the result and print it")] = True,
) -> None:
    """Start IngestArchivesWorkflow for a source (or IngestArchiveWorkflow for one --key)."""
    import asyncio
    import uuid

    from learnflow.contracts import ARCHIVE_QUEUE
    from learnflow.contracts.archives import ArchiveWebhookInput, IngestArchivesInput

    async def go() -> None:
        client = await _client()
        suffix = uuid.uuid4().hex[:8]
        if key:
            arg = ArchiveWebhookInput(
                source=source, content_path=key, run_id=run_id, overwrite=overwrite
            )
            handle = await client.start_workflow(
                "IngestArchiveWorkflow", arg, id=f"cli/archive/{source}/{suffix}",
                task_queue=ARCHIVE_QUEUE,
            )  # fmt: skip
        else:
            handle = await client.start_workflow(
                "IngestArchivesWorkflow",
                IngestArchivesInput(source=source, overwrite=overwrite),
                id=f"cli/archives/{source}/{suffix}",
                task_queue=ARCHIVE_QUEUE,
            )
        typer.echo(json.dumps({"workflow_id": handle.id}))
        if wait:
            typer.echo(json.dumps(await handle.result(), default=str))

    asyncio.run(go())


@archives_app.command("ocw")
def archives_ocw(
    prefixes: Annotated[
        list[str] | None, typer.Argument(help="courses/<slug> prefixes (default: every site)")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Ignore change detection")] = False,
) -> None:
    """Start IngestOcwWorkflow for some OCW sites (or all of them) and print its result."""
    import asyncio
    import uuid

    from learnflow.contracts import ARCHIVE_QUEUE, IngestSourceInput

    options = {"prefixes": ",".join(prefixes or []), "overwrite": str(overwrite).lower()}

    async def go() -> None:
        client = await _client()
        result = await client.execute_workflow(
            "IngestOcwWorkflow",
            IngestSourceInput(source="ocw", options=options),
            id=f"cli/ocw/{uuid.uuid4().hex[:8]}",
            task_queue=ARCHIVE_QUEUE,
        )
        typer.echo(json.dumps(result, default=str))

    asyncio.run(go())


@archives_app.command("search")
def archives_search(
    text: Annotated[str, typer.Argument(help="Words to find in content files")],
    source: Annotated[str | None, typer.Option(help="Only this ETL source")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100)] = 10,
) -> None:
    """Full-text search of the content files in Postgres (no search engine needed)."""
    import asyncio

    from learnflow.db.catalog import create_pool
    from learnflow.db.content_files import ContentFileStore
    from learnflow.settings import get_settings

    async def go() -> None:
        pool = await create_pool(get_settings().database_url, min_size=1, max_size=2)
        try:
            for row in await ContentFileStore(pool).search_text(
                text, etl_source=source, limit=limit
            ):
                typer.echo(json.dumps(row, default=str))
        finally:
            await pool.close()

    asyncio.run(go())


def register(app: typer.Typer) -> None:
    app.command("extract-archive")(extract_archive_cmd)
    app.command("archive-checksum")(archive_checksum_cmd)
    app.add_typer(archives_app, name="archives")

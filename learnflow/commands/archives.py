"""`learn extract-archive` and `learn archive-checksum`: run the archive core on a local file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from learnflow.archives.checksum import archive_checksum
from learnflow.archives.safe_extract import UnsafeArchiveError
from learnflow.textextract import make_text_extractor


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
            from learnflow.archives.canvas import canvas_content_files

            result = canvas_content_files(
                file,
                canvas_folder or run_id or _run_id_for(file),
                extractor=extractor,
                max_workers=workers,
            )
            files, failures = result.files, result.failures
        else:
            from learnflow.archives.olx import extract_olx_archive

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


def register(app: typer.Typer) -> None:
    app.command("extract-archive")(extract_archive_cmd)
    app.command("archive-checksum")(archive_checksum_cmd)

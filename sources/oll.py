"""Open Learning Library (OLL): courses from a metadata CSV (a Google Sheet export or a file).

Transport: `GET https://docs.google.com/spreadsheets/d/<OLL_SHEETS_ID>/export?format=csv`, or
OLL_CSV_URL, or else the CSV MIT Learn bundles (`learning_resources/data/oll_metadata.csv` under
the reference data directory). Field rules follow MIT Learn's `learning_resources/etl/oll.py`
(reference/mit-learn.md §1.2): readable_id `MITx+<OLL Course>`, or for OCW-offered rows
`<OLL Course>+<semester slug>_<year>` from the row's run key; one archived, self-paced, anytime
run whose run_id is the CSV `readable_id`; topics from the two MITx Online topic columns (the
second header has a trailing space); `OCW+18.031+2019_Spring` is skipped (ingested from OCW).

Differences on purpose: `Duration` (weeks) and `Student Effort` (hours/week) are read into
min/max weeks and weekly hours, `Language` and `License CC` into languages and license_cc (MIT
Learn ignores these columns); topic names are trimmed.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from learnflow.models import (
    Availability,
    Format,
    Image,
    Instructor,
    Pace,
    Resource,
    ResourceType,
    Run,
    Topic,
    TransformOutput,
)
from learnflow.reference import reference_data
from learnflow.schedules import DAY, ingest_schedule
from learnflow.settings import SourceSettings
from sources._catalog import (
    course_numbers,
    fetch,
    item_key,
    require_dict,
    slugify,
    source_settings,
    text_of,
    transform_levels,
    year_and_semester,
)
from sources.archives.spec import ArchiveSource
from sources.base import ExtractContext, RawPage, Source, transform_each

PLATFORM = "oll"
ETL_SOURCE = "oll"
SKIP_OCW_COURSES = frozenset({"OCW+18.031+2019_Spring"})
SECONDARY_TOPIC = "MITxO Adopted Secondary Child "  # sic: the sheet's header has a trailing space
BUNDLED_CSV = Path("learning_resources") / "data" / "oll_metadata.csv"


class OllSettings(SourceSettings):
    oll_sheets_id: str = ""
    oll_csv_url: str = ""
    oll_csv_path: str = ""


# ----------------------------------------------------------------------------------------------
# transform (pure)


def rows_of(payload: Any) -> list[dict]:
    """CSV text (bytes or str) → rows; a list of row objects passes through."""
    if isinstance(payload, bytes):
        payload = payload.decode("utf-8-sig")
    if isinstance(payload, str):
        reader = csv.DictReader(io.StringIO(payload))
        try:
            if not reader.fieldnames or "readable_id" not in reader.fieldnames:
                raise ValueError("not the OLL metadata CSV: no readable_id column")
            return list(reader)
        except csv.Error as exc:
            raise ValueError(f"unreadable CSV: {exc}") from exc
    if isinstance(payload, list):
        return payload
    raise ValueError("OLL payload is neither CSV text nor a list of rows")


def _int(value: Any) -> int | None:
    text = str(value or "").strip()
    return int(text) if text.isdigit() else None


def transform_row(row: dict) -> Resource | None:
    row = require_dict(row, "CSV row")
    run_key = text_of(row.get("readable_id"), "readable_id")
    if run_key in SKIP_OCW_COURSES:
        return None
    number = text_of(row.get("OLL Course"), "OLL Course").strip()
    title = text_of(row.get("title"), "title").strip()
    ocw = row.get("Offered by") == "OCW"
    year, semester = year_and_semester(run_key)
    readable_id = f"{number}+{slugify(semester or '')}_{year or ''}" if ocw else f"MITx+{number}"
    published = row.get("published") == "YES"
    image = (
        Image(url=row["Course Image URL Flat"], alt=title)
        if row.get("Course Image URL Flat")
        else None
    )
    weeks = _int(row.get("Duration"))
    hours = _int(row.get("Student Effort"))
    run = Run(
        run_id=run_key,
        title=title,
        url=row.get("url") or None,
        published=published,
        description=row.get("description") or None,
        image=image,
        level=transform_levels([row.get("Level")]),
        year=year,
        semester=semester,
        instructors=[
            Instructor(full_name=name.strip())
            for name in (row.get(f"Instructor {i}") for i in range(1, 7))
            if isinstance(name, str) and name.strip()
        ],
        status="Archived",
        availability=Availability.anytime,
        pace=[Pace.self_paced],
        format=[Format.asynchronous],
        min_weeks=weeks,
        max_weeks=weeks,
        min_weekly_hours=hours,
        max_weekly_hours=hours,
    )
    topic_names = [
        str(name).strip().replace("Educational Policy", "Education Policy")
        for name in (row.get("MITxO Primary Child"), row.get(SECONDARY_TOPIC))
        if name and str(name).strip()
    ]
    return Resource(
        readable_id=readable_id,
        platform=PLATFORM,
        resource_type=ResourceType.course,
        etl_source=ETL_SOURCE,
        offered_by="ocw" if ocw else "mitx",
        title=title,
        description=row.get("description") or None,
        full_description=row.get("description") or None,
        url=row.get("url") or None,
        image=image,
        published=published,
        topics=[Topic(name=t) for t in reference_data().map_topics(topic_names, None)],
        resource_category="Course",
        runs=[run],
        availability=Availability.anytime,
        pace=[Pace.self_paced],
        format=[Format.asynchronous],
        delivery=["online"],
        license_cc=row.get("License CC") == "YES",
        languages=["es"] if row.get("Language") == "Spanish" else ["en"],
        min_weeks=weeks,
        max_weeks=weeks,
        min_weekly_hours=hours,
        max_weekly_hours=hours,
        course_numbers=course_numbers(number),
    )


def _key(row: Any) -> str | None:
    return item_key(row, "readable_id")


def transform(kind: str, payload: Any, context: Sequence[Any] = ()) -> TransformOutput:
    """Pure: the metadata CSV → OLL courses."""
    if kind != "courses":
        raise ValueError(f"unknown OLL kind {kind!r}")
    return transform_each(ETL_SOURCE, rows_of(payload), transform_row, _key)


# ----------------------------------------------------------------------------------------------
# extract (I/O)


async def extract(ctx: ExtractContext) -> AsyncIterator[RawPage]:
    """The CSV from the sheet, the configured URL, or the bundled file (in that order)."""
    cfg = source_settings(OllSettings, ctx.settings, ctx.options)
    url: str | None = None
    if cfg.oll_sheets_id:
        url = f"https://docs.google.com/spreadsheets/d/{cfg.oll_sheets_id}/export?format=csv"
    elif cfg.oll_csv_url:
        url = cfg.oll_csv_url
    if url:
        body = await fetch(ctx.http, url)
    else:
        path = (
            Path(cfg.oll_csv_path)
            if cfg.oll_csv_path
            else ctx.settings.reference_data_dir / BUNDLED_CSV
        )
        body = path.read_bytes()
        url = path.resolve().as_uri()
    yield RawPage(kind="courses", body=body, item_count=len(rows_of(body)), url=url)


SOURCE = Source(
    name="oll",
    etl_source=ETL_SOURCE,
    kinds=("courses",),
    transform=transform,
    extract=extract,
    resource_types=("course",),
    platform=PLATFORM,
    hosts=("docs.google.com",),
    urls=lambda settings: [u for u in [source_settings(OllSettings, settings).oll_csv_url] if u],
    description="Open Learning Library courses (metadata CSV)",
)

# Its course archives (OLX) in the archive bucket: `IngestArchivesWorkflow`.
ARCHIVE = ArchiveSource(
    "oll", "oll", "olx", "oll_course_bucket_prefix", "content_base_url_oll", "filename"
)

# When it runs (`learn schedules sync` creates these; cron in UTC).
SCHEDULES = (ingest_schedule("oll", "0 5 * * *", DAY),)

"""MIT xPRO catalog: courses and programs from xPRO's public REST API (two plain GETs, no auth).

Field rules follow MIT Learn's `learning_resources/etl/xpro.py` (reference/mit-learn.md §1.2):
the platform comes from the item's `platform` name (xPRO or a partner: Emeritus, Global Alumni,
Simplilearn, Susskind, WHU), a run is published when it has a `current_price`, topics are the
last `:` segment crosswalked for `xpro`, everything is professional with a professional
certificate. Programs link their nested courses as fetch-only children (by readable_id).

Differences on purpose: an item whose platform name is unknown is quarantined with its reason
(MIT Learn drops it with a log line); weeks and weekly hours fall back to parsing the `duration`
and `time_commitment` text when the API leaves the numbers out.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from learnflow.models import (
    CertificationType,
    Format,
    Image,
    Instructor,
    Pace,
    Relationship,
    RelationType,
    Resource,
    ResourceRef,
    ResourceType,
    Run,
    Topic,
    TransformOutput,
)
from learnflow.reference import reference_data
from learnflow.schedules import DAY, archive_schedule, ingest_schedule
from learnflow.settings import SourceSettings
from sources._catalog import (
    best_run,
    copy_run_values,
    course_numbers,
    fetch,
    item_key,
    make_price,
    parse_commitment,
    parse_duration,
    require_dict,
    source_settings,
    text_of,
    transform_delivery,
    utcnow,
)
from sources.archives.spec import ArchiveSource
from sources.base import (
    ExtractContext,
    RawPage,
    Source,
    clean_html,
    items_of,
    parse_datetime,
    transform_each,
)

OFFERED_BY = "xpro"
ETL_SOURCE = "xpro"
PLATFORMS = {
    "Emeritus": "emeritus",
    "Global Alumni": "globalalumni",
    "Simplilearn": "simplilearn",
    "Susskind": "susskind",
    "WHU": "whu",
    "xPRO": "xpro",
}

clock: Callable[[], datetime] = utcnow


class XproSettings(SourceSettings):
    """XPRO_* settings (MIT Learn's names; it has no defaults, these are xPRO's public API)."""

    xpro_catalog_api_url: str = "https://xpro.mit.edu/api/programs/"
    xpro_courses_api_url: str = "https://xpro.mit.edu/api/courses/"


# ----------------------------------------------------------------------------------------------
# transform (pure)


def _platform(item: dict) -> str:
    name = item.get("platform")
    if name not in PLATFORMS:
        raise ValueError(f"unknown xPRO platform {name!r}")
    return PLATFORMS[name]


def _topics(item: dict) -> list[Topic]:
    names = [
        t["name"].split(":")[-1].strip()
        for t in item.get("topics") or []
        if isinstance(t, dict) and isinstance(t.get("name"), str)
    ]
    return [Topic(name=n) for n in reference_data().map_topics(names, OFFERED_BY)]


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _credits(value: Any) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _effort(item: dict) -> dict[str, Any]:
    """duration / weeks / commitment / weekly hours, with the numbers parsed from text if absent."""
    duration, dmin, dmax = parse_duration(item.get("duration"))
    commitment, hmin, hmax = parse_commitment(item.get("time_commitment"))
    return {
        "duration": duration,
        "min_weeks": _int(item.get("min_weeks")) if item.get("min_weeks") is not None else dmin,
        "max_weeks": _int(item.get("max_weeks")) if item.get("max_weeks") is not None else dmax,
        "time_commitment": commitment,
        "min_weekly_hours": _int(item.get("min_weekly_hours"))
        if item.get("min_weekly_hours") is not None
        else hmin,
        "max_weekly_hours": _int(item.get("max_weekly_hours"))
        if item.get("max_weekly_hours") is not None
        else hmax,
    }


def _instructors(raw: Any) -> list[Instructor]:
    return [
        Instructor(full_name=i["name"].strip())
        for i in raw or []
        if isinstance(i, dict) and isinstance(i.get("name"), str) and i["name"].strip()
    ]


def _dt(value: Any) -> datetime | None:
    return parse_datetime(value)


def _transform_run(run: dict, course: dict) -> Run:
    run = require_dict(run, "course run")
    price = run.get("current_price")
    return Run(
        run_id=text_of(run.get("courseware_id"), "courseware_id"),
        title=run.get("title"),
        url=run.get("courseware_url") or course.get("url"),
        start_date=_dt(run.get("start_date") or run.get("enrollment_start")),
        end_date=_dt(run.get("end_date")),
        enrollment_start=_dt(run.get("enrollment_start")),
        enrollment_end=_dt(run.get("enrollment_end")),
        published=bool(price),
        prices=[make_price(price)] if price else [],
        instructors=_instructors(run.get("instructors")),
        availability=course.get("availability"),
        delivery=transform_delivery(course.get("format")),
        pace=[Pace.self_paced],
        format=[Format.asynchronous],
        **_effort(course),
    )


def transform_course(course: dict, now: datetime | None = None) -> Resource:
    course = require_dict(course, "course")
    readable_id = text_of(course.get("readable_id"), "readable_id")
    runs = [_transform_run(r, course) for r in course.get("courseruns") or []]
    resource = Resource(
        readable_id=readable_id,
        platform=_platform(course),
        resource_type=ResourceType.course,
        etl_source=ETL_SOURCE,
        offered_by=OFFERED_BY,
        title=text_of(course.get("title"), "title"),
        description=clean_html(course.get("description")),
        url=course.get("url"),
        image=Image(url=course["thumbnail_url"]) if course.get("thumbnail_url") else None,
        published=any(r.published for r in runs),
        professional=True,
        topics=_topics(course),
        certification=True,
        certification_type=CertificationType.professional,
        resource_category="Course",
        runs=runs,
        availability=course.get("availability"),
        delivery=transform_delivery(course.get("format")),
        pace=[Pace.self_paced],
        format=[Format.asynchronous],
        continuing_ed_credits=_credits(course.get("credits")),
        course_numbers=course_numbers(readable_id),
        details={"xpro_id": course.get("id")},
        **_effort(course),
    )
    return copy_run_values(resource, best_run(runs, now or clock()))


def transform_program(program: dict, now: datetime | None = None) -> Resource:
    program = require_dict(program, "program")
    readable_id = text_of(program.get("readable_id"), "readable_id")
    title = text_of(program.get("title"), "title")
    price = program.get("current_price")
    run = Run(
        run_id=readable_id,
        title=title,
        description=clean_html(program.get("description")),
        url=program.get("url"),
        prices=[make_price(price)] if price else [],
        published=bool(price),
        enrollment_start=_dt(program.get("enrollment_start")),
        start_date=_dt(program.get("start_date") or program.get("enrollment_start")),
        end_date=_dt(program.get("end_date")),
        instructors=_instructors(program.get("instructors")),
        delivery=transform_delivery(program.get("format")),
        availability=program.get("availability"),
        pace=[Pace.self_paced],
        format=[Format.asynchronous],
        **_effort(program),
    )
    relationships = []
    for pos, course in enumerate(program.get("courses") or []):
        course = require_dict(course, "program course")
        relationships.append(
            Relationship(
                relation_type=RelationType.program_courses,
                child=ResourceRef(
                    platform=_platform(course),
                    readable_id=text_of(course.get("readable_id"), "program course readable_id"),
                    resource_type=ResourceType.course,
                ),
                position=pos,
            )
        )
    resource = Resource(
        readable_id=readable_id,
        platform=_platform(program),
        resource_type=ResourceType.program,
        etl_source=ETL_SOURCE,
        offered_by=OFFERED_BY,
        title=title,
        description=clean_html(program.get("description")),
        url=program.get("url"),
        image=Image(url=program["thumbnail_url"]) if program.get("thumbnail_url") else None,
        # a program is published only when it has a product (a price)
        published=bool(price),
        professional=True,
        topics=_topics(program),
        certification=True,
        certification_type=CertificationType.professional,
        resource_category="Program",
        runs=[run],
        availability=program.get("availability"),
        delivery=transform_delivery(program.get("format")),
        pace=[Pace.self_paced],
        format=[Format.asynchronous],
        continuing_ed_credits=_credits(program.get("credits")),
        relationships=relationships,
        details={"xpro_id": program.get("id")},
        **_effort(program),
    )
    return copy_run_values(resource, best_run([run], now or clock()))


def _key(item: Any) -> str | None:
    return item_key(item, "readable_id")


def transform(kind: str, payload: Any, context: Sequence[Any] = ()) -> TransformOutput:
    """Pure: the courses list or the programs list → resources."""
    now = clock()
    if kind == "courses":
        return transform_each(
            ETL_SOURCE, items_of(payload), lambda c: transform_course(c, now), _key
        )
    if kind == "programs":
        return transform_each(
            ETL_SOURCE, items_of(payload), lambda p: transform_program(p, now), _key
        )
    raise ValueError(f"unknown xPRO kind {kind!r}")


# ----------------------------------------------------------------------------------------------
# extract (I/O)


async def extract(ctx: ExtractContext) -> AsyncIterator[RawPage]:
    """The courses list, then the programs list (each one GET)."""
    cfg = source_settings(XproSettings, ctx.settings, ctx.options)
    for kind, url in (
        ("courses", cfg.xpro_courses_api_url),
        ("programs", cfg.xpro_catalog_api_url),
    ):
        body = await fetch(ctx.http, url)
        yield RawPage(kind=kind, body=body, item_count=len(items_of(json.loads(body))), url=url)


SOURCE = Source(
    name="xpro",
    etl_source=ETL_SOURCE,
    reads_clock=True,  # `clock` picks the best run / upcoming events
    kinds=("courses", "programs"),
    transform=transform,
    extract=extract,
    resource_types=("course", "program"),
    platform="xpro",
    hosts=("xpro.mit.edu",),
    urls=lambda settings: [
        source_settings(XproSettings, settings).xpro_courses_api_url,
        source_settings(XproSettings, settings).xpro_catalog_api_url,
    ],
    description="MIT xPRO catalog (courses and programs, incl. partner platforms)",
)

# Its course archives (OLX) in the archive bucket: `IngestArchivesWorkflow`.
ARCHIVE = ArchiveSource(
    "xpro", "xpro", "olx", "xpro_course_bucket_prefix", "content_base_url_xpro", "folder"
)

# When it runs (`learn schedules sync` creates these; cron in UTC).
SCHEDULES = (
    ingest_schedule("xpro", "0 5 * * *", DAY),
    archive_schedule("xpro", "0 8 * * *", DAY),
)

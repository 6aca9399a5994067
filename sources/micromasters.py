"""MicroMasters programs from the MicroMasters catalog API (one GET, a JSON list).

MIT Learn removed this source on 2026-07-23 (`5cd79dfb1`); learnflow keeps it, following the last
rules (reference/mit-learn.md §1.2 "MicroMasters (historical)"): programs whose page URL is under
`/dedp/`, `/scm/`, `/fin/` or `/pom/` are skipped (they are ingested elsewhere);
readable_id `micromasters-program-<id>`, platform edX, offered by MITx, certification
micromasters; the program's courses are edX courses by `edx_key`, in `position_in_program`
order, linked fetch-only (the edX source owns them); the price is `total_price`.

Differences on purpose: MIT Learn asked its database whether each child course is published to
compute the program's pace; this transform is pure, so pace is left to the loader (empty here)
and the child links carry the order only. Every request has a timeout.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Sequence
from typing import Any

from learnflow.models import (
    Availability,
    CertificationType,
    Format,
    Image,
    Instructor,
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
from learnflow.schedules import DAY, ingest_schedule
from learnflow.settings import SourceSettings
from sources._catalog import fetch, item_key, make_price, require_dict, source_settings, text_of
from sources.base import ExtractContext, RawPage, Source, items_of, parse_datetime, transform_each

PLATFORM = "edx"
OFFERED_BY = "mitx"
ETL_SOURCE = "micromasters"
READABLE_ID_PREFIX = "micromasters-program-"
_SKIPPED_URL = re.compile(r"/(dedp|scm|fin|pom)/")


class MicromastersSettings(SourceSettings):
    """MICROMASTERS_CATALOG_API_URL (no default, as in MIT Learn: unset means the source is off)."""

    micromasters_catalog_api_url: str = ""


# ----------------------------------------------------------------------------------------------
# transform (pure)


def transform_program(program: dict) -> Resource | None:
    """One catalog program → a program resource, or None without a page / under a skipped path."""
    program = require_dict(program, "program")
    url = program.get("programpage_url")
    if not url or _SKIPPED_URL.search(url):
        return None
    program_id = program.get("id")
    if not isinstance(program_id, int | str) or isinstance(program_id, bool) or program_id == "":
        raise ValueError("program id is missing")
    readable_id = f"{READABLE_ID_PREFIX}{program_id}"
    title = text_of(program.get("title"), "title")
    courses = [require_dict(c, "program course") for c in program.get("courses") or []]
    courses.sort(key=lambda c: c["position_in_program"])
    relationships = [
        Relationship(
            relation_type=RelationType.program_courses,
            child=ResourceRef(
                platform=PLATFORM,
                readable_id=text_of(c.get("edx_key"), "edx_key"),
                resource_type=ResourceType.course,
            ),
            position=pos,
        )
        for pos, c in enumerate(courses)
    ]
    price = program.get("total_price")
    prices = [make_price(price)] if price not in (None, "") else []
    run = Run(
        run_id=readable_id,
        title=title,
        instructors=[
            Instructor(full_name=i["name"].strip())
            for i in program.get("instructors") or []
            if isinstance(i, dict) and isinstance(i.get("name"), str) and i["name"].strip()
        ],
        prices=prices,
        start_date=parse_datetime(program.get("start_date") or program.get("enrollment_start")),
        end_date=parse_datetime(program.get("end_date")),
        enrollment_start=parse_datetime(program.get("enrollment_start")),
        availability=Availability.dated,
        format=[Format.asynchronous],
    )
    topic_names = [t.get("name", "") for t in program.get("topics") or [] if isinstance(t, dict)]
    return Resource(
        readable_id=readable_id,
        platform=PLATFORM,
        resource_type=ResourceType.program,
        etl_source=ETL_SOURCE,
        offered_by=OFFERED_BY,
        title=title,
        url=url,
        image=Image(url=program["thumbnail_url"]) if program.get("thumbnail_url") else None,
        published=True,
        certification=True,
        certification_type=CertificationType.micromasters,
        resource_category="Program",
        topics=[Topic(name=t) for t in reference_data().map_topics(topic_names, OFFERED_BY)],
        runs=[run],
        prices=prices,
        availability=Availability.dated,
        format=[Format.asynchronous],
        delivery=["online"],
        relationships=relationships,
        details={
            "micromasters_id": program_id,
            # the edX run keys of each child course, in program order (for the loader)
            "course_runs": {
                c["edx_key"]: [
                    r["edx_course_key"]
                    for r in c.get("course_runs") or []
                    if r.get("edx_course_key")
                ]
                for c in courses
            },
        },
    )


def _key(item: Any) -> str | None:
    return item_key(item, "id", prefix=READABLE_ID_PREFIX)


def transform(kind: str, payload: Any, context: Sequence[Any] = ()) -> TransformOutput:
    """Pure: the catalog list → MicroMasters programs."""
    if kind != "programs":
        raise ValueError(f"unknown MicroMasters kind {kind!r}")
    return transform_each(ETL_SOURCE, items_of(payload), transform_program, _key)


# ----------------------------------------------------------------------------------------------
# extract (I/O)


def unavailable(settings: Any) -> str | None:
    if not source_settings(MicromastersSettings, settings).micromasters_catalog_api_url:
        return "MICROMASTERS_CATALOG_API_URL is not set"
    return None


async def extract(ctx: ExtractContext) -> AsyncIterator[RawPage]:
    url = source_settings(
        MicromastersSettings, ctx.settings, ctx.options
    ).micromasters_catalog_api_url
    if not url:
        raise ValueError("MICROMASTERS_CATALOG_API_URL is not set")
    body = await fetch(ctx.http, url)
    yield RawPage(kind="programs", body=body, item_count=len(items_of(json.loads(body))), url=url)


SOURCE = Source(
    name="micromasters",
    etl_source=ETL_SOURCE,
    kinds=("programs",),
    transform=transform,
    extract=extract,
    resource_types=("program",),
    platform=PLATFORM,
    hosts=("micromasters.mit.edu",),
    urls=lambda settings: [
        u
        for u in [source_settings(MicromastersSettings, settings).micromasters_catalog_api_url]
        if u
    ],
    unavailable=unavailable,
    description="MicroMasters programs (removed from MIT Learn 2026-07; kept here)",
)

# When it runs (`learn schedules sync` creates these; cron in UTC).
SCHEDULES = (ingest_schedule("micromasters", "0 5 * * *", DAY),)

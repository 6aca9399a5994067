"""MIT Sloan Executive Education (`see`): courses and their offerings (runs) from the SEE API.

Transport: OAuth2 client credentials with `token_type=jwt` against SEE_API_ACCESS_TOKEN_URL, then
`GET {SEE_API_URL}courses` and `GET {SEE_API_URL}course-offerings` with `Authorization: JWT
<token>`. Field rules follow MIT Learn's `learning_resources/etl/sloan.py` (reference/mit-learn.md
§1.2): runs are matched to courses on `Course_Id`; a course without a URL or without runs is
skipped; topics are the last `:` segment crosswalked for `see`; "Online" + "Asynchronous
(On-Demand)" means anytime and self-paced; continuing-ed credits come from the first run.

`learn transform sloan:courses COURSES.json RUNS.json`: the courses file is the payload and the
offerings file arrives as context (the extract yields them as kinds `courses` then `runs`).

Differences on purpose (reference/mit-learn.md §9): MIT Learn's Sloan requests have no timeout —
here every request has one, and the token is cached until it expires.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

from dateutil import parser as dateparser
from pydantic import SecretStr

from learnflow.models import (
    Availability,
    CertificationType,
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
    best_run,
    copy_run_values,
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
from sources._oauth import jwt_headers
from sources.base import (
    EASTERN,
    ExtractContext,
    RawPage,
    Source,
    clean_html,
    items_of,
    parse_datetime,
    transform_each,
)

PLATFORM = "see"
OFFERED_BY = "see"
ETL_SOURCE = "see"
ON_DEMAND = "Asynchronous (On-Demand)"

clock: Callable[[], datetime] = utcnow


class SloanSettings(SourceSettings):
    """SEE_API_* settings (MIT Learn's names; MIT Learn has no defaults)."""

    see_api_url: str = ""
    see_api_access_token_url: str = ""
    see_api_client_id: str = ""
    see_api_client_secret: SecretStr | None = None


# ----------------------------------------------------------------------------------------------
# transform (pure)


def _datetime(value: Any) -> datetime | None:
    """A date or datetime string read in US/Eastern (any offset in the text is replaced)."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise TypeError(f"date {value!r} is not text")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = dateparser.parse(value)
    return parsed.replace(tzinfo=EASTERN).astimezone(UTC)


def _on_demand(run: dict) -> bool:
    return run.get("Delivery") == "Online" and run.get("Format") == ON_DEMAND


def _formats(run: dict) -> list[Format]:
    delivery = run.get("Delivery")
    if delivery == "In Person":
        return [Format.synchronous]
    if delivery == "Blended":
        return [Format.synchronous, Format.asynchronous]
    return (
        [Format.asynchronous]
        if "Asynchronous" in (run.get("Format") or "")
        else [Format.synchronous]
    )


def _location(run: dict) -> str | None:
    if run.get("Delivery") == "Online":
        return None
    return run.get("Location") or None


def _topics(topic: Any) -> list[Topic]:
    if not topic:
        return []
    if not isinstance(topic, str):
        raise TypeError("Topics is not text")
    names = [topic.split(":")[-1].strip()]
    return [Topic(name=t) for t in reference_data().map_topics(names, OFFERED_BY)]


def transform_run(run: dict, course: dict) -> Run:
    run = require_dict(run, "course offering")
    faculty = run.get("Faculty_Name") or ""
    duration, min_weeks, max_weeks = parse_duration(run.get("Duration"))
    commitment, min_hours, max_hours = parse_commitment(run.get("Time_Commitment"))
    return Run(
        run_id=text_of(run.get("CO_Title"), "CO_Title"),
        title=course.get("Title"),
        url=course.get("URL"),
        start_date=_datetime(run.get("Start_Date")),
        end_date=_datetime(run.get("End_Date")),
        status="Current",
        published=True,
        delivery=transform_delivery(run.get("Delivery")),
        availability=Availability.anytime if _on_demand(run) else Availability.dated,
        pace=[Pace.self_paced if _on_demand(run) else Pace.instructor_paced],
        format=_formats(run),
        prices=[make_price(run.get("Price"), run.get("Currency") or "USD")],
        instructors=[Instructor(full_name=n.strip()) for n in faculty.split(",") if n.strip()],
        location=_location(run),
        duration=duration,
        min_weeks=min_weeks,
        max_weeks=max_weeks,
        time_commitment=commitment,
        min_weekly_hours=min_hours,
        max_weekly_hours=max_hours,
    )


def transform_course(
    course: dict, runs: list[dict], now: datetime | None = None
) -> Resource | None:
    """One SEE course with its offerings → a course, or None without URL or offerings."""
    course = require_dict(course, "course")
    course_id = text_of(course.get("Course_Id"), "Course_Id")
    if not runs or not course.get("URL"):
        return None
    title = text_of(course.get("Title"), "Title")
    transformed = [transform_run(r, course) for r in runs]
    delivery = sorted({d for r in transformed for d in r.delivery})
    resource = Resource(
        readable_id=course_id,
        platform=PLATFORM,
        resource_type=ResourceType.course,
        etl_source=ETL_SOURCE,
        offered_by=OFFERED_BY,
        title=title,
        description=clean_html(course.get("Description")),
        url=course["URL"],
        image=Image(url=course["Image_Src"], alt=title, description=title)
        if course.get("Image_Src")
        else None,
        published=True,
        professional=True,
        certification=True,
        certification_type=CertificationType.professional,
        resource_category="Course",
        delivery=delivery,
        topics=_topics(course.get("Topics")),
        runs=transformed,
        continuing_ed_credits=runs[0].get("Continuing_Ed_Credits") or None,
        pace=sorted({p for r in transformed for p in r.pace}),
        format=sorted({f for r in transformed for f in r.format}),
        last_modified=parse_datetime(course.get("SourceLastModifiedDate")),
        details={"certification_name": course.get("Certification_Type")},
    )
    return copy_run_values(resource, best_run(transformed, now or clock()))


def _runs_by_course(pages: Sequence[Any]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for page in pages:
        for run in items_of(page):
            if isinstance(run, dict) and isinstance(run.get("Course_Id"), str):
                out.setdefault(run["Course_Id"], []).append(run)
    return out


def _key(item: Any) -> str | None:
    return item_key(item, "Course_Id")


def transform(kind: str, payload: Any, context: Sequence[Any] = ()) -> TransformOutput:
    """Pure: the courses list (payload) with the offerings list(s) as context → courses."""
    if kind == "runs":
        return TransformOutput()  # offerings are context for courses, never resources themselves
    if kind != "courses":
        raise ValueError(f"unknown Sloan kind {kind!r}")
    now = clock()
    courses = items_of(payload)
    runs = _runs_by_course(context)
    return transform_each(
        ETL_SOURCE,
        courses,
        lambda c: transform_course(
            c, runs.get(c.get("Course_Id"), []) if isinstance(c, dict) else [], now
        ),
        _key,
    )


# ----------------------------------------------------------------------------------------------
# extract (I/O)


def unavailable(settings: Any) -> str | None:
    cfg = source_settings(SloanSettings, settings)
    missing = [
        name.upper()
        for name in (
            "see_api_url",
            "see_api_access_token_url",
            "see_api_client_id",
            "see_api_client_secret",
        )
        if not getattr(cfg, name)
    ]
    return (
        f"Sloan Executive Education API not configured ({', '.join(missing)})" if missing else None
    )


async def extract(ctx: ExtractContext) -> AsyncIterator[RawPage]:
    """The courses list, then the course offerings (one cached JWT for both)."""
    cfg = source_settings(SloanSettings, ctx.settings, ctx.options)
    reason = unavailable(cfg)
    if reason:
        raise ValueError(reason)
    assert cfg.see_api_client_secret is not None
    headers = await jwt_headers(
        ctx.http, cfg.see_api_access_token_url, cfg.see_api_client_id, cfg.see_api_client_secret
    )
    base = cfg.see_api_url if cfg.see_api_url.endswith("/") else f"{cfg.see_api_url}/"
    for kind, path in (("courses", "courses"), ("runs", "course-offerings")):
        url = urljoin(base, path)
        body = await fetch(ctx.http, url, headers=headers)
        yield RawPage(kind=kind, body=body, item_count=len(items_of(json.loads(body))), url=url)


SOURCE = Source(
    name="sloan",
    etl_source=ETL_SOURCE,
    reads_clock=True,  # `clock` picks the best run / upcoming events
    kinds=("courses", "runs"),
    transform=transform,
    extract=extract,
    context_kinds={"courses": ("runs",)},
    resource_types=("course",),
    platform=PLATFORM,
    hosts=(),  # SEE_API_URL has no public default: the configured URLs' hosts are allowed
    urls=lambda settings: [
        url
        for url in (
            source_settings(SloanSettings, settings).see_api_url,
            source_settings(SloanSettings, settings).see_api_access_token_url,
        )
        if url
    ],
    credentials_setting="see_api_client_secret",
    unavailable=unavailable,
    description="MIT Sloan Executive Education courses and offerings (OAuth2 JWT)",
)

# When it runs (`learn schedules sync` creates these; cron in UTC).
SCHEDULES = (ingest_schedule("sloan", "30 4 * * *", DAY),)

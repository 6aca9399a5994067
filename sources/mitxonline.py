"""MITx Online catalog: courses and programs from its DRF API (`next` pagination, `?live=true`).

Field rules follow MIT Learn's `learning_resources/etl/mitxonline.py` (reference/mit-learn.md §1.2).
Differences on purpose: every request has a timeout, and a `next` URL on another host is refused
(MIT Learn forces the scheme but follows it).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from typing import Any

from learnflow.models import (
    Availability,
    CertificationType,
    CourseNumber,
    Department,
    Image,
    Instructor,
    Pace,
    Price,
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
from sources.archives.spec import ArchiveSource
from sources.base import (
    ExtractContext,
    RawPage,
    Source,
    clean_html,
    hours_range,
    items_of,
    parse_datetime,
    transform_each,
    weeks_range,
)

PLATFORM = "mitxonline"
OFFERED_BY = "mitx"
ETL_SOURCE = "mitxonline"
_PROCTORED = re.compile(r"PROCTORED EXAM", re.IGNORECASE)
_BASE = "https://mitxonline.mit.edu"


def _abs_url(path: str | None) -> str | None:
    if not path:
        return None
    return path if path.startswith("http") else f"{_BASE}{path}"


def _departments(raw: list[dict] | None) -> list[Department]:
    ref = reference_data()
    out = []
    for dept in raw or []:
        name = dept.get("name") or ""
        dept_id = ref.department_id(name)
        if dept_id:
            out.append(Department(department_id=dept_id, name=ref.departments[dept_id]))
    return out


def _topics(raw: list[dict] | None) -> list[Topic]:
    names = [t.get("name", "") for t in raw or []]
    return [Topic(name=n) for n in reference_data().map_topics(names, OFFERED_BY)]


def _modes(item: dict) -> set[str]:
    return {m.get("mode_slug") for m in item.get("enrollment_modes") or []}


def _is_variant(run: dict) -> bool:
    return bool(run.get("b2b_contract")) or (run.get("language") not in (None, "", "en"))


def _run_prices(course: dict, run: dict) -> list[Price]:
    """min/max price when a verified seat exists; 0.00 first when the run can be audited."""
    amounts: list[Decimal] = []
    modes = _modes(run) or _modes(course)
    if "audit" in modes or not modes:
        amounts.append(Decimal("0.00"))
    if "verified" in modes:
        for key in ("min_price", "max_price"):
            if course.get(key) is not None:
                amounts.append(Decimal(str(course[key])).quantize(Decimal("0.01")))
        for product in run.get("products") or []:
            if product.get("is_active") and product.get("price") is not None:
                amounts.append(Decimal(str(product["price"])).quantize(Decimal("0.01")))
    seen: list[Decimal] = []
    for a in amounts:
        if a not in seen:
            seen.append(a)
    return [Price(amount=a, currency="USD") for a in sorted(seen)]


def _instructors(page: dict | None) -> list[Instructor]:
    out = []
    for ins in (page or {}).get("instructors") or []:
        name = (ins.get("name") or "").strip()
        if name:
            first, _, last = name.partition(" ")
            out.append(Instructor(full_name=name, first_name=first or None, last_name=last or None))
    return out


def _transform_run(course: dict, run: dict) -> Run:
    page = course.get("page") or {}
    variant = _is_variant(run)
    published = not variant and bool(run.get("is_enrollable")) and bool(page.get("live", True))
    weeks = weeks_range(course.get("duration") or page.get("length"))
    hours = hours_range(course.get("time_commitment") or page.get("effort"))
    start = parse_datetime(run.get("start_date"))
    return Run(
        run_id=run["courseware_id"],
        title=run.get("title") or course.get("title"),
        url=run.get("courseware_url"),
        published=published,
        is_variant=variant,
        languages=[run["language"]] if run.get("language") else ["en"],
        start_date=start,
        end_date=parse_datetime(run.get("end_date")),
        enrollment_start=parse_datetime(run.get("enrollment_start")),
        enrollment_end=parse_datetime(run.get("enrollment_end")),
        year=start.year if start else None,
        semester=_semester(start.month) if start else None,
        instructors=_instructors(page),
        prices=_run_prices(course, run),
        pace=[Pace.self_paced if run.get("is_self_paced") else Pace.instructor_paced],
        availability=Availability.anytime
        if run.get("is_self_paced") and run.get("is_enrollable")
        else Availability.dated,
        duration=course.get("duration") or page.get("length"),
        time_commitment=course.get("time_commitment") or page.get("effort"),
        min_weeks=weeks[0],
        max_weeks=weeks[1],
        min_weekly_hours=hours[0],
        max_weekly_hours=hours[1],
        status="archived" if run.get("is_archived") else "current",
    )


def _semester(month: int) -> str:
    if month <= 1:
        return "Winter"
    if month <= 5:
        return "Spring"
    if month <= 8:
        return "Summer"
    return "Fall"


def _certification(item: dict, runs: list[Run], raw_runs: list[dict]) -> tuple[bool, str]:
    verified = any(
        "verified" in (_modes(r) or _modes(item)) and not r.get("is_archived") for r in raw_runs
    ) or ("verified" in _modes(item) and not raw_runs)
    if not verified:
        return False, CertificationType.none
    return True, CertificationType.completion


def transform_course(course: dict) -> Resource | None:
    """One MITx Online course → a course resource, or None when MIT Learn excludes it."""
    title = course["title"]
    if _PROCTORED.search(title):
        return None
    page = course.get("page") or {}
    raw_runs = course.get("courseruns") or []
    runs = [_transform_run(course, r) for r in raw_runs]
    certification, cert_type = _certification(course, runs, raw_runs)
    numbers = []
    for r in sorted(raw_runs, key=lambda r: r.get("start_date") or "", reverse=True):
        num = r.get("course_number")
        if num and num not in [n.value for n in numbers]:
            numbers.append(
                CourseNumber(
                    value=num,
                    listing_type="primary" if not numbers else "cross-listed",
                    primary=not numbers,
                    sort_coursenum=num,
                )
            )
    published = (
        bool(page.get("page_url"))
        and bool(page.get("live"))
        and any(r.published for r in runs)
        and bool(course.get("include_in_learn_catalog", True))
    )
    readable_id = course["readable_id"]
    weeks = weeks_range(course.get("duration") or page.get("length"))
    hours = hours_range(course.get("time_commitment") or page.get("effort"))
    best = next((r for r in runs if r.published), runs[0] if runs else None)
    return Resource(
        readable_id=readable_id,
        platform=PLATFORM,
        resource_type=ResourceType.course,
        etl_source=ETL_SOURCE,
        offered_by=OFFERED_BY,
        title=title,
        description=clean_html(page.get("description")),
        url=f"https://learn.mit.edu/courses/{readable_id}" if page.get("page_url") else None,
        image=Image(url=_abs_url(page["feature_image_src"]), alt=title)
        if page.get("feature_image_src")
        else None,
        published=published,
        test_mode=bool(course.get("ingest_content_files_for_ai")) and not published,
        departments=_departments(course.get("departments")),
        topics=_topics(course.get("topics")),
        certification=certification,
        certification_type=cert_type,
        resource_category="Course",
        runs=runs,
        prices=(best.prices if best and certification else []),
        availability=course.get("availability") or (best.availability if best else None),
        pace=best.pace if best else [],
        delivery=["online"],
        duration=course.get("duration") or page.get("length"),
        time_commitment=course.get("time_commitment") or page.get("effort"),
        min_weeks=weeks[0],
        max_weeks=weeks[1],
        min_weekly_hours=hours[0],
        max_weekly_hours=hours[1],
        course_numbers=numbers,
        details={"mitxonline_id": course.get("id")},
    )


def _tree_children(nodes: list[dict]) -> tuple[list[int], list[int]]:
    """Course ids and required-program ids in req_tree order (depth first)."""
    courses: list[int] = []
    programs: list[int] = []
    for node in nodes or []:
        data = node.get("data") or {}
        if data.get("node_type") == "course" and data.get("course") is not None:
            courses.append(data["course"])
        elif data.get("node_type") == "program" and data.get("required_program") is not None:
            programs.append(data["required_program"])
        c, p = _tree_children(node.get("children") or [])
        courses.extend(c)
        programs.extend(p)
    return courses, programs


def transform_program(
    program: dict, courses_by_id: dict[int, dict], programs_by_id: dict[int, dict]
) -> Resource:
    page = program.get("page") or {}
    readable_id = program["readable_id"]
    course_ids, program_ids = _tree_children(program.get("req_tree") or [])
    for cid in program.get("courses") or []:
        if isinstance(cid, int) and cid not in course_ids:
            course_ids.append(cid)
    relationships: list[Relationship] = []
    for pos, cid in enumerate(course_ids):
        child = courses_by_id.get(cid)
        if child is None:
            continue  # fetch-only: a course the catalog does not have is not linked
        relationships.append(
            Relationship(
                relation_type=RelationType.program_courses,
                child=ResourceRef(
                    platform=PLATFORM,
                    readable_id=child["readable_id"],
                    resource_type=ResourceType.course,
                ),
                position=pos,
            )
        )
    for pos, pid in enumerate(program_ids, start=len(relationships)):
        child = programs_by_id.get(pid)
        if child is None:
            continue
        # A child program shown as a course is linked as a course of the program (MIT Learn).
        relation = (
            RelationType.program_courses
            if child.get("display_mode") == "course"
            else RelationType.program_programs
        )
        relationships.append(
            Relationship(
                relation_type=relation,
                child=ResourceRef(
                    platform=PLATFORM,
                    readable_id=child["readable_id"],
                    resource_type=ResourceType.program,
                ),
                position=pos,
            )
        )
    published = (
        bool(page.get("page_url"))
        and bool(page.get("live", program.get("live", True)))
        and bool(
            page.get("include_in_learn_catalog", program.get("include_in_learn_catalog", True))
        )
    )
    certification = "verified" in _modes(program) or bool(program.get("certificate_type"))
    prices: list[Price] = []
    if certification:
        amounts = {Decimal("0.00")} if "audit" in _modes(program) else set()
        for key in ("min_price", "max_price"):
            if program.get(key) is not None:
                amounts.add(Decimal(str(program[key])).quantize(Decimal("0.01")))
        prices = [Price(amount=a) for a in sorted(amounts)]
    weeks = (program.get("min_weeks"), program.get("max_weeks"))
    if weeks == (None, None):
        weeks = weeks_range(program.get("duration") or page.get("length"))
    hours = hours_range(program.get("time_commitment") or page.get("effort"))
    url_path = (
        f"/courses/p/{readable_id}"
        if program.get("display_mode") == "course"
        else f"/programs/{readable_id}"
    )
    run = Run(
        run_id=readable_id,
        title=program["title"],
        published=published,
        start_date=parse_datetime(program.get("start_date")),
        end_date=parse_datetime(program.get("end_date")),
        enrollment_start=parse_datetime(program.get("enrollment_start")),
        enrollment_end=parse_datetime(program.get("enrollment_end")),
        prices=prices,
        availability=program.get("availability"),
    )
    return Resource(
        readable_id=readable_id,
        platform=PLATFORM,
        resource_type=ResourceType.program,
        etl_source=ETL_SOURCE,
        offered_by=OFFERED_BY,
        title=program["title"],
        description=clean_html(page.get("description")),
        url=f"https://learn.mit.edu{url_path}" if page.get("page_url") else None,
        image=Image(url=_abs_url(page["feature_image_src"]), alt=program["title"])
        if page.get("feature_image_src")
        else None,
        published=published,
        departments=_departments(program.get("departments")),
        topics=_topics(program.get("topics")),
        certification=certification,
        certification_type=CertificationType.completion
        if certification
        else CertificationType.none,
        resource_category="Course" if program.get("display_mode") == "course" else "Program",
        runs=[run],
        prices=prices,
        availability=program.get("availability"),
        delivery=["online"],
        duration=program.get("duration") or page.get("length"),
        time_commitment=program.get("time_commitment") or page.get("effort"),
        min_weeks=int(weeks[0]) if weeks[0] is not None else None,
        max_weeks=int(weeks[1]) if weeks[1] is not None else None,
        min_weekly_hours=int(program["min_weekly_hours"])
        if program.get("min_weekly_hours")
        else hours[0],
        max_weekly_hours=int(program["max_weekly_hours"])
        if program.get("max_weekly_hours")
        else hours[1],
        relationships=relationships,
        details={"mitxonline_id": program.get("id"), "program_type": program.get("program_type")},
    )


def transform(kind: str, payload: Any, context: Sequence[Any] = ()) -> TransformOutput:
    """Pure: one raw page (or list) of courses or programs → resources; context pages give the
    courses (and programs) that programs link to."""
    if kind == "program_courses":
        # Fetch-only (as in MIT Learn): these courses are context for programs, never created.
        return TransformOutput()
    if kind == "courses":
        return transform_each(
            ETL_SOURCE, items_of(payload), transform_course, lambda c: c.get("readable_id")
        )
    if kind == "programs":
        courses_by_id: dict[int, dict] = {}
        programs_by_id: dict[int, dict] = {}
        pages = [payload, *context]
        for page in pages:
            if (
                isinstance(page, dict)
                and isinstance(page.get("courses"), list)
                and "programs" in page
            ):
                # the combined {"programs": [...], "courses": [...]} shape
                for c in page["courses"]:
                    courses_by_id[c["id"]] = c
                for p in page["programs"]:
                    programs_by_id[p["id"]] = p
                continue
            for item in items_of(page):
                if not isinstance(item, dict) or "id" not in item:
                    continue
                if "courseruns" in item:
                    courses_by_id[item["id"]] = item
                elif "req_tree" in item or "courses" in item:
                    programs_by_id[item["id"]] = item
        programs = (
            payload["programs"]
            if isinstance(payload, dict) and "programs" in payload
            else items_of(payload)
        )
        return transform_each(
            ETL_SOURCE,
            programs,
            lambda p: transform_program(p, courses_by_id, programs_by_id),
            lambda p: p.get("readable_id"),
        )
    raise ValueError(f"unknown MITx Online kind {kind!r}")


async def extract(ctx: ExtractContext) -> AsyncIterator[RawPage]:
    """Courses (all pages), then programs (all pages), then the program courses not yet seen."""
    settings = ctx.settings
    headers = {}
    if settings.mitx_online_etl_api_key:
        headers["Authorization"] = f"Api-Key {settings.mitx_online_etl_api_key.get_secret_value()}"
    seen_courses: set[int] = set()
    async for body, url in ctx.http.paginate_next(
        settings.mitxonline_courses_url, params={"live": "true"}, headers=headers
    ):
        items = items_of(json.loads(body))
        seen_courses.update(c.get("id") for c in items if isinstance(c, dict))
        yield RawPage(kind="courses", body=body, item_count=len(items), url=url)
    wanted: list[int] = []
    async for body, url in ctx.http.paginate_next(
        settings.mitxonline_programs_url, params={"live": "true"}, headers=headers
    ):
        items = items_of(json.loads(body))
        for program in items:
            cids, _ = _tree_children(program.get("req_tree") or [])
            for cid in [*cids, *(program.get("courses") or [])]:
                if isinstance(cid, int) and cid not in seen_courses and cid not in wanted:
                    wanted.append(cid)
        yield RawPage(kind="programs", body=body, item_count=len(items), url=url)
    # Courses a program needs that the catalog listing did not include: fetched one by one.
    extra = []
    for cid in wanted:
        body = await ctx.http.get_bytes(
            f"{settings.mitxonline_courses_url.rstrip('/')}/{cid}/",
            params={"live": "true"},
            headers=headers,
            not_found_ok=True,
        )
        if body is not None:
            extra.append(json.loads(body))
    if extra:
        yield RawPage(
            kind="program_courses", body=json.dumps(extra).encode(), item_count=len(extra)
        )


SOURCE = Source(
    name="mitxonline",
    etl_source=ETL_SOURCE,
    kinds=("courses", "programs", "program_courses"),
    transform=transform,
    extract=extract,
    context_kinds={"programs": ("courses", "program_courses")},
    resource_types=("course", "program"),
    platform=PLATFORM,
    hosts=("mitxonline.mit.edu",),
    urls=lambda s: [s.mitxonline_courses_url, s.mitxonline_programs_url],
    description="MITx Online catalog (courses and programs)",
)

# Its course archives (OLX) in the archive bucket: `IngestArchivesWorkflow`.
ARCHIVE = ArchiveSource(
    "mitxonline",
    "mitxonline",
    "olx",
    "mitx_online_course_bucket_prefix",
    "content_base_url_mitxonline",
    "folder",
)

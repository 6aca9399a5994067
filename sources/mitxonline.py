"""MITx Online catalog: courses and programs from its DRF API (`next` pagination, `?live=true`).

Field rules follow MIT Learn's `learning_resources/etl/mitxonline.py` (reference/mit-learn.md §1.2).
Prices, run status and certification compare dates with the module's `clock` (MIT Learn's
`now_in_utc`): a run whose enrollment (else the run) has ended is priced [0.00] and "Archived".

Differences on purpose: every request has a timeout, and a `next` URL on another host is refused
(MIT Learn forces the scheme but follows it); product URLs use https://learn.mit.edu (MIT Learn's
APP_BASE_URL) so the transform stays pure; an empty duration or time commitment is None (MIT
Learn stores ""); a program's courses are the ones this run fetched (MIT Learn GETs each again).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from learnflow.models import (
    CertificationType,
    CourseNumber,
    Department,
    Format,
    Image,
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
from sources._catalog import (
    best_run,
    copy_run_values,
    department,
    instructor_named,
    topic,
    utcnow,
)
from sources._mitxonline import (
    ARCHIVED,
    CURRENT,
    LEARN_BASE_URL,
    certificate_type,
    certified,
    course_ids_in_tree,
    fully_enrollable,
    int_or_none,
    is_non_default_variant,
    mode_slugs,
    prices,
    program_ids_in_tree,
)
from sources.archives.spec import ArchiveSource
from sources.base import (
    ExtractContext,
    IndexedPage,
    RawPage,
    Source,
    clean_html,
    index_items,
    items_of,
    load_item,
    parse_datetime,
    transform_each,
)

PLATFORM = "mitxonline"
OFFERED_BY = "mitx"
ETL_SOURCE = "mitxonline"
_PROCTORED = re.compile(r"PROCTORED EXAM", re.IGNORECASE)
_BASE = "https://mitxonline.mit.edu"

# The "now" the transform compares dates with (prices, run status); tests pin it.
clock: Callable[[], datetime] = utcnow


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
            out.append(department(dept_id, ref.departments[dept_id]))
    return out


def _topics(raw: list[dict] | None) -> list[Topic]:
    names = [t.get("name", "") for t in raw or []]
    return [topic(n) for n in reference_data().map_topics(names, OFFERED_BY)]


def _image(item: dict) -> Image | None:
    src = (item.get("page") or {}).get("feature_image_src")
    return Image(url=_abs_url(src)) if src else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _effort(item: dict) -> dict[str, Any]:
    """A run's duration and weekly hours, read from its course or program as MIT Learn does."""
    return {
        "duration": _text(item.get("duration")),
        "min_weeks": int_or_none(item.get("min_weeks")),
        "max_weeks": int_or_none(item.get("max_weeks")),
        "time_commitment": _text(item.get("time_commitment")),
        "min_weekly_hours": int_or_none(item.get("min_weekly_hours")),
        "max_weekly_hours": int_or_none(item.get("max_weekly_hours")),
    }


def _transform_run(
    course: dict, run: dict, now: datetime, effort: dict[str, Any] | None = None
) -> tuple[Run, list[str]]:
    """A run and its enrollment modes (certification reads them; the run does not keep them).
    `effort`: the course's `_effort`, when the caller has it (the same for each of its runs)."""
    page = course.get("page") or {}
    enrollable = fully_enrollable(run, now)
    is_b2b = bool(run.get("b2b_contract"))
    variant = is_b2b or is_non_default_variant(run)
    modes = mode_slugs(run)
    start = parse_datetime(run.get("start_date") or run.get("enrollment_start"))
    has_page = bool(page.get("page_url"))
    return Run(
        run_id=run["courseware_id"],
        title=run.get("title"),
        description=clean_html((run.get("page") or {}).get("description")),
        url=f"{LEARN_BASE_URL}/courses/{course['readable_id']}" if has_page else None,
        image=_image(run),
        published=not variant and bool(run.get("is_enrollable")) and bool(page.get("live")),
        is_variant=variant,
        is_b2b=is_b2b,
        languages=[run["language"]] if run.get("language") else [],
        start_date=start,
        end_date=parse_datetime(run.get("end_date")),
        enrollment_start=parse_datetime(run.get("enrollment_start")),
        enrollment_end=parse_datetime(run.get("enrollment_end")),
        year=start.year if start else None,
        semester=_semester(start.month) if start else None,
        instructors=[
            instructor_named(i["name"]) for i in page.get("instructors") or [] if i.get("name")
        ],
        prices=prices(course, modes, enrollable=enrollable),
        status=CURRENT if has_page and enrollable else ARCHIVED,
        availability=course.get("availability"),
        format=[Format.asynchronous],
        pace=[Pace.self_paced if run.get("is_self_paced") else Pace.instructor_paced],
        **(_effort(course) if effort is None else effort),
    ), modes


def _semester(month: int) -> str:
    if month <= 1:
        return "Winter"
    if month <= 5:
        return "Spring"
    if month <= 8:
        return "Summer"
    return "Fall"


def _course_numbers(raw_runs: list[dict]) -> list[CourseNumber]:
    """The latest run's number first (primary), the others cross-listed."""
    numbers: list[CourseNumber] = []
    latest_first = sorted(
        raw_runs, key=lambda r: r.get("start_date") or r.get("enrollment_start") or "", reverse=True
    )
    for r in latest_first:
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
    return numbers


def transform_course(course: dict, now: datetime | None = None) -> Resource | None:
    """One MITx Online course → a course resource, or None when MIT Learn excludes it."""
    now = now or clock()
    title = course["title"]
    if _PROCTORED.search(title):
        return None
    page = course.get("page") or {}
    raw_runs = [r for r in course.get("courseruns") or [] if r]
    effort = _effort(course)
    pairs = [_transform_run(course, r, now, effort) for r in raw_runs]
    runs = [run for run, _ in pairs]
    certification = certified([(r.published, r.status, m) for r, m in pairs])
    published = (
        bool(page.get("page_url"))
        and bool(page.get("live"))
        and any(r.published for r in runs)
        and bool(course.get("include_in_learn_catalog", False))
    )
    readable_id = course["readable_id"]
    resource = Resource(
        readable_id=readable_id,
        platform=PLATFORM,
        resource_type=ResourceType.course,
        etl_source=ETL_SOURCE,
        offered_by=OFFERED_BY,
        title=title,
        description=clean_html(page.get("description")),
        url=f"{LEARN_BASE_URL}/courses/{readable_id}" if page.get("page_url") else None,
        image=_image(course),
        published=published,
        test_mode=bool(course.get("ingest_content_files_for_ai")) and not published,
        departments=_departments(course.get("departments")),
        topics=_topics(course.get("topics")),
        certification=certification,
        certification_type=certificate_type(course.get("certificate_type"))
        if certification
        else CertificationType.none,
        resource_category="Course",
        runs=runs,
        availability=course.get("availability"),
        format=[Format.asynchronous],
        pace=sorted({p for r in runs for p in r.pace}),
        delivery=["online"],
        course_numbers=_course_numbers(raw_runs),
        details={"mitxonline_id": course.get("id")},
    )
    return copy_run_values(resource, best_run(runs, now)) if published else resource


def _child_courses(
    program: dict, courses_by_id: dict[int, dict], programs_by_id: dict[int, dict]
) -> list[dict]:
    """The courses of the requirement tree (sub-programs' trees too) the catalog has, live and
    not proctored-exam courses."""
    out = []
    for cid in course_ids_in_tree(program.get("req_tree") or [], programs_by_id):
        course = courses_by_id.get(cid)
        if course is None or not (course.get("page") or {}).get("live", False):
            continue
        if _PROCTORED.search(course.get("title") or ""):
            continue
        out.append(course)
    return out


def _program_relationships(
    program: dict, children: list[dict], programs_by_id: dict[int, dict]
) -> list[Relationship]:
    def ref(item: dict, kind: ResourceType) -> ResourceRef:
        return ResourceRef(platform=PLATFORM, readable_id=item["readable_id"], resource_type=kind)

    out = [
        Relationship(
            relation_type=RelationType.program_courses,
            child=ref(c, ResourceType.course),
            position=pos,
        )
        for pos, c in enumerate(children)
    ]
    for pid in program_ids_in_tree(program.get("req_tree") or []):
        child = programs_by_id.get(pid)
        if child is None:
            continue
        # A child program shown as a course is linked as a course of the program (MIT Learn).
        relation = (
            RelationType.program_courses
            if child.get("display_mode") == "course"
            else RelationType.program_programs
        )
        out.append(
            Relationship(
                relation_type=relation, child=ref(child, ResourceType.program), position=len(out)
            )
        )
    return out


def transform_program(
    program: dict,
    courses_by_id: dict[int, dict],
    programs_by_id: dict[int, dict],
    now: datetime | None = None,
) -> Resource:
    now = now or clock()
    page = program.get("page") or {}
    readable_id = program["readable_id"]
    children = _child_courses(program, courses_by_id, programs_by_id)
    pace = sorted(
        {p for c in children for r in c.get("courseruns") or [] if r for p in _run_pace(r)}
    )
    has_page = bool(page.get("page_url"))
    url_path = (
        f"/courses/p/{readable_id}"
        if program.get("display_mode") == "course"
        else f"/programs/{readable_id}"
    )
    url = f"{LEARN_BASE_URL}{url_path}" if has_page else None
    modes = mode_slugs(program)
    run = Run(
        run_id=readable_id,
        title=program["title"],
        description=clean_html(page.get("description")),
        url=url,
        image=_image(program),
        published=has_page,
        start_date=parse_datetime(program.get("start_date") or program.get("enrollment_start")),
        end_date=parse_datetime(program.get("end_date")),
        enrollment_start=parse_datetime(program.get("enrollment_start")),
        enrollment_end=parse_datetime(program.get("enrollment_end")),
        prices=prices(program, modes, enrollable=True),
        status=CURRENT if has_page else ARCHIVED,
        availability=program.get("availability"),
        format=[Format.asynchronous],
        pace=pace,
        **_effort(program),
    )
    certification = certified([(run.published, run.status, modes)])
    published = has_page and bool(page.get("live")) and bool(page.get("include_in_learn_catalog"))
    resource = Resource(
        readable_id=readable_id,
        platform=PLATFORM,
        resource_type=ResourceType.program,
        etl_source=ETL_SOURCE,
        offered_by=OFFERED_BY,
        title=program["title"],
        description=clean_html(page.get("description")),
        url=url,
        image=_image(program),
        published=published,
        departments=_departments(program.get("departments")),
        topics=_topics(program.get("topics")),
        certification=certification,
        certification_type=certificate_type(program.get("certificate_type"))
        if certification
        else CertificationType.none,
        resource_category="Course" if program.get("display_mode") == "course" else "Program",
        runs=[run],
        availability=program.get("availability"),
        format=[Format.asynchronous],
        pace=pace,
        delivery=["online"],
        relationships=_program_relationships(program, children, programs_by_id),
        details={"mitxonline_id": program.get("id"), "program_type": program.get("program_type")},
    )
    return copy_run_values(resource, best_run([run], now)) if published else resource


def _run_pace(run: dict) -> list[str]:
    return [Pace.self_paced if run.get("is_self_paced") else Pace.instructor_paced]


class _ById(dict):
    """Items by id; one still pickled (from an `IndexedPage`) is unpickled when first read,
    by `[]` or `get` alike."""

    def __getitem__(self, key: Any) -> Any:
        value = super().__getitem__(key)
        if isinstance(value, bytes):
            value = load_item(value)
            self[key] = value
        return value

    def get(self, key: Any, default: Any = None) -> Any:
        try:
            return self[key]  # dict.get would hand back an item still pickled
        except KeyError:
            return default


def _context_key(item: Any) -> tuple[str, Any] | None:
    """Where `_context_maps` files an item: ("course", id), ("program", id) or nowhere."""
    if not isinstance(item, dict) or "id" not in item:
        return None
    if "courseruns" in item:
        return "course", item["id"]
    if "req_tree" in item or "courses" in item:
        return "program", item["id"]
    return None


def index_context(page: Any) -> IndexedPage:
    """A course page by (kind, id), for the programs pages' `_context_maps`."""
    if isinstance(page, dict) and "programs" in page:
        raise ValueError("the combined shape is read whole")
    return index_items(page, _context_key)


def _context_maps(pages: list[Any]) -> tuple[dict[int, dict], dict[int, dict]]:
    """Courses and programs by id from the page and its context pages (either shape); an
    indexed page's items are unpickled only when a program reads them (`_ById.get`)."""
    courses_by_id: dict[int, dict] = _ById()
    programs_by_id: dict[int, dict] = _ById()
    for page in pages:
        if isinstance(page, IndexedPage):
            for (kind, item_id), items in page.items.items():  # the last of an id wins
                (courses_by_id if kind == "course" else programs_by_id)[item_id] = items[-1]
            continue
        if isinstance(page, dict) and isinstance(page.get("courses"), list) and "programs" in page:
            # the combined {"programs": [...], "courses": [...]} shape
            courses_by_id.update({c["id"]: c for c in page["courses"]})
            programs_by_id.update({p["id"]: p for p in page["programs"]})
            continue
        for item in items_of(page):
            if not isinstance(item, dict) or "id" not in item:
                continue
            if "courseruns" in item:
                courses_by_id[item["id"]] = item
            elif "req_tree" in item or "courses" in item:
                programs_by_id[item["id"]] = item
    return courses_by_id, programs_by_id


def transform(kind: str, payload: Any, context: Sequence[Any] = ()) -> TransformOutput:
    """Pure: one raw page (or list) of courses or programs → resources; context pages give the
    courses (and programs) that programs link to. "Now" is the module's `clock`."""
    now = clock()
    if kind == "program_courses":
        # Fetch-only (as in MIT Learn): these courses are context for programs, never created.
        return TransformOutput()
    if kind == "courses":
        return transform_each(
            ETL_SOURCE,
            items_of(payload),
            lambda c: transform_course(c, now),
            lambda c: c.get("readable_id"),
        )
    if kind == "programs":
        courses_by_id, programs_by_id = _context_maps([payload, *context])
        programs = (
            payload["programs"]
            if isinstance(payload, dict) and "programs" in payload
            else items_of(payload)
        )
        return transform_each(
            ETL_SOURCE,
            programs,
            lambda p: transform_program(p, courses_by_id, programs_by_id, now),
            lambda p: p.get("readable_id"),
        )
    raise ValueError(f"unknown MITx Online kind {kind!r}")


def _course_ids(payload: Any) -> tuple[int, tuple[Any, ...]]:
    """A courses page's item count and its courses' ids."""
    items = items_of(payload)
    return len(items), tuple(c.get("id") for c in items if isinstance(c, dict))


def _program_course_ids(payload: Any) -> tuple[int, tuple[Any, ...]]:
    """A programs page's item count and the course ids its programs' requirement trees name
    (each program's in tree order, then the next program's)."""
    items = items_of(payload)
    by_id = {p["id"]: p for p in items if isinstance(p, dict) and "id" in p}
    ids = [
        cid for program in items for cid in course_ids_in_tree(program.get("req_tree") or [], by_id)
    ]
    return len(items), tuple(ids)


async def extract(ctx: ExtractContext) -> AsyncIterator[RawPage]:
    """Courses (all pages), then programs (all pages), then the program courses not yet seen."""
    settings = ctx.settings
    headers = {}
    if settings.mitx_online_etl_api_key:
        headers["Authorization"] = f"Api-Key {settings.mitx_online_etl_api_key.get_secret_value()}"
    # What the walk reads from a page is derived once per page content (`JsonPage.derive`):
    # an unchanged re-run's pages are not parsed again.
    seen_courses: set[int] = set()
    async for page in ctx.http.paginate(
        settings.mitxonline_courses_url, params={"live": "true"}, headers=headers
    ):
        count, ids = page.derive(_course_ids)
        seen_courses.update(ids)
        yield RawPage(
            kind="courses", body=page.body, item_count=count, url=page.url, sha256=page.sha256
        )
    wanted: list[int] = []
    async for page in ctx.http.paginate(
        settings.mitxonline_programs_url, params={"live": "true"}, headers=headers
    ):
        count, needed = page.derive(_program_course_ids)
        for cid in needed:
            if isinstance(cid, int) and cid not in seen_courses and cid not in wanted:
                wanted.append(cid)
        yield RawPage(
            kind="programs", body=page.body, item_count=count, url=page.url, sha256=page.sha256
        )
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
    index_context=index_context,
    reads_clock=True,  # prices, run status and certification compare dates with `clock`
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

# When it runs (`learn schedules sync` creates these; cron in UTC).
SCHEDULES = (
    ingest_schedule("mitxonline", "0 */6 * * *", timedelta(hours=6)),
    archive_schedule("mitxonline", "0 7 * * *", DAY),
)

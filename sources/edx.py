"""edX catalog: MIT-owned courses and programs from the edX Discovery API.

Transport: OAuth2 client credentials with `token_type=jwt`, then `Authorization: JWT <token>` on
every page; DRF `next` pagination. Only items owned by MIT (`owners[].key` / authoring
organisations in MITx, MITx_PRO) are kept; titles marked for deletion and courses without runs
are skipped. Field rules follow MIT Learn's `learning_resources/etl/openedx.py`, `mit_edx.py`
and `mit_edx_programs.py` (reference/mit-learn.md §1.2).

Differences on purpose (reference/mit-learn.md §9): MIT Learn's edX requests have no timeout —
here every request has one (SourceHttp); the token is cached until it expires instead of fetched
per run; a `next` link leaving the API host is refused. MIT Learn reads a program's topics,
instructors and effort back from its database (the published edX courses); this transform is pure,
so it reads them from the published courses of the same run's course pages (`context_kinds`): a
course MIT Learn loaded in an earlier run but the catalog no longer lists does not count here.
Run descriptions are cleaned with `clean_html` (MIT Learn stores them raw): kept, the BFF renders
them as HTML.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import SecretStr

from learnflow.models import (
    Availability,
    CertificationType,
    Format,
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
    TransformOutput,
)
from learnflow.reference import reference_data
from learnflow.schedules import DAY, archive_schedule, ingest_schedule
from learnflow.settings import SourceSettings
from sources._catalog import (
    best_run,
    copy_run_values,
    course_numbers,
    departments_from_key,
    image,
    instructor,
    item_key,
    make_price,
    require_dict,
    source_settings,
    text_of,
    topic,
    transform_levels,
    unique_prices,
    utcnow,
    year_and_semester,
)
from sources._oauth import jwt_headers
from sources.archives.spec import ArchiveSource
from sources.base import (
    ExtractContext,
    IndexedPage,
    RawPage,
    Source,
    clean_html,
    derived_for_readers,
    index_items,
    item_count,
    items_of,
    parse_datetime,
    transform_each,
)

PLATFORM = "edx"
OFFERED_BY = "mitx"
ETL_SOURCE = "mit_edx"
MIT_OWNER_KEYS = frozenset({"MITx", "MITx_PRO"})
EDX_BASE_URL = "https://www.edx.org/"
EDX_ALT_URL = "https://courses.edx.org/"
ARCHIVED = "Archived"

# The clock the transform reads (self-paced runs that already started are "anytime"); tests pin it.
clock: Callable[[], datetime] = utcnow


class EdxSettings(SourceSettings):
    """EDX_* settings (MIT Learn's names)."""

    edx_api_client_id: str = ""
    edx_api_client_secret: SecretStr | None = None
    edx_api_access_token_url: str = "https://api.edx.org/oauth2/v1/access_token"  # noqa: S105 - a URL
    edx_api_url: str = "https://discovery.edx.org/api/v1/catalogs/10/courses/"
    edx_programs_api_url: str = "https://discovery.edx.org/api/v1/programs/"


# ----------------------------------------------------------------------------------------------
# transform (pure)


def _deleted(title: Any) -> bool:
    """MIT Learn: '[delete]', '(delete)', 'delete ' anywhere, or exactly 'delete'."""
    t = str(title or "").strip().lower()
    return "[delete]" in t or "(delete)" in t or "delete " in t or t == "delete"


def _is_mit(owners: Any) -> bool:
    return any(isinstance(o, dict) and o.get("key") in MIT_OWNER_KEYS for o in owners or [])


def _run_published(run: dict) -> bool:
    return run.get("status") == "published" and bool(run.get("is_enrollable"))


def _run_availability(run: dict, now: datetime) -> Availability:
    if run.get("availability") == ARCHIVED:
        return Availability.anytime  # enrollable archived runs can be started any time
    start = parse_datetime(run.get("start"))
    if run.get("pacing_type") == "self_paced" and start and start < now:
        return Availability.anytime
    return Availability.dated


def _marketing_url(course: dict) -> str | None:
    """The course's marketing URL (else the newest run's) when it is on edx.org, without query."""
    url = course.get("marketing_url") or ""
    if not url:
        runs = [r for r in course.get("course_runs") or [] if isinstance(r, dict)]
        for run in sorted(runs, key=lambda r: r.get("start") or "", reverse=True):
            url = run.get("marketing_url") or ""
            if url:
                break
    if url and _EDX_URL.match(url):
        return url.split("?")[0]
    return None


# MIT Learn's pattern is `^{base}|{alt}` (the alt URL unanchored); kept as-is.
_EDX_URL = re.compile(rf"^{re.escape(EDX_BASE_URL)}|{re.escape(EDX_ALT_URL)}")


def _image(data: Any) -> Image | None:
    if isinstance(data, dict) and data.get("src"):
        return image(data["src"], data.get("description"))
    return None


def _duration(weeks: Any) -> tuple[str | None, int | None]:
    if isinstance(weeks, int) and not isinstance(weeks, bool) and weeks > 0:
        return f"{weeks} week{'s' if weeks > 1 else ''}", weeks
    return None, None


def _commitment(run: dict) -> tuple[str | None, int | None, int | None]:
    lo = run.get("min_effort") or 0
    hi = run.get("max_effort") or lo
    if not isinstance(lo, int) or not isinstance(hi, int):
        raise ValueError("min_effort/max_effort are not whole hours")
    if not (lo or hi):
        return None, None, None
    prefix = f"{lo}-" if lo != hi else ""
    return f"{prefix}{hi or lo} hour{'s' if hi > 1 else ''}/week", min(lo, hi), max(lo, hi)


def _instructors(staff: Any) -> list[Instructor]:
    out = []
    for person in staff or []:
        first = (person.get("given_name") or "").strip() or None
        last = (person.get("family_name") or "").strip() or None
        full = " ".join(p for p in (first, last) if p)
        if full:
            out.append(instructor(full, first, last))
    return out


def _run_prices(run: dict) -> list[Price]:
    seats = run.get("seats") or []
    try:  # what make_price reads of each seat: a list made from these before is the same
        key = tuple((str(seat["price"]), seat.get("currency")) for seat in seats)
        cached = all(isinstance(c, str | None) for _, c in key)
    except Exception:  # the loop below raises as it always did
        key, cached = (), False
    if cached and key in _SEAT_PRICES:
        return _SEAT_PRICES[key]
    prices = [make_price("0.00", "USD")]
    for seat in seats:
        prices.append(make_price(seat["price"], seat.get("currency")))
    result = unique_prices(prices)
    if cached and len(_SEAT_PRICES) < 1024:
        _SEAT_PRICES[key] = result
    return result


# A catalog's runs repeat a few seat lists (bench.ingest's 10k: 6,664 runs, one list): the
# list is the same each time (its Prices are shared already, `make_price`; a Run copies it).
_SEAT_PRICES: dict[tuple[tuple[str, str | None], ...], list[Price]] = {}


def _transform_run(
    run: dict, url: str | None, now: datetime, course_modified: datetime | None = None
) -> Run:
    run_id = text_of(run.get("key"), "course run key")
    modified = [d for d in (course_modified, parse_datetime(run.get("modified"))) if d]
    year, semester = year_and_semester(run_id, run.get("start"))
    duration, weeks = _duration(run.get("weeks_to_complete"))
    commitment, lo, hi = _commitment(run)
    return Run(
        run_id=run_id,
        title=run.get("title"),
        description=clean_html(run.get("short_description")),
        full_description=clean_html(run.get("full_description")),
        last_modified=max(modified, default=None),
        url=url or f"{EDX_ALT_URL}{run_id}/course/",
        image=_image(run.get("image")),
        published=_run_published(run),
        level=transform_levels([run.get("level_type")]),
        languages=[run["content_language"]] if run.get("content_language") else [],
        year=year,
        semester=semester,
        start_date=parse_datetime(run.get("start") or run.get("enrollment_start")),
        end_date=parse_datetime(run.get("end")),
        enrollment_start=parse_datetime(run.get("enrollment_start")),
        enrollment_end=parse_datetime(run.get("enrollment_end")),
        status=run.get("availability"),
        availability=_run_availability(run, now),
        format=[Format.asynchronous],
        pace=[run.get("pacing_type") or Pace.self_paced],
        prices=_run_prices(run),
        instructors=_instructors(run.get("staff")),
        duration=duration,
        min_weeks=weeks,
        max_weeks=weeks,
        time_commitment=commitment,
        min_weekly_hours=lo,
        max_weekly_hours=hi,
    )


def _course_pace(runs: list[dict]) -> list[str]:
    paces = sorted(
        {r.get("pacing_type") for r in runs if _run_published(r) and r.get("pacing_type")}
    )
    return paces or [Pace.self_paced]  # archived courses count as self-paced


def _course_availability(runs: list[dict], now: datetime) -> Availability | None:
    published = [_run_availability(r, now) for r in runs if _run_published(r)]
    if Availability.dated in published:
        return Availability.dated
    return Availability.anytime if published else None


def _certification(runs: list[Run]) -> bool:
    """MIT Learn's parse_certification for offeror mitx: a published run not archived."""
    return any(r.published and r.status and r.status != ARCHIVED for r in runs)


def transform_course(course: dict, now: datetime | None = None) -> Resource | None:
    """One edX course → a course resource; None for non-MIT, deleted or run-less courses."""
    course = require_dict(course, "course")
    now = now or clock()
    if not _is_mit(course.get("owners")):
        return None
    title = course.get("title")
    raw_runs = [require_dict(r, "course run") for r in course.get("course_runs") or []]
    if _deleted(title) or not raw_runs:
        return None
    key = text_of(course.get("key"), "course key")
    url = _marketing_url(course)
    modified = parse_datetime(course.get("modified"))
    runs = [_transform_run(r, url, now, modified) for r in raw_runs if not _deleted(r.get("title"))]
    certification = _certification(runs)
    topics = reference_data().map_topics(
        [s.get("name", "") for s in course.get("subjects") or [] if isinstance(s, dict)], OFFERED_BY
    )
    resource = Resource(
        readable_id=key,
        platform=PLATFORM,
        resource_type=ResourceType.course,
        etl_source=ETL_SOURCE,
        offered_by=OFFERED_BY,
        title=text_of(title, "title"),
        description=clean_html(course.get("short_description")),
        full_description=clean_html(course.get("full_description")),
        url=url or f"{EDX_ALT_URL}{key}/course/",
        image=_image(course.get("image")),
        last_modified=modified,
        published=any(r.published for r in runs),
        departments=departments_from_key(key),
        topics=[topic(t) for t in topics],
        certification=certification,
        certification_type=CertificationType.completion
        if certification
        else CertificationType.none,
        resource_category="Course",
        runs=runs,
        availability=_course_availability(raw_runs, now),
        format=[Format.asynchronous],
        pace=_course_pace(raw_runs),
        delivery=["online"],
        course_numbers=course_numbers(key),
        details={"edx_uuid": course.get("uuid")},
    )
    return copy_run_values(resource, best_run(runs, now))


def _is_mit_program(program: dict) -> bool:
    return (
        _is_mit(program.get("authoring_organizations"))
        and "micromasters" not in str(program.get("type") or "").lower()
        and program.get("status") == "active"
    )


def _program_course_price(course: dict) -> tuple[Decimal, str]:
    """The cheapest paid seat of the course's first published run (by start)."""
    if course.get("excluded_from_search"):
        return Decimal("0.00"), "USD"
    runs = sorted(course.get("course_runs") or [], key=lambda r: r.get("start") or "")
    for run in runs:
        if _run_published(run):
            paid = [
                Decimal(str(s["price"]))
                for s in run.get("seats") or []
                if Decimal(str(s["price"])) != 0
            ]
            currency = (run.get("seats") or [{}])[0].get("currency") or "USD"
            # MIT Learn takes min() of an empty list here and fails; a free run counts as 0.
            return (min(paid) if paid else Decimal("0.00")), currency
    return Decimal("0.00"), "USD"


def _program_dates(program: dict, field: str) -> list[datetime]:
    out = []
    for course in program.get("courses") or []:
        if course.get("excluded_from_search"):
            continue
        for run in course.get("course_runs") or []:
            if _run_published(run) and run.get(field):
                out.append(parse_datetime(run[field]))
    return [d for d in out if d is not None]


def _program_commitment(
    members: list[ProgramMember],
) -> tuple[str | None, int | None, int | None]:
    """The mean of the courses' weekly hours, rounded (MIT Learn's _transform_program_effort)."""
    mins = [c.min_weekly_hours for c in members if c.min_weekly_hours]
    maxs = [c.max_weekly_hours for c in members if c.max_weekly_hours]
    return _commitment(
        {
            "min_effort": round(sum(mins) / len(mins)) if mins else None,
            "max_effort": round(sum(maxs) / len(maxs)) if maxs else None,
        }
    )


def _member_instructors(course: Resource, now: datetime) -> tuple[Instructor, ...]:
    """The course's best run's instructors, else its latest published run's."""
    dated = sorted((r for r in course.runs if r.published), key=lambda r: r.start_date or now)
    run = best_run(course.runs, now) or (dated[-1] if dated else None)
    return tuple(run.instructors) if run else ()


@dataclass(frozen=True, slots=True)
class ProgramMember:
    """What a program reads from one of its published courses: MIT Learn reads these back from
    the course's row (effort, topics, the best run's instructors)."""

    readable_id: str
    max_weeks: int | None
    min_weekly_hours: int | None
    max_weekly_hours: int | None
    topic_names: tuple[str, ...]
    instructors: tuple[Instructor, ...]
    # The clock reading it was computed at, and every date of the course's runs, sorted: only
    # the best run depends on the clock (its dates against now), so the member holds at another
    # reading when none of these dates lies between the two.
    computed_at: datetime
    run_dates: tuple[datetime, ...]

    @classmethod
    def of(cls, course: Resource, now: datetime) -> ProgramMember:
        dates = (
            d
            for r in course.runs
            for d in (r.start_date, r.end_date, r.enrollment_start, r.enrollment_end)
            if d is not None
        )
        return cls(
            readable_id=course.readable_id,
            max_weeks=course.max_weeks,
            min_weekly_hours=course.min_weekly_hours,
            max_weekly_hours=course.max_weekly_hours,
            topic_names=tuple(t.name for t in course.topics),
            instructors=_member_instructors(course, now),
            computed_at=now,
            run_dates=tuple(sorted(dates)),
        )

    def holds_at(self, now: datetime) -> bool:
        low, high = sorted((self.computed_at, now))
        first_after = bisect_left(self.run_dates, low)
        return first_after == len(self.run_dates) or self.run_dates[first_after] > high


# A course key whose items on a page gave no published course (`derived` of a course page).
_NONE_PUBLISHED = None


def _course_members(courses: list[Any], now: datetime) -> TransformOutput:
    """A page of courses, transformed; in a process that holds the page indexed, each key's
    `ProgramMember` (the last published course of that key on the page, as `loaded_courses`
    reads it) is left in the page's `derived` for the programs pages that read it."""
    derived = derived_for_readers()
    if derived is None:
        return transform_each(ETL_SOURCE, courses, lambda c: transform_course(c, now), _key)
    members: dict[str, ProgramMember | None] = {}

    def one(raw: Any) -> Resource | None:
        key = _course_key(raw)
        if key is not None:
            members.setdefault(key, _NONE_PUBLISHED)
        course = transform_course(raw, now)
        if key is not None and course is not None and course.published:
            members[key] = ProgramMember.of(course, now)
        return course

    out = transform_each(ETL_SOURCE, courses, one, _key)
    derived.update(members)
    return out


def loaded_courses(
    context: Sequence[Any], now: datetime, wanted: set[str] | None = None
) -> dict[str, ProgramMember]:
    """The published courses of this run's course pages, by key: what MIT Learn reads back from
    its database for a program's topics, instructors and effort. With `wanted`, only the
    courses of those keys (a course's readable_id is its raw key): a programs page transforms
    the courses its programs name, not the whole catalog again for every page of programs.
    A course page this process transformed left its members (`_course_members`): those that
    hold at `now` are taken as they are, not transformed again."""
    out: dict[str, ProgramMember] = {}
    for page in context:
        if isinstance(page, IndexedPage):  # by key: only the courses named are unpickled
            keys = page.items if wanted is None else wanted
            raws = []
            for key in keys:
                if key in page.derived:
                    member = page.derived[key]
                    if member is _NONE_PUBLISHED:
                        continue
                    if member.holds_at(now):
                        out[member.readable_id] = member
                        continue
                raws.extend(page.get(key))
        else:
            raws = items_of(page)
        for raw in raws:
            if wanted is not None and isinstance(raw, dict):
                key = raw.get("key")  # not text: transform_course refuses it, as it did
                if not isinstance(key, str) or key not in wanted:
                    continue
            try:
                course = transform_course(raw, now)
            except Exception:  # noqa: S112 - quarantined by the courses page's own transform
                continue
            if course is not None and course.published:
                out[course.readable_id] = ProgramMember.of(course, now)
    return out


def _course_key(item: Any) -> str | None:
    """A course page item's key, when it is text (`loaded_courses` reads no other)."""
    key = item.get("key") if isinstance(item, dict) else None
    return key if isinstance(key, str) else None


def index_context(page: Any) -> IndexedPage:
    """A course page by course key, for the programs pages' `loaded_courses`."""
    return index_items(page, _course_key)


def _program_course_keys(programs: list[Any]) -> set[str]:
    """The course keys the programs of a page name (what `transform_program` looks up)."""
    return {
        c["key"]
        for p in programs
        if isinstance(p, dict) and isinstance(p.get("courses"), list)
        for c in p["courses"]
        if isinstance(c, dict) and isinstance(c.get("key"), str)
    }


def transform_program(
    program: dict, now: datetime | None = None, loaded: dict[str, ProgramMember] | None = None
) -> Resource | None:
    """One edX program → a program resource linking its courses (fetch-only, by key); topics,
    instructors and effort from `loaded`, the published courses of the run."""
    program = require_dict(program, "program")
    now = now or clock()
    if not _is_mit_program(program) or _deleted(program.get("title")):
        return None
    uuid = text_of(program.get("uuid"), "program uuid")
    title = text_of(program.get("title"), "title")
    courses = [require_dict(c, "program course") for c in program.get("courses") or []]
    banner = ((program.get("banner_image") or {}).get("medium") or {}).get("url")
    image = Image(url=banner, description=title) if banner else None
    prices = [_program_course_price(c) for c in courses]
    total = sum((p for p, _ in prices), Decimal("0.00"))
    price = make_price(total, prices[0][1] if prices else "USD")
    availabilities = [_course_availability(c.get("course_runs") or [], now) for c in courses]
    if Availability.dated in availabilities:
        availability: Availability | None = Availability.dated
    elif availabilities and all(a == Availability.anytime for a in availabilities):
        availability = Availability.anytime
    else:
        availability = None
    paces = sorted({p for c in courses for p in _course_pace(c.get("course_runs") or [])})
    members = [loaded[k] for k in (c.get("key") for c in courses) if k in (loaded or {})]
    duration, weeks_value = _duration(sum(c.max_weeks for c in members if c.max_weeks))
    commitment, lo, hi = _program_commitment(members)
    starts = _program_dates(program, "start")
    ends = _program_dates(program, "end")
    enroll_starts = _program_dates(program, "enrollment_start")
    enroll_ends = _program_dates(program, "enrollment_end")
    modified = parse_datetime(program.get("data_modified_timestamp"))
    run = Run(
        run_id=uuid,
        title=title,
        description=clean_html(program.get("subtitle")),
        full_description=clean_html(program.get("subtitle")),
        last_modified=modified,
        url=program.get("marketing_url"),
        image=image,
        published=True,
        level=transform_levels([program.get("level_type_override")]),
        start_date=min(starts, default=None),
        end_date=max(ends, default=None),
        enrollment_start=min(enroll_starts, default=None),
        enrollment_end=max(enroll_ends, default=None),
        status="Current",
        prices=[price],
        availability=availability,
        format=[Format.asynchronous],
        pace=paces,
        duration=duration,
        min_weeks=weeks_value,
        max_weeks=weeks_value,
        time_commitment=commitment,
        min_weekly_hours=lo,
        max_weekly_hours=hi,
        instructors=sorted(
            (i for c in members for i in c.instructors), key=lambda i: i.last_name or i.full_name
        ),
    )
    relationships = [
        Relationship(
            relation_type=RelationType.program_courses,
            child=ResourceRef(
                platform=PLATFORM,
                readable_id=text_of(c.get("key"), "program course key"),
                resource_type=ResourceType.course,
            ),
            position=pos,
        )
        for pos, c in enumerate(courses)
    ]
    certification = _certification([run])
    return Resource(
        readable_id=uuid,
        platform=PLATFORM,
        resource_type=ResourceType.program,
        etl_source=ETL_SOURCE,
        offered_by=OFFERED_BY,
        title=title,
        description=clean_html(program.get("subtitle")),
        full_description=clean_html(program.get("subtitle")),
        url=program.get("marketing_url") or f"{EDX_ALT_URL}{program.get('key') or uuid}/course/",
        image=image,
        last_modified=modified,
        published=True,
        certification=certification,
        certification_type=CertificationType.completion
        if certification
        else CertificationType.none,
        resource_category="Program",
        runs=[run],
        prices=[price] if certification else [],
        availability=availability,
        format=[Format.asynchronous],
        pace=paces,
        delivery=["online"],
        duration=duration,
        min_weeks=weeks_value,
        max_weeks=weeks_value,
        time_commitment=commitment,
        min_weekly_hours=lo,
        max_weekly_hours=hi,
        topics=[topic(n) for n in sorted({name for c in members for name in c.topic_names})],
        relationships=relationships,
        details={"program_type": program.get("type")},
    )


def _key(item: Any) -> str | None:
    return item_key(item, "key", "uuid")


def transform(kind: str, payload: Any, context: Sequence[Any] = ()) -> TransformOutput:
    """Pure: one catalog page (`{"next", "results"}` or a list) → MIT courses or programs."""
    now = clock()
    if kind == "courses":
        return _course_members(items_of(payload), now)
    if kind == "programs":
        programs = items_of(payload)
        loaded = loaded_courses(context, now, _program_course_keys(programs))
        return transform_each(
            ETL_SOURCE, programs, lambda p: transform_program(p, now, loaded), _key
        )
    raise ValueError(f"unknown edX kind {kind!r}")


# ----------------------------------------------------------------------------------------------
# extract (I/O)


def _settings(ctx: ExtractContext) -> EdxSettings:
    return source_settings(EdxSettings, ctx.settings, ctx.options)


def _urls(cfg: EdxSettings) -> list[str]:
    return [cfg.edx_api_access_token_url, cfg.edx_api_url, cfg.edx_programs_api_url]


def unavailable(settings: Any) -> str | None:
    cfg = source_settings(EdxSettings, settings)
    if not cfg.edx_api_client_id or cfg.edx_api_client_secret is None:
        return "edX API credentials are not set (EDX_API_CLIENT_ID, EDX_API_CLIENT_SECRET)"
    return None


async def extract(ctx: ExtractContext) -> AsyncIterator[RawPage]:
    """Every page of the MITx course catalog, then every page of programs (one cached token)."""
    cfg = _settings(ctx)
    if cfg.edx_api_client_secret is None:
        raise ValueError("edX API credentials are not set")
    headers = await jwt_headers(
        ctx.http, cfg.edx_api_access_token_url, cfg.edx_api_client_id, cfg.edx_api_client_secret
    )
    for kind, url in (("courses", cfg.edx_api_url), ("programs", cfg.edx_programs_api_url)):
        async for page in ctx.http.paginate(url, headers=headers):
            yield RawPage(
                kind=kind,
                body=page.body,
                item_count=page.derive(item_count),  # not parsed again when unchanged
                url=page.url,
                sha256=page.sha256,
            )


SOURCE = Source(
    name="edx",
    etl_source=ETL_SOURCE,
    reads_clock=True,  # `clock` picks the best run / upcoming events
    kinds=("courses", "programs"),
    # A program's topics, instructors and effort come from the run's courses (see the docstring).
    context_kinds={"programs": ("courses",)},
    index_context=index_context,
    transform=transform,
    extract=extract,
    resource_types=("course", "program"),
    platform=PLATFORM,
    hosts=("api.edx.org", "discovery.edx.org"),
    urls=lambda settings: _urls(source_settings(EdxSettings, settings)),
    credentials_setting="edx_api_client_secret",
    unavailable=unavailable,
    description="edX catalog: MIT-owned courses and programs (OAuth2 JWT)",
)

# Its course archives (OLX) in the archive bucket: `IngestArchivesWorkflow`.
ARCHIVE = ArchiveSource(
    "mit_edx", "edx", "olx", "edx_course_bucket_prefix", "content_base_url_edx", "folder"
)

# When it runs (`learn schedules sync` creates these; cron in UTC).
SCHEDULES = (
    ingest_schedule("edx", "0 5 * * *", DAY),
    archive_schedule("edx", "0 6 * * *", DAY),
)

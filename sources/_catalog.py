"""Field rules the catalog sources share (edX, xPRO, MITPE, Sloan, MicroMasters, OLL).

MIT Learn keeps these in `learning_resources/etl/utils.py` and `learning_resources/utils.py`
(delivery mapping, duration and commitment parsing, course numbers, year/semester from a run key,
best run), plus `fetch`, the one GET the extractors share. The module is private (`_`), so
the source registry skips it.
"""

from __future__ import annotations

import contextlib
import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, TypeVar

from learnflow.http import PermanentHttpError, SourceHttp
from learnflow.models import (
    CourseNumber,
    Delivery,
    Department,
    Image,
    Instructor,
    Price,
    Resource,
    Run,
    Topic,
)
from learnflow.reference import reference_data
from learnflow.settings import Settings, SourceSettings, read_source_settings

S = TypeVar("S", bound=SourceSettings)


def source_settings(cls: type[S], settings: Any = None, options: dict[str, Any] | None = None) -> S:
    """A source's settings (declared once on the source, a `SourceSettings`), `options` over them.

    A `Settings` passed in (or none) means the environment as it is now (`read_source_settings`,
    cached like `get_settings()`), so a source's URLs and credentials are read when its activity
    runs. Any other object (a source's own settings, already resolved) is read as-is.
    """
    fields = cls.model_fields
    if settings is None or isinstance(settings, Settings):
        base = read_source_settings(cls)
    elif isinstance(settings, cls):
        base = settings
    else:  # any object with some of the fields (tests, callers' own namespaces)
        base = cls.model_validate({n: getattr(settings, n) for n in fields if hasattr(settings, n)})
    extra = {k: v for k, v in (options or {}).items() if k in fields}
    if not extra:
        return base
    return cls.model_validate({**{n: getattr(base, n) for n in fields}, **extra})


# ----------------------------------------------------------------------------------------------
# delivery, duration, commitment, price

_DELIVERY: dict[str, Delivery] = {
    "": Delivery.online,
    "online": Delivery.online,
    "blended": Delivery.hybrid,
    "hybrid": Delivery.hybrid,
    "in person": Delivery.in_person,
    "on campus": Delivery.in_person,
    "live virtual": Delivery.online,
    "live online": Delivery.online,
    "offline": Delivery.offline,
}


def transform_delivery(value: str | None) -> list[Delivery]:
    """MIT Learn's RESOURCE_DELIVERY_MAPPING; an unknown value counts as online (as there)."""
    return [_DELIVERY.get((value or "").strip().lower(), Delivery.online)]


_INTERVALS = {
    "half-days": ("days",),
    "half-day": ("day",),
    "hours": ("horas",),
    "hour": ("hora",),
    "days": ("días", "jours"),
    "day": ("día", "jour"),
    "weeks": ("semanas", "semaines", "settimanes"),
    "week": ("semana", "semaine", "settimane"),
    "months": ("meses", "mois", "mesi"),
    "month": ("mes", "mois"),
}
_ENGLISH = re.compile(rf"({'|'.join(map(re.escape, _INTERVALS))})(?:\s|/|$)", re.IGNORECASE)
_OTHER = {alias: unit for unit, aliases in _INTERVALS.items() for alias in aliases}
_FOREIGN = re.compile(rf"({'|'.join(map(re.escape, _OTHER))})(?:\s|/|$)", re.IGNORECASE)
_DURATION = re.compile(r"(\d+)\s*(?:to|-|\u2013)*\s*(\d+)?\s*(\w+)?", re.IGNORECASE)
_COMMITMENT = re.compile(r"(\d+)\D+(\d+)?\s*(\w+)?", re.IGNORECASE)


def _interval(text: str) -> str | None:
    m = _ENGLISH.search(text)
    if m:
        return m.group(1).lower()
    m = _FOREIGN.search(text)
    return _OTHER[m.group(1).lower()] if m else None


def _weeks(num: int, unit: str) -> int:
    if "day" in unit:
        return max(math.ceil(num / 5), 1)  # MIT Learn: weekdays only
    if "month" in unit:
        return num * 4
    return num


def parse_duration(text: str | None) -> tuple[str | None, int | None, int | None]:
    """`"6 to 10 Weeks"` → (text, 6, 10); days and months are converted to weeks."""
    if not text or not text.strip():
        return None, None, None
    unit = _interval(text)
    m = _DURATION.match(text.strip().lower())
    if not (m and unit):
        return text, None, None
    lo = int(m.group(1))
    hi = int(m.group(2) or m.group(1))
    return text, _weeks(lo, unit), _weeks(hi, unit)


def parse_commitment(text: str | None) -> tuple[str | None, int | None, int | None]:
    """`"3-5 hours per week"` → (text, 3, 5)."""
    if not text or not text.strip():
        return None, None, None
    m = _COMMITMENT.match(text.strip())
    if not m:
        return text, None, None
    lo = int(m.group(1))
    return text, lo, int(m.group(2) or lo)


_CURRENCY = re.compile(r"^[A-Z]{3}$")


def make_price(amount: Any, currency: str | None = "USD") -> Price:
    """A price; a currency that is not an ISO-4217-looking code becomes USD (MIT Learn).

    Made once per amount text and currency, then shared: a catalog repeats a few prices (edX's
    free audit seat on every run; bench.ingest's 10k: 28k prices, 3 distinct), nothing changes
    a Price in place, and a resource already shares its best run's price list."""
    if isinstance(currency, str | None):
        with contextlib.suppress(ValueError):  # refused: again below, for the message's repr
            return _price_of(str(amount), currency)
    return _make_price(amount, currency)


@lru_cache(maxsize=4096)
def _price_of(amount: str, currency: str | None) -> Price:
    return _make_price(amount, currency)


def _make_price(amount: Any, currency: Any) -> Price:
    try:
        value = Decimal(str(amount))
    except InvalidOperation as exc:
        raise ValueError(f"price {amount!r} is not a number") from exc
    if not value.is_finite() or value < 0:
        raise ValueError(f"price {amount!r} is not a usable amount")
    code = (currency or "USD").strip().upper()
    return Price(
        amount=value.quantize(Decimal("0.01")), currency=code if _CURRENCY.match(code) else "USD"
    )


def unique_prices(prices: Iterable[Price]) -> list[Price]:
    seen: dict[tuple[Decimal, str], Price] = {}
    for p in prices:
        seen.setdefault((p.amount, p.currency), p)
    return sorted(seen.values(), key=lambda p: (p.amount, p.currency))


# ----------------------------------------------------------------------------------------------
# identifiers: slugs, semesters, course numbers, departments, levels


def slugify(value: str) -> str:
    """Django's slugify: ASCII, lower case, word characters and hyphens."""
    text = unicodedata.normalize("NFKD", str(value)).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text.lower())
    return re.sub(r"[-\s]+", "-", text).strip("-_")


_SEMESTERS = {"1T": "spring", "2T": "summer", "3T": "fall"}
_TERM_KEY = re.compile(r"[123]T[0-9]{4}")
_YEAR_TERM = re.compile(r"([0-9]{4})_(Spring|Summer|Fall|Winter)")


def year_and_semester(key: str, start: str | None = None) -> tuple[int | None, str | None]:
    """`course-v1:MITx+15.071x+1T2019` → (2019, "spring"); `..._2022_Summer` → (2022, "Summer")."""
    m = _TERM_KEY.search(key or "")
    if m:
        return int(m.group(0)[-4:]), _SEMESTERS[m.group(0)[:2]]
    m = _YEAR_TERM.search(key or "")
    if m:
        return int(m.group(1)), m.group(2)
    if start and str(start)[:4].isdigit():
        return int(str(start)[:4]), None
    return None, None


_DEPT_IN_KEY = re.compile(r"\+([^.]*)\.")


def department_ids_from_key(key: str) -> list[str]:
    """`MITx+15.071x` → ["15"] when 15 is a known department (21W counts as CMS-W)."""
    m = _DEPT_IN_KEY.search(key or "")
    if not m:
        return []
    candidate = "CMS-W" if m.group(1) == "21W" else m.group(1)
    return [candidate] if candidate in reference_data().departments else []


def departments_from_key(key: str) -> list[Department]:
    depts = reference_data().departments
    return [department(d, depts[d]) for d in department_ids_from_key(key)]


# A catalog repeats its small nested values: the reference topics and departments on every
# course, a course's image and instructors on each of its runs (bench.ingest's 10k: 5-8 of the
# 10-12 models a course validated, ~1-1.5 µs each). Each is made once per value and shared,
# as prices are (`make_price`): nothing changes a nested model in place. Values from a page are
# looked up only when they are text (or None); anything else is validated as it always was, and
# refused with the same error.


@lru_cache(maxsize=4096)
def topic(name: str) -> Topic:
    """A reference topic (`map_topics` gives its names)."""
    return Topic(name=name)


@lru_cache(maxsize=4096)
def department(department_id: str, name: str) -> Department:
    """A reference department."""
    return Department(department_id=department_id, name=name)


def image(url: Any, description: Any) -> Image:
    """`Image(url=url, description=description)`."""
    if isinstance(url, str) and (description is None or isinstance(description, str)):
        return _image(url, description)
    return Image(url=url, description=description)


@lru_cache(maxsize=4096)
def _image(url: str, description: str | None) -> Image:
    return Image(url=url, description=description)


@lru_cache(maxsize=4096)
def instructor(full_name: str, first_name: str | None, last_name: str | None) -> Instructor:
    """`Instructor(full_name=, first_name=, last_name=)` of text values (or None)."""
    return Instructor(full_name=full_name, first_name=first_name, last_name=last_name)


def instructor_named(full_name: Any) -> Instructor:
    """`Instructor(full_name=full_name)`."""
    if isinstance(full_name, str):
        return _instructor_named(full_name)
    return Instructor(full_name=full_name)


@lru_cache(maxsize=4096)
def _instructor_named(full_name: str) -> Instructor:
    return Instructor(full_name=full_name)


def course_numbers(primary: str, extra: Sequence[str] = ()) -> list[CourseNumber]:
    """MIT Learn's generate_course_numbers_json (non-OCW form)."""
    depts = reference_data().departments
    out = []
    for idx, num in enumerate([primary, *extra]):
        dept = department_ids_from_key(num)
        single_digit = dept and dept[0].isdigit() and len(dept[0]) == 1 and num.startswith(dept[0])
        out.append(
            CourseNumber(
                value=num,
                listing_type="primary" if idx == 0 else "cross-listed",
                primary=idx == 0,
                department=department(dept[0], depts[dept[0]]) if dept else None,
                sort_coursenum=f"0{num}" if single_digit else num,
            )
        )
    return out


_LEVELS = {
    "Undergraduate": "undergraduate",
    "Graduate": "graduate",
    "High School": "high_school",
    "Non-Credit": "noncredit",
    "Advanced": "advanced",
    "Intermediate": "intermediate",
    "Introductory": "introductory",
}


def transform_levels(labels: Iterable[str | None]) -> list[str]:
    return [_LEVELS[label] for label in labels if label in _LEVELS]


# ----------------------------------------------------------------------------------------------
# runs


def utcnow() -> datetime:
    return datetime.now(UTC)


def best_run(runs: Sequence[Run], now: datetime) -> Run | None:
    """MIT Learn's best_run over published, non-variant runs: the enrollable one that starts
    first, else the next to start, else the latest started. None when no run is published:
    then nothing is copied from a run (MIT Learn's `best_run` is None there too)."""
    live = [r for r in runs if r.published and not r.is_variant]
    if not live:
        return None

    def enrollable(r: Run) -> bool:
        opened = r.enrollment_start is None or r.enrollment_start <= now
        closes = r.enrollment_end or r.end_date
        return opened and (closes is None or closes >= now)

    far = datetime.max.replace(tzinfo=UTC)
    current = sorted((r for r in live if enrollable(r)), key=lambda r: r.start_date or far)
    if current:
        return current[0]
    upcoming = sorted(
        (r for r in live if r.start_date and r.start_date > now), key=lambda r: r.start_date
    )
    if upcoming:
        return upcoming[0]
    started = sorted((r for r in live if r.start_date), key=lambda r: r.start_date, reverse=True)
    return started[0] if started else live[0]


def copy_run_values(resource: Resource, run: Run | None) -> Resource:
    """MIT Learn's load_run_dependent_values: what the resource takes from its best run."""
    if run is None:
        return resource
    update: dict[str, Any] = {
        "prices": run.prices if resource.certification else [],
        "location": run.location or resource.location,
        "duration": run.duration or resource.duration,
        "time_commitment": run.time_commitment or resource.time_commitment,
        "min_weeks": run.min_weeks if run.min_weeks is not None else resource.min_weeks,
        "max_weeks": run.max_weeks if run.max_weeks is not None else resource.max_weeks,
        "min_weekly_hours": run.min_weekly_hours
        if run.min_weekly_hours is not None
        else resource.min_weekly_hours,
        "max_weekly_hours": run.max_weekly_hours
        if run.max_weekly_hours is not None
        else resource.max_weekly_hours,
    }
    if run.availability and not resource.availability:
        update["availability"] = run.availability
    return resource.model_copy(update=update)


def require_dict(item: Any, what: str) -> dict:
    if not isinstance(item, dict):
        raise TypeError(f"{what} is a {type(item).__name__}, not an object")
    return item


def text_of(value: Any, what: str) -> str:
    """A required non-empty string field."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} is missing or not text")
    return value


async def fetch(http: SourceHttp, url: str, **kwargs: Any) -> bytes:
    """GET a body; a 404 is an error here (SourceHttp hands a 404 body back unless asked not to)."""
    response = await http.request("GET", url, **kwargs)
    if response is None or response.status_code == 404:
        raise PermanentHttpError(f"HTTP 404 from {url}")
    return response.content


def item_key(item: Any, *fields: str, prefix: str = "") -> str | None:
    """The quarantine key of a raw item: the first field that is text (or a number), else None.

    `transform_each` stores it as a string; a corrupted item may carry any type there.
    """
    if not isinstance(item, dict):
        return None
    for name in fields:
        value = item.get(name)
        if isinstance(value, str) and value:
            return f"{prefix}{value}"
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{prefix}{value}"
    return None


def wanted_kinds(options: dict[str, Any] | None, default: Sequence[str]) -> list[str]:
    """`options["kinds"]` as a list: a comma-separated string (schedules) or a list; else all."""
    raw = (options or {}).get("kinds")
    if not raw:
        return list(default)
    names = raw.split(",") if isinstance(raw, str) else list(raw)
    unknown = [n for n in (s.strip() for s in names) if n and n not in default]
    if unknown:
        raise ValueError(f"unknown kinds {unknown}; known: {', '.join(default)}")
    return [k for k in default if k in {s.strip() for s in names}]

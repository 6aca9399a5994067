"""MITx Online field rules (MIT Learn's `learning_resources/etl/mitxonline.py`), pure helpers for
`sources/mitxonline.py`: prices, run status, variants, certificate type, requirement trees.

Every date rule compares with the `now` it is given (the transform's clock), never the wall clock.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from learnflow.models import CertificationType, Price
from sources.base import parse_datetime

CURRENT = "Current"  # MIT Learn's RunStatus.current
ARCHIVED = "Archived"  # RunStatus.archived
LEARN_BASE_URL = "https://learn.mit.edu"  # MIT Learn's APP_BASE_URL for product URLs


def mode_slugs(item: dict) -> list[str]:
    return [m.get("mode_slug") for m in item.get("enrollment_modes") or [] if isinstance(m, dict)]


def fully_enrollable(run: dict, now: datetime) -> bool:
    """Enrollable and its enrollment (else the run) has not ended: only then are certificates
    and paid seats offered."""
    closes = parse_datetime(run.get("enrollment_end")) or parse_datetime(run.get("end_date"))
    return bool(
        run.get("published", True)
        and run.get("is_enrollable", False)
        and (closes is None or closes >= now)
    )


def prices(parent: dict, modes: list[str], *, enrollable: bool) -> list[Price]:
    """[0.00] unless fully enrollable with a min or max price; then min/max for a verified
    mode, 0.00 for an audit mode (product prices are not read)."""
    if not enrollable or not (parent.get("min_price") or parent.get("max_price")):
        return [_FREE]
    amounts: set[Decimal] = set()
    if "verified" in modes:
        amounts |= {
            Decimal(str(parent.get("min_price") or "0.00")),
            Decimal(str(parent.get("max_price") or "0.00")),
        }
    if "audit" in modes:
        amounts.add(Decimal("0.00"))
    return [_price(str(a)) for a in sorted(amounts)] or [_FREE]


# One Price per amount, shared (as `_catalog.make_price`'s): a run's prices repeat a catalog's
# few amounts (bench.ingest's 10k: two Price validations a run), nothing changes one in place.
@lru_cache(maxsize=1024)
def _price(amount: str) -> Price:
    return Price(amount=Decimal(amount).quantize(Decimal("0.01")))


_FREE = Price(amount=Decimal("0.00"))


def is_non_default_variant(run: dict) -> bool:
    """A run in a language whose variant set says it is not the default variant."""
    language = run.get("language")
    if not language:
        return False
    for variant_set in run.get("possible_variant_sets") or []:
        if isinstance(variant_set, dict) and variant_set.get("language") == language:
            return not variant_set.get("default_variant", False)
    return False


def certified(runs: list[tuple[bool, str | None, list[str] | None]]) -> bool:
    """parse_certification for mitx over (published, status, modes): a published, not archived
    run with a verified mode (or no modes listed at all)."""
    return any(
        published and status and status != ARCHIVED and (modes is None or "verified" in modes)
        for published, status, modes in runs
    )


_CERTIFICATE_TYPES = {
    "micromasters credential": CertificationType.micromasters,
    "certificate of completion": CertificationType.completion,
}


def certificate_type(value: Any) -> CertificationType:
    """An unknown (or missing) certificate type counts as completion, as MIT Learn logs and does."""
    return _CERTIFICATE_TYPES.get(str(value or "").lower(), CertificationType.completion)


def course_ids_in_tree(
    nodes: list[dict], programs_by_id: dict[int, dict], visited: set[int] | None = None
) -> list[int]:
    """Course ids of a requirement tree, depth first, descending into required programs that
    are not shown as courses (each program once)."""
    visited = set() if visited is None else visited
    out: list[int] = []
    for node in nodes or []:
        data = node.get("data") or {}
        if data.get("node_type") == "course" and isinstance(data.get("course"), int):
            out.append(data["course"])
        elif data.get("node_type") == "program":
            pid = data.get("required_program")
            child = programs_by_id.get(pid) if isinstance(pid, int) else None
            if isinstance(pid, int) and pid not in visited:
                visited.add(pid)
                if child and child.get("display_mode") != "course":
                    out.extend(course_ids_in_tree(child.get("req_tree"), programs_by_id, visited))
        out.extend(course_ids_in_tree(node.get("children") or [], programs_by_id, visited))
    return list(dict.fromkeys(out))


def program_ids_in_tree(nodes: list[dict]) -> list[int]:
    """Required-program ids at any depth of the program's own tree, in tree order."""
    out: list[int] = []
    for node in nodes or []:
        data = node.get("data") or {}
        if data.get("node_type") == "program" and isinstance(data.get("required_program"), int):
            out.append(data["required_program"])
        out.extend(program_ids_in_tree(node.get("children") or []))
    return list(dict.fromkeys(out))


def int_or_none(value: Any) -> int | None:
    """parse_string_to_int: an int, a numeric string, else None."""
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None

"""The search document: one resource serialised for the keyword index and the vector payload.

Both engines index the same document, and filters are defined once here: MIT Learn's filter names
(reference/mit-learn.md §4.3) mapped to the values a document carries for them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from types import SimpleNamespace
from typing import Any

from pydantic import BaseModel, TypeAdapter
from pydantic_core import to_jsonable_python

from learnflow.models import CourseNumber, Department, Image, Resource, Run, natural_key
from learnflow.reference import reference_data


def _names(code: str | None, table: dict[str, dict]) -> dict[str, str] | None:
    if not code:
        return None
    return {"code": code, "name": (table.get(code) or {}).get("name", code)}


_CERT_NAMES = {
    "none": "No Certificate",
    "completion": "Certificate of Completion",
    "micromasters": "MicroMasters Credential",
    "professional": "Professional Certificate",
}


# One mapping, two inputs: a `Resource`, or its stored form (`Resource.stored_form()`'s JSON
# values, the `data` column as asyncpg decodes the jsonb). The embed and index passes read
# thousands of rows; validating each back into a `Resource` cost more CPU than the document
# itself (the rows were validated when written). The mapping reads field values by name from
# either: the stored form's dicts or the models' own `__dict__`; a date-time or a price is the
# model's value, or its JSON text parsed as the model's validation parses it.


def to_search_document(
    res: Resource, resource_id: int, created_on: datetime | None = None
) -> dict[str, Any]:
    """The document both engines index (keys stable: the gRPC layer reads them back)."""
    return _document(vars(res), resource_id, created_on)


def search_document(
    data: Mapping[str, Any], resource_id: int, created_on: datetime | None = None
) -> dict[str, Any]:
    """`to_search_document` of a resource's stored form (`Resource.stored_form()[0]`, the
    `data` column) without validating it back into a `Resource`: the same document."""
    try:
        return _document(data, resource_id, created_on)
    except KeyError:  # stored before a field was added: the model's defaults, as validation's
        return _document(_filled(data), resource_id, created_on)


def stored_key(data: Mapping[str, Any]) -> str:
    """`Resource.key` of a stored form."""
    return natural_key(data["platform"], data["readable_id"], data["resource_type"])


def _document(
    data: Mapping[str, Any], resource_id: int, created_on: datetime | None
) -> dict[str, Any]:
    ref = reference_data()
    all_runs = [_values(r) for r in data["runs"]]
    runs = [r for r in all_runs if r["published"] and not r["is_variant"]]
    instructors = sorted({_values(i)["full_name"] for r in runs for i in r["instructors"]})
    course_numbers = [_values(c) for c in data["course_numbers"]]
    amounts = [_amount(_values(p)["amount"]) for p in data["prices"]]
    # the model's own rules (its properties), applied to these values
    facts = SimpleNamespace(
        resource_type=data["resource_type"],
        professional=data["professional"],
        prices=[SimpleNamespace(amount=a) for a in amounts],
    )
    certification_type = str(data["certification_type"])
    details = data["details"]
    doc: dict[str, Any] = {
        "id": resource_id,
        "key": stored_key(data),
        "readable_id": data["readable_id"],
        "title": data["title"],
        "description": data["description"] or "",
        "full_description": data["full_description"] or "",
        "url": data["url"],
        "image": _IMAGE.dump(_values(data["image"])) if data["image"] else None,
        "resource_type": str(data["resource_type"]),
        "resource_category": data["resource_category"],
        "resource_type_group": Resource.resource_type_group.fget(facts),  # type: ignore[attr-defined]
        "etl_source": data["etl_source"],
        "platform": _names(data["platform"], ref.platforms),
        "offered_by": _names(data["offered_by"], ref.offerors),
        "topics": [{"name": _values(t)["name"]} for t in data["topics"]],
        "ocw_topics": list(data["ocw_topics"]),
        "departments": [_DEPARTMENT.dump(_values(d)) for d in data["departments"]],
        "course_feature": list(data["course_features"]),
        "certification": data["certification"],
        "certification_type": {
            "code": certification_type,
            "name": _CERT_NAMES.get(certification_type, certification_type),
        },
        "professional": data["professional"],
        "free": Resource.free.fget(facts),  # type: ignore[attr-defined]
        "published": data["published"],
        "delivery": [
            {"code": str(d), "name": str(d).replace("_", " ").title()} for d in data["delivery"]
        ],
        "pace": [str(p) for p in data["pace"]],
        "level": sorted({lvl for r in all_runs if r["published"] for lvl in r["level"]}),
        "instructors": instructors,
        "course_numbers": [c["value"] for c in course_numbers],
        "prices": [str(a) for a in amounts],
        "runs": [
            {
                "run_id": r["run_id"],
                "title": r["title"],
                "start_date": _iso(r["start_date"]),
                "end_date": _iso(r["end_date"]),
                "semester": r["semester"],
                "year": r["year"],
                "level": list(r["level"]),
            }
            for r in runs
        ],
        "next_start_date": _iso(_next_start(all_runs)),
        "last_modified": _iso(data["last_modified"]),
        "created_on": _iso(created_on),
        "completeness": float(data["completeness"]),
        "views": int(details.get("view_count") or 0),
        # MIT Learn's sort helpers (excluded from its _source; kept small here).
        "featured_rank": None,
        "sort_coursenum": _sort_coursenum(course_numbers),
        # A video's spoken words (MIT Learn indexes `video.transcript`): searched, not returned.
        "transcript": str(details.get("transcript") or ""),
    }
    return doc


def _values(item: Any) -> Mapping[str, Any]:
    """A nested model's field values by name: a stored form's dict, or the model's own."""
    return item if isinstance(item, dict) else vars(item)


def _next_start(runs: list[Mapping[str, Any]]) -> Any:
    """The start date of the first published run to start (None: no run has one)."""
    starts = [r["start_date"] for r in runs if r["published"] and r["start_date"]]
    return min(starts, key=_when) if starts else None


def _sort_coursenum(course_numbers: list[Mapping[str, Any]]) -> str | None:
    primary = [c for c in course_numbers if c["primary"]] or course_numbers
    if not primary:
        return None
    return primary[0]["sort_coursenum"] or primary[0]["value"]


class _Fields:
    """A model's fields as its JSON dump writes them: the names in order, the optional ones'
    defaults (a row stored before a field was added lacks it; validation fills it in)."""

    def __init__(self, model: type[BaseModel]) -> None:
        self.names = tuple(model.model_fields)
        self.defaults = {
            name: to_jsonable_python(info.get_default(call_default_factory=True))
            for name, info in model.model_fields.items()
            if not info.is_required()
        }

    def filled(self, value: Mapping[str, Any]) -> dict[str, Any]:
        return {**self.defaults, **value}

    def dump(self, value: Mapping[str, Any]) -> dict[str, Any]:
        """`model_dump(mode="json")` of a model of plain text fields (an image, a department)."""
        return {name: value[name] for name in self.names}


_RESOURCE, _RUN, _COURSE_NUMBER = _Fields(Resource), _Fields(Run), _Fields(CourseNumber)
_IMAGE, _DEPARTMENT = _Fields(Image), _Fields(Department)


def _filled(data: Mapping[str, Any]) -> dict[str, Any]:
    """A stored form with every field the model would fill in by default (to any depth the
    document reads)."""
    data = _RESOURCE.filled(data)
    data["runs"] = [_RUN.filled(r) for r in data["runs"]]
    data["course_numbers"] = [_COURSE_NUMBER.filled(c) for c in data["course_numbers"]]
    data["image"] = _IMAGE.filled(data["image"]) if data["image"] else None
    return data


_DATETIME: TypeAdapter[datetime] = TypeAdapter(datetime)
_DECIMAL: TypeAdapter[Decimal] = TypeAdapter(Decimal)


@lru_cache(maxsize=8192)
def _stored_datetime(text: str) -> datetime:
    """A stored date-time as the model's validation parses it (many rows share their dates)."""
    return _DATETIME.validate_python(text)


@lru_cache(maxsize=8192)
def _stored_iso(text: str) -> str:
    return _stored_datetime(text).isoformat()


def _when(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    return _stored_datetime(value) if isinstance(value, str) else _DATETIME.validate_python(value)


def _iso(value: Any) -> str | None:
    """A date-time (or its stored text) as the document writes it."""
    if value is None:
        return None
    if isinstance(value, str):
        return _stored_iso(value)
    return _when(value).isoformat()


def _amount(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else _DECIMAL.validate_python(value)


def _codes(key: str) -> Callable[[dict], list[str]]:
    def get(doc: dict) -> list[str]:
        value = doc.get(key)
        if value is None:
            return []
        if isinstance(value, dict):
            return [value["code"]]
        return [v["code"] if isinstance(v, dict) else str(v) for v in value]

    return get


def _bool(key: str) -> Callable[[dict], list[str]]:
    return lambda doc: ["true" if doc.get(key) else "false"]


def _plain(key: str) -> Callable[[dict], list[str]]:
    def get(doc: dict) -> list[str]:
        value = doc.get(key)
        if value is None:
            return []
        return [str(v) for v in value] if isinstance(value, list) else [str(value)]

    return get


# MIT Learn's filters → how to read their values off a search document.
FILTER_FIELDS: dict[str, Callable[[dict], list[str]]] = {
    "resource_type": _plain("resource_type"),
    "offered_by": _codes("offered_by"),
    "platform": _codes("platform"),
    "topic": lambda d: [t["name"] for t in d.get("topics", [])],
    "ocw_topic": _plain("ocw_topics"),
    "department": lambda d: [x["department_id"] for x in d.get("departments", [])],
    "level": _plain("level"),
    "certification": _bool("certification"),
    "certification_type": _codes("certification_type"),
    "professional": _bool("professional"),
    "free": _bool("free"),
    "delivery": _codes("delivery"),
    "resource_type_group": _plain("resource_type_group"),
    "resource_category": _plain("resource_category"),
    "course_feature": _plain("course_feature"),
    "id": lambda d: [str(d["id"])],
}

# Filters whose values compare case-insensitively (MIT Learn lowercases all but ids).
CASE_SENSITIVE_FILTERS = {"id"}


def filter_values(doc: dict) -> dict[str, list[str]]:
    out = {}
    for name, get in FILTER_FIELDS.items():
        values = get(doc)
        # map, not a comprehension: no function made per filter (~5 µs a document in 3.11)
        if values and name not in CASE_SENSITIVE_FILTERS:
            values = list(map(str.lower, values))
        out[name] = values
    return out


def search_text(doc: dict) -> str:
    """The body text the keyword engine searches besides title and description."""
    parts = [
        doc.get("full_description") or "",
        doc.get("readable_id") or "",
        " ".join(t["name"] for t in doc.get("topics", [])),
        " ".join(doc.get("ocw_topics", [])),
        " ".join(d["name"] for d in doc.get("departments", [])),
        " ".join(doc.get("instructors", [])),
        " ".join(doc.get("course_numbers", [])),
        (doc.get("platform") or {}).get("name", ""),
        (doc.get("offered_by") or {}).get("name", ""),
        " ".join(doc.get("course_feature", [])),
        doc.get("transcript") or "",
    ]
    return "\n".join(p for p in parts if p)


def embedding_text(doc: dict) -> str:
    """MIT Learn's resource embedding context: title, descriptions, course numbers, topics."""
    return "\n".join(
        p
        for p in [
            f"# {doc.get('title', '')}",
            doc.get("description") or "",
            doc.get("full_description") or "",
            " ".join(doc.get("course_numbers", [])),
            " ".join(t["name"] for t in doc.get("topics", [])),
            doc.get("transcript") or "",
        ]
        if p
    )


# -- content files ------------------------------------------------------------------------------

# The content-file filters (MIT Learn's content_file_search + vector_content_files_search).
CONTENT_FILTER_FIELDS: dict[str, Callable[[dict], list[str]]] = {
    "run_id": _plain("run_id"),
    "resource_id": lambda d: [str(d["resource_id"])],
    "platform": _codes("platform"),
    "offered_by": _codes("offered_by"),
    "file_extension": _plain("file_extension"),
    "content_type": _plain("content_type"),
    "id": lambda d: [str(d["id"])],
    # MIT Learn's content_file_search filters: the parent resource's topics and OCW topics, the
    # file's own tags (content_feature_type), and whether it is an OCW file (show_ocw_files).
    "topic": lambda d: [t["name"] for t in d.get("topics") or []],
    "ocw_topic": _plain("ocw_topics"),
    "content_feature_type": _plain("content_feature_type"),
    "ocw_file": lambda d: ["true" if _codes("platform")(d) == ["ocw"] else "false"],
}
CONTENT_CASE_SENSITIVE_FILTERS = {"id", "resource_id", "run_id"}

# Stored with the document (a preview); the whole text is indexed but not stored.
CONTENT_EXCERPT_CHARS = 500


def content_filter_values(doc: dict) -> dict[str, list[str]]:
    out = {}
    for name, get in CONTENT_FILTER_FIELDS.items():
        values = get(doc)
        out[name] = (
            values if name in CONTENT_CASE_SENSITIVE_FILTERS else [v.lower() for v in values]
        )
    return out


def to_content_file_document(row: dict[str, Any]) -> dict[str, Any]:
    """A `content_file` row joined with its run and resource, as both engines index it.

    `row` keys: id, key, resource_id, run_id (the run's text id), title, url, file_type,
    content_type, file_extension, content, checksum, data, platform, offered_by,
    resource_readable_id, resource_title.
    """
    ref = reference_data()
    data = row.get("data") or {}
    content = row.get("content") or ""
    extension = (row.get("file_extension") or "").strip().lower()
    if extension and not extension.startswith("."):
        extension = f".{extension}"  # MIT Learn stores extensions with the dot
    return {
        "id": int(row["id"]),
        "key": row["key"],
        "resource_id": int(row["resource_id"]),
        "resource_readable_id": row.get("resource_readable_id") or "",
        "resource_title": row.get("resource_title") or "",
        "run_id": row.get("run_id") or "",
        "title": row.get("title") or data.get("content_title") or "",
        "content_title": data.get("content_title") or "",
        "description": data.get("description") or "",
        "url": row.get("url") or "",
        "file_type": row.get("file_type") or "",
        "content_type": row.get("content_type") or "",
        "file_extension": extension,
        "platform": _names(row.get("platform"), ref.platforms),
        "offered_by": _names(row.get("offered_by"), ref.offerors),
        "checksum": row.get("checksum") or "",
        "content_excerpt": content[:CONTENT_EXCERPT_CHARS],
        "content_length": len(content),
        "topics": [
            {"name": t["name"] if isinstance(t, dict) else str(t)}
            for t in _json_list(row.get("resource_topics"))
        ],
        "ocw_topics": [str(t) for t in _json_list(row.get("resource_ocw_topics"))],
        "content_feature_type": [str(t) for t in data.get("content_tags") or []],
    }


def _json_list(value: Any) -> list:
    # asyncpg hands jsonb sub-values (`data->'topics'`) over as JSON text
    if isinstance(value, str):
        value = json.loads(value)
    return value if isinstance(value, list) else []


_WORD = re.compile(r"\S+")


def chunk_words(text: str, size: int = 512) -> list[str]:
    """Split text into chunks of at most `size` whitespace-separated tokens (no overlap, as MIT
    Learn's CONTENT_FILE_EMBEDDING_CHUNK_SIZE=512 with overlap 0). A word is a token here: no
    tokenizer download, and a 512-word chunk stays within every embedding model's context."""
    words = _WORD.findall(text)
    return [" ".join(words[i : i + size]) for i in range(0, len(words), size)]


def content_chunk_key(doc: dict, chunk_number: int) -> str:
    """MIT Learn's chunk key: platform.resource_readable_id.run_id.key.chunk_number."""
    platform = (doc.get("platform") or {}).get("code", "")
    return f"{platform}.{doc['resource_readable_id']}.{doc['run_id']}.{doc['key']}.{chunk_number}"

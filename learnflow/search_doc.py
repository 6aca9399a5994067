"""The search document: one resource serialised for the keyword index and the vector payload.

Both engines index the same document, and filters are defined once here: MIT Learn's filter names
(reference/mit-learn.md §4.3) mapped to the values a document carries for them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from learnflow.models import Resource
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


def _level_codes(res: Resource) -> list[str]:
    return sorted({lvl for run in res.runs if run.published for lvl in run.level})


def next_start_date(res: Resource, now: datetime | None = None) -> datetime | None:
    starts = [r.start_date for r in res.runs if r.published and r.start_date]
    if now is not None:
        starts = [s for s in starts if s >= now]
    return min(starts) if starts else None


def to_search_document(
    res: Resource, resource_id: int, created_on: datetime | None = None
) -> dict[str, Any]:
    """The document both engines index (keys stable: the gRPC layer reads them back)."""
    ref = reference_data()
    runs = [r for r in res.runs if r.published and not r.is_variant]
    instructors = sorted({i.full_name for r in runs for i in r.instructors})
    doc: dict[str, Any] = {
        "id": resource_id,
        "key": res.key,
        "readable_id": res.readable_id,
        "title": res.title,
        "description": res.description or "",
        "full_description": res.full_description or "",
        "url": res.url,
        "image": res.image.model_dump(mode="json") if res.image else None,
        "resource_type": str(res.resource_type),
        "resource_category": res.resource_category,
        "resource_type_group": res.resource_type_group,
        "etl_source": res.etl_source,
        "platform": _names(res.platform, ref.platforms),
        "offered_by": _names(res.offered_by, ref.offerors),
        "topics": [{"name": t.name} for t in res.topics],
        "ocw_topics": list(res.ocw_topics),
        "departments": [d.model_dump(mode="json") for d in res.departments],
        "course_feature": list(res.course_features),
        "certification": res.certification,
        "certification_type": {
            "code": str(res.certification_type),
            "name": _CERT_NAMES.get(str(res.certification_type), str(res.certification_type)),
        },
        "professional": res.professional,
        "free": res.free,
        "published": res.published,
        "delivery": [
            {"code": str(d), "name": str(d).replace("_", " ").title()} for d in res.delivery
        ],
        "pace": [str(p) for p in res.pace],
        "level": _level_codes(res),
        "instructors": instructors,
        "course_numbers": [c.value for c in res.course_numbers],
        "prices": [str(p.amount) for p in res.prices],
        "runs": [
            {
                "run_id": r.run_id,
                "title": r.title,
                "start_date": r.start_date.isoformat() if r.start_date else None,
                "end_date": r.end_date.isoformat() if r.end_date else None,
                "semester": r.semester,
                "year": r.year,
                "level": list(r.level),
            }
            for r in runs
        ],
        "next_start_date": _iso(next_start_date(res)),
        "last_modified": _iso(res.last_modified),
        "created_on": _iso(created_on),
        "completeness": res.completeness,
        "views": int(res.details.get("view_count") or 0),
        # MIT Learn's sort helpers (excluded from its _source; kept small here).
        "featured_rank": None,
        "sort_coursenum": _sort_coursenum(res),
        # A video's spoken words (MIT Learn indexes `video.transcript`): searched, not returned.
        "transcript": str(res.details.get("transcript") or ""),
    }
    return doc


def _sort_coursenum(res: Resource) -> str | None:
    primary = [c for c in res.course_numbers if c.primary] or list(res.course_numbers)
    if not primary:
        return None
    return primary[0].sort_coursenum or primary[0].value


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


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
        out[name] = values if name in CASE_SENSITIVE_FILTERS else [v.lower() for v in values]
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

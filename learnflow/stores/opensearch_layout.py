"""MIT Learn's OpenSearch index layout (reference/mit-learn.md §4): analysis, field mappings,
index settings, and the documents as indexed (derived fields, content-file children).

Pure (no client): `opensearch_writer.py` creates indexes and writes documents from these;
`opensearch_mapping.py` builds the queries over the same fields.

The mapping follows MIT Learn's `learning_resources_search/constants.py` where learnflow's search
document (`learnflow/search_doc.py`) has the same shape. Where the shapes differ the mapping maps
learnflow's shape and says so (``SHAPE_NOTES``), rather than inventing fields the document lacks.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from learnflow.models import ResourceType
from learnflow.search_doc import to_content_file_document

# Every resource type gets its own backing index. MIT Learn leaves learning_path out of its
# indexed types; learnflow indexes it so both engines hold the same catalog.
RESOURCE_TYPES: tuple[str, ...] = tuple(str(t) for t in ResourceType)
# Content files are child documents of their resource in these indexes only (MIT Learn).
CONTENT_FILE_TYPES: tuple[str, ...] = ("course", "program")

# MIT Learn's SEARCH_PROGRAM_INDEX_BOOST for keyword queries (indices_boost on the program alias).
PROGRAM_INDEX_BOOST = 3.0

JOIN_FIELD = "resource_relations"
RESOURCE_RELATION = "resource"
CONTENT_FILE_RELATION = "content_file"

SYNONYMS = [
    "ai, ml, artificial intelligence, machine learning",
    "math, mathematics",
    "chem, chemistry",
    "bio, biology",
    "econ, economics",
    "natural language processing, nlp",
    "large language model, llm",
    "micromasters, micro masters",
    "scm, supply chain management",
]

ANALYSIS: dict[str, Any] = {
    "analyzer": {
        "trigram": {
            "type": "custom",
            "tokenizer": "standard",
            "filter": ["lowercase", "synonyms_filter", "shingle"],
        },
        "custom_english": {
            "type": "custom",
            "tokenizer": "standard",
            "filter": [
                "english_possessive_stemmer",
                "lowercase",
                "synonyms_filter",
                "english_stop",
                "english_keywords",
                "english_stemmer",
            ],
        },
    },
    "filter": {
        "shingle": {"type": "shingle", "min_shingle_size": 2, "max_shingle_size": 3},
        "english_stop": {"type": "stop", "stopwords": "_english_"},
        "english_keywords": {"type": "keyword_marker", "keywords": []},
        "english_stemmer": {"type": "stemmer", "language": "english"},
        "english_possessive_stemmer": {"type": "stemmer", "language": "possessive_english"},
        "synonyms_filter": {"type": "synonym_graph", "synonyms": SYNONYMS, "expand": "true"},
    },
}

# -- field types ------------------------------------------------------------------------------

KEYWORD = {"type": "keyword"}
BOOL = {"type": "boolean"}
DATE = {"type": "date"}
LONG = {"type": "long"}
INT = {"type": "integer"}
FLOAT = {"type": "float"}
# Not MIT Learn's: every `.english` field also has `.stemmed`, OpenSearch's built-in `english`
# analyzer (custom_english without the synonyms: possessives, stop words, English stemmer), which
# the default mode's keyword side searches (opensearch_mapping.PLAIN_FIELD). synonym_graph belongs
# in search analyzers only: at index time it flattens "AI" into machine/learning/artificial/...
# tokens at one position, inflating those terms' frequencies, and at query time each synonym
# scores again, so "artificial intelligence in hospitals" ranks by AI alone.
STEMMED = {"type": "text", "analyzer": "english"}
ENGLISH_TEXT = {
    "type": "text",
    "fields": {"english": {"type": "text", "analyzer": "custom_english"}, "stemmed": STEMMED},
}
ENGLISH_TEXT_WITH_SUGGEST = {
    "type": "text",
    "fields": {
        "english": {"type": "text", "analyzer": "custom_english"},
        "stemmed": STEMMED,
        "trigram": {"type": "text", "analyzer": "trigram"},
    },
}
KEYWORD_WITH_ENGLISH = {
    "type": "keyword",
    "fields": {"english": {"type": "text", "analyzer": "custom_english"}, "stemmed": STEMMED},
}
CODE_NAME = {"type": "nested", "properties": {"code": KEYWORD, "name": KEYWORD}}

RESOURCE_PROPERTIES: dict[str, Any] = {
    "id": LONG,
    "key": KEYWORD,
    "readable_id": KEYWORD,
    "title": ENGLISH_TEXT_WITH_SUGGEST,
    "description": ENGLISH_TEXT_WITH_SUGGEST,
    "full_description": ENGLISH_TEXT,
    "transcript": ENGLISH_TEXT,
    "url": KEYWORD,
    "image": {
        "type": "object",
        "properties": {
            "url": KEYWORD,
            "alt": {"type": "text"},
            "description": ENGLISH_TEXT_WITH_SUGGEST,
        },
    },
    "resource_type": KEYWORD,
    "resource_category": KEYWORD,
    "resource_type_group": KEYWORD,
    "etl_source": KEYWORD,
    "platform": CODE_NAME,
    "offered_by": CODE_NAME,
    "topics": {
        "type": "nested",
        "properties": {"id": LONG, "name": KEYWORD, "channel_url": KEYWORD},
    },
    "ocw_topics": KEYWORD_WITH_ENGLISH,
    "departments": {
        "type": "nested",
        "properties": {
            "department_id": KEYWORD,
            "name": KEYWORD,
            "channel_url": KEYWORD,
        },
    },
    "course_feature": KEYWORD,
    "certification": BOOL,
    "certification_type": {
        "type": "nested",
        "properties": {"code": KEYWORD, "name": KEYWORD_WITH_ENGLISH},
    },
    "professional": BOOL,
    "free": BOOL,
    "published": BOOL,
    "license_cc": BOOL,
    "delivery": CODE_NAME,
    "pace": KEYWORD,
    "format": KEYWORD,
    "level": KEYWORD,
    "instructors": {"type": "text", "fields": {"keyword": KEYWORD}},
    "course_numbers": KEYWORD,
    "prices": {"type": "scaled_float", "scaling_factor": 100},
    "runs": {
        "type": "nested",
        "properties": {
            "run_id": KEYWORD,
            "title": ENGLISH_TEXT_WITH_SUGGEST,
            "description": ENGLISH_TEXT_WITH_SUGGEST,
            "start_date": DATE,
            "end_date": DATE,
            "semester": KEYWORD,
            "year": INT,
            "level": KEYWORD,
            "prices": {"type": "scaled_float", "scaling_factor": 100},
            "location": KEYWORD,
        },
    },
    "next_start_date": DATE,
    "last_modified": DATE,
    "created_on": DATE,
    "completeness": FLOAT,
    "views": INT,
    "featured_rank": FLOAT,
    "sort_coursenum": KEYWORD,
    # Derived by the backend at index time (MIT Learn's serializer adds them); not in _source.
    "resource_age_date": DATE,
    "is_learning_material": BOOL,
    "is_incomplete_or_stale": BOOL,
}

# Content-file fields (learnflow.search_doc.to_content_file_document + the full text). Fields
# shared with resources (id, key, title, description, url, platform, offered_by) keep the
# resource mapping: both maps live in the course/program indexes.
CONTENT_FILE_PROPERTIES: dict[str, Any] = {
    "resource_id": LONG,
    "resource_readable_id": KEYWORD,
    "resource_title": ENGLISH_TEXT,
    "parent_resource_type": KEYWORD,
    "run_id": KEYWORD,
    "content_title": ENGLISH_TEXT,
    "content": ENGLISH_TEXT,
    "content_excerpt": {"type": "text", "index": False},
    "content_length": LONG,
    "content_feature_type": KEYWORD,
    "file_type": KEYWORD,
    "content_type": KEYWORD,
    "file_extension": KEYWORD,
    "checksum": KEYWORD,
}

# Indexed but not returned (MIT Learn's _source excludes: derived sort/score helpers, the join
# field, large content).
SOURCE_EXCLUDES = [
    "resource_age_date",
    "is_learning_material",
    "is_incomplete_or_stale",
    JOIN_FIELD,
    "content",
    "parent_resource_type",
]

# Where learnflow's search document differs from MIT Learn's (reported, not papered over).
SHAPE_NOTES = {
    "runs.instructors": "search_doc has top-level `instructors` (full names), not nested runs.instructors",
    "runs.level": "search_doc has level codes (top-level `level`, runs[].level), not nested {code,name}",
    "course.course_numbers": "search_doc has `course_numbers` as strings, not nested {value, sort_coursenum, department, primary}",
    "pace/format": "search_doc has code strings, not nested {code,name}",
    "runs.prices/resource_prices": "search_doc has top-level `prices` (strings); per-run prices are not in it",
    "video.transcript / content_files (nested)": "not in search_doc (video/document indexes carry no nested content files)",
    "topics.id/channel_url, departments.channel_url/school": "not in search_doc",
    "continuing_ed_credits, duration, time_commitment, min/max weeks/hours": "not in search_doc",
}


def index_mappings(resource_type: str) -> dict[str, Any]:
    props = copy.deepcopy(RESOURCE_PROPERTIES)
    if resource_type in CONTENT_FILE_TYPES:
        props.update(copy.deepcopy(CONTENT_FILE_PROPERTIES))
        props[JOIN_FIELD] = {
            "type": "join",
            "relations": {RESOURCE_RELATION: CONTENT_FILE_RELATION},
        }
    return {"_source": {"excludes": list(SOURCE_EXCLUDES)}, "properties": props}


def index_settings(shards: int, replicas: int, refresh_interval: str) -> dict[str, Any]:
    return {
        "index": {
            "number_of_shards": shards,
            "number_of_replicas": replicas,
            "refresh_interval": refresh_interval,
        },
        "analysis": ANALYSIS,
    }


def flatten_types(properties: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """`{dotted.path: type}` for a mapping's properties (sub-fields included as path.sub)."""
    out: dict[str, str] = {}
    for name, spec in properties.items():
        path = f"{prefix}{name}"
        out[path] = spec.get("type", "object")
        if spec.get("type") == "scaled_float":
            out[f"{path}#scaling_factor"] = str(float(spec["scaling_factor"]))
        if "analyzer" in spec:
            out[f"{path}#analyzer"] = spec["analyzer"]
        for sub, sub_spec in (spec.get("fields") or {}).items():
            out[f"{path}.{sub}"] = sub_spec.get("type", "object")
            if "analyzer" in sub_spec:
                out[f"{path}.{sub}#analyzer"] = sub_spec["analyzer"]
        if "properties" in spec:
            out.update(flatten_types(spec["properties"], f"{path}."))
    return out


def mapping_differences(resource_type: str, actual: dict[str, Any]) -> list[str]:
    """What an index's live mapping lacks or maps differently from `index_mappings` (empty = ok).

    Extra (dynamically added) fields are allowed; every expected field must have its type.
    """
    expected = flatten_types(index_mappings(resource_type)["properties"])
    live = flatten_types(actual.get("properties", {}))
    return [
        f"{path}: expected {want}, found {live.get(path, 'nothing')}"
        for path, want in sorted(expected.items())
        if live.get(path) != want
    ]


# -- derived fields ---------------------------------------------------------------------------

_SEMESTER_MONTH = {"fall": 9, "spring": 3, "iap": 1, "january iap": 1, "summer": 6}


def _parse(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def resource_age_date(doc: dict[str, Any], now: datetime) -> datetime | None:
    """MIT Learn's age for staleness: learning materials by last_modified; courses/programs with
    no upcoming start by their latest past run start (OCW-style year+semester when undated)."""
    if doc.get("resource_type_group") == "learning_material":
        return _parse(doc.get("last_modified"))
    upcoming = _parse(doc.get("next_start_date"))
    if upcoming is not None and upcoming >= now:
        return None
    starts: list[datetime] = []
    for run in doc.get("runs") or []:
        start = _parse(run.get("start_date"))
        if start is None and run.get("year"):
            month = _SEMESTER_MONTH.get(str(run.get("semester") or "").lower(), 1)
            start = datetime(int(run["year"]), month, 1, tzinfo=UTC)
        if start is not None and start <= now:
            starts.append(start)
    return max(starts) if starts else upcoming


def indexed_resource(doc: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
    """The search document plus the fields MIT Learn's serializer derives for the index."""
    now = now or datetime.now(UTC)
    out = dict(doc)
    age = resource_age_date(doc, now)
    completeness = doc.get("completeness")
    out["resource_age_date"] = age.isoformat() if age else None
    out["is_learning_material"] = doc.get("resource_type_group") == "learning_material"
    out["is_incomplete_or_stale"] = bool(
        (age is not None and age.year <= 2010)
        or (completeness is not None and float(completeness) < 0.5)
    )
    if str(doc.get("resource_type")) in CONTENT_FILE_TYPES:
        out[JOIN_FIELD] = {"name": RESOURCE_RELATION}
    return out


def content_file_document(
    row: dict[str, Any], parent_resource_type: str = "course"
) -> dict[str, Any]:
    """A content-file child document from a `content_file` row (joined with its run and resource).

    Row keys: id, resource_id, key, title, content, file_extension, content_type, file_type, url,
    run_id (the run's text id), checksum, data, platform, offered_by, resource_readable_id,
    resource_title, published, resource_type (the parent's; else `parent_resource_type`).
    The stored part is `search_doc.to_content_file_document`'s; the full text is indexed only.
    """
    doc = to_content_file_document(row)
    data = row.get("data") or {}
    parent_type = str(row.get("resource_type") or parent_resource_type)
    doc["content"] = row.get("content") or ""
    doc["content_feature_type"] = list(data.get("content_tags") or [])
    doc["published"] = bool(row.get("published", True))
    doc["parent_resource_type"] = parent_type
    return doc

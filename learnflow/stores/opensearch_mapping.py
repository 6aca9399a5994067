"""MIT Learn's OpenSearch index settings, mappings and query building (reference/mit-learn.md §4).

Pure functions only (no client): the backend in `opensearch.py` sends what these build, and the
unit tests read the bodies directly.

The mapping follows MIT Learn's `learning_resources_search/constants.py` where learnflow's search
document (`learnflow/search_doc.py`) has the same shape. Where the shapes differ the mapping maps
learnflow's shape and says so (``SHAPE_NOTES``), rather than inventing fields the document lacks.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from learnflow.models import ResourceType
from learnflow.search_doc import CONTENT_FILTER_FIELDS, FILTER_FIELDS, to_content_file_document
from learnflow.stores.keyword import SORT_FIELDS, KeywordQuery, engine_text, is_quoted

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
ENGLISH_TEXT = {
    "type": "text",
    "fields": {"english": {"type": "text", "analyzer": "custom_english"}},
}
ENGLISH_TEXT_WITH_SUGGEST = {
    "type": "text",
    "fields": {
        "english": {"type": "text", "analyzer": "custom_english"},
        "trigram": {"type": "text", "analyzer": "trigram"},
    },
}
KEYWORD_WITH_ENGLISH = {
    "type": "keyword",
    "fields": {"english": {"type": "text", "analyzer": "custom_english"}},
}
CODE_NAME = {"type": "nested", "properties": {"code": KEYWORD, "name": KEYWORD}}

RESOURCE_PROPERTIES: dict[str, Any] = {
    "id": LONG,
    "key": KEYWORD,
    "readable_id": KEYWORD,
    "title": ENGLISH_TEXT_WITH_SUGGEST,
    "description": ENGLISH_TEXT_WITH_SUGGEST,
    "full_description": ENGLISH_TEXT,
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


# -- filters ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FilterField:
    field: str
    nested: str | None = None
    kind: str = "keyword"  # keyword (case-insensitive) | exact | bool | long


# MIT Learn's filter names (search_doc.FILTER_FIELDS) -> where their values live in the index.
FILTERS: dict[str, FilterField] = {
    "resource_type": FilterField("resource_type"),
    "offered_by": FilterField("offered_by.code", "offered_by"),
    "platform": FilterField("platform.code", "platform"),
    "topic": FilterField("topics.name", "topics"),
    "ocw_topic": FilterField("ocw_topics"),
    "department": FilterField("departments.department_id", "departments"),
    "level": FilterField("level"),
    "certification": FilterField("certification", kind="bool"),
    "certification_type": FilterField("certification_type.code", "certification_type"),
    "professional": FilterField("professional", kind="bool"),
    "free": FilterField("free", kind="bool"),
    "delivery": FilterField("delivery.code", "delivery"),
    "resource_type_group": FilterField("resource_type_group"),
    "resource_category": FilterField("resource_category"),
    "course_feature": FilterField("course_feature"),
    "id": FilterField("id", kind="long"),
}
assert set(FILTERS) >= set(FILTER_FIELDS), "every search_doc filter needs an index field"

MATCH_NONE: dict[str, Any] = {"match_none": {}}


# The content-file filters (search_doc.CONTENT_FILTER_FIELDS) on the content-file child
# documents. run_id is compared exactly (as the embedded engine does: run ids are case-sensitive).
CONTENT_FILTERS: dict[str, FilterField] = {
    "run_id": FilterField("run_id", kind="exact"),
    "resource_id": FilterField("resource_id", kind="long"),
    "platform": FilterField("platform.code", "platform"),
    "offered_by": FilterField("offered_by.code", "offered_by"),
    "file_extension": FilterField("file_extension"),
    "content_type": FilterField("content_type"),
    "id": FilterField("id", kind="long"),
}
assert set(CONTENT_FILTERS) == set(CONTENT_FILTER_FIELDS), "every content filter needs a field"


def filter_clause(
    name: str, values: list[str], specs: dict[str, FilterField] = FILTERS
) -> dict[str, Any]:
    """One filter: its values OR-ed, case-insensitive except ids (MIT Learn)."""
    try:
        spec = specs[name]
    except KeyError:
        raise ValueError(f"unknown filter {name!r}") from None
    if spec.kind == "bool":
        flags = sorted({v.strip().lower() for v in values} & {"true", "false"})
        inner: dict[str, Any] = {"terms": {spec.field: flags}} if flags else MATCH_NONE
    elif spec.kind == "long":
        ints = sorted({int(v) for v in values if str(v).strip().lstrip("-").isdigit()})
        inner = {"terms": {spec.field: ints}} if ints else MATCH_NONE
    elif spec.kind == "exact":
        inner = {"terms": {spec.field: [str(v) for v in values]}}
    else:
        inner = {
            "bool": {
                "should": [
                    {"term": {spec.field: {"value": str(v), "case_insensitive": True}}}
                    for v in values
                ],
                "minimum_should_match": 1,
            }
        }
    if spec.nested:
        return {"nested": {"path": spec.nested, "query": inner}}
    return inner


def filters_clause(
    filters: dict[str, list[str]],
    skip: str | None = None,
    specs: dict[str, FilterField] = FILTERS,
) -> dict[str, Any]:
    """All filters AND-ed (those with values), optionally leaving one out (disjunctive facets)."""
    clauses = [
        filter_clause(name, values, specs)
        for name, values in sorted(filters.items())
        if name != skip and values
    ]
    if not clauses:
        return {"match_all": {}}
    return {"bool": {"filter": clauses}}


def facet_aggregation(
    name: str, filters: dict[str, list[str]], specs: dict[str, FilterField] = FILTERS
) -> dict[str, Any]:
    """A facet counted under all *other* filters; nested facets count root documents."""
    try:
        spec = specs[name]
    except KeyError:
        raise ValueError(f"unknown facet {name!r}") from None
    terms = {"terms": {"field": spec.field, "size": 10000}}
    if spec.nested:
        values: dict[str, Any] = {
            "nested": {"path": spec.nested},
            "aggs": {"values": {**terms, "aggs": {"root": {"reverse_nested": {}}}}},
        }
    else:
        values = terms
    return {"filter": filters_clause(filters, skip=name, specs=specs), "aggs": {"values": values}}


def facet_buckets(
    name: str, agg: dict[str, Any], specs: dict[str, FilterField] = FILTERS
) -> list[tuple[str, int]]:
    spec = specs[name]
    inner = agg["values"]
    if spec.nested:
        inner = inner["values"]
        pairs = [(_bucket_key(b), int(b["root"]["doc_count"])) for b in inner["buckets"]]
    else:
        pairs = [(_bucket_key(b), int(b["doc_count"])) for b in inner["buckets"]]
    return sorted(pairs, key=lambda kv: (-kv[1], kv[0]))


def _bucket_key(bucket: dict[str, Any]) -> str:
    if "key_as_string" in bucket:  # booleans (and dates): "true"/"false"
        return str(bucket["key_as_string"])
    return str(bucket["key"])


# -- text query -------------------------------------------------------------------------------

# MIT Learn's LEARNING_RESOURCE_QUERY_FIELDS, restricted to fields the search document has, plus
# learnflow's flat instructors/course_numbers/level (MIT Learn nests those, boosted ^5).
RESOURCE_QUERY_FIELDS = [
    "title.english^3",
    "description.english^2",
    "full_description.english",
    "readable_id",
    "course_feature",
    "ocw_topics.english",
    "instructors^5",
    "course_numbers^5",
    "level^5",
]
# (nested path, fields): MIT Learn's nested clauses. platform/offered_by names are nested here
# because the mapping nests them (MIT Learn lists them among the top-level fields, where a nested
# field never matches; the nested clause makes "MITx" find MITx resources).
NESTED_QUERY_FIELDS: list[tuple[str, list[str]]] = [
    ("topics", ["topics.name"]),
    ("departments", ["departments.department_id", "departments.name"]),
    ("certification_type", ["certification_type.name.english^5"]),
    ("runs", ["runs.year", "runs.semester"]),
    ("platform", ["platform.name"]),
    ("offered_by", ["offered_by.name"]),
]
CONTENT_FILE_QUERY_FIELDS = [
    "content.english",
    "title.english",
    "content_title.english",
    "description.english",
    "content_feature_type",
]


# Fuzzy words only for short texts, on the top-level fields, with few expansions: every expanded
# term of every field counts against OpenSearch's 1024-clause limit.
MAX_FUZZY_WORDS = 6
MAX_FUZZY_CHARS = 40
FUZZY_EXPANSIONS = 10


def fuzzy_fits(text: str) -> bool:
    """A few words of ordinary length (the standard tokenizer cuts a longer run into 255-char
    tokens, each a fuzzy query of its own)."""
    words = re.findall(r"\w+", text)
    return len(words) <= MAX_FUZZY_WORDS and all(len(w) <= MAX_FUZZY_CHARS for w in words)


def text_match(
    text: str, fields: list[str], q: KeywordQuery, fuzzy: bool = False
) -> dict[str, Any]:
    """`multi_match` of type search_mode (slop in phrase); a "quoted" text is an exact phrase.

    Always a match query, never query_string: OpenSearch analyses the text as text, so no user
    input is parsed as query syntax. (MIT Learn sends quoted text through query_string, which
    for a whole-quoted text means the same phrase over the same fields.)"""
    if is_quoted(text):
        inner = text[1:-1]
        return {
            "multi_match": {"query": inner, "fields": fields, "type": "phrase", "lenient": True}
        }
    mode = q.search_mode if q.search_mode in ("phrase", "best_fields", "most_fields") else "phrase"
    body: dict[str, Any] = {"query": text, "fields": fields, "type": mode, "lenient": True}
    if mode == "phrase" and q.slop:
        body["slop"] = int(q.slop)
    elif fuzzy:
        # prefix_length 1: misspellings seldom touch the first letter, and it bounds expansions
        body.update(fuzziness="AUTO", prefix_length=1, max_expansions=FUZZY_EXPANSIONS)
    return {"multi_match": body}


def _weight(value: float) -> str:
    return f"{value:g}"


def text_should_clauses(text: str, q: KeywordQuery) -> list[dict[str, Any]]:
    clauses = [text_match(text, RESOURCE_QUERY_FIELDS, q, fuzzy=q.fuzzy and fuzzy_fits(text))]
    for path, fields in NESTED_QUERY_FIELDS:
        clauses.append(
            {
                "nested": {
                    "path": path,
                    "query": text_match(text, fields, q),
                    "ignore_unmapped": True,
                }
            }
        )
    if q.content_file_score_weight and q.content_file_score_weight > 0:
        weight = _weight(q.content_file_score_weight)
        clauses.append(
            {
                "has_child": {
                    "type": CONTENT_FILE_RELATION,
                    "query": text_match(
                        text, [f"{f}^{weight}" for f in CONTENT_FILE_QUERY_FIELDS], q
                    ),
                    "score_mode": "avg",
                    "ignore_unmapped": True,
                }
            }
        )
    return clauses


def text_query(text: str, q: KeywordQuery) -> dict[str, Any]:
    """MIT Learn's wrapping: the should-clauses both filter (through min_score) and score."""
    should = text_should_clauses(text, q)
    matching: dict[str, Any] = {"bool": {"should": should, "minimum_should_match": 1}}
    if q.min_score and q.min_score > 0:
        matching = {"function_score": {"query": matching, "min_score": float(q.min_score)}}
    return {"bool": {"filter": [matching], "should": should}}


SHAPING_SCRIPT = """
double factor = 1.0;
if (params.penalty > 0) {
  double c = doc['completeness'].size() == 0 ? 1.0 : doc['completeness'].value;
  factor = c * params.penalty + (1.0 - params.penalty);
}
if (params.decay < 1.0 && doc['resource_age_date'].size() != 0) {
  factor = factor * decayDateLinear(params.origin, params.scale, params.offset, params.decay,
                                    doc['resource_age_date'].value);
}
return factor;
"""


def shaped(query: dict[str, Any], q: KeywordQuery, now: datetime) -> dict[str, Any]:
    """Completeness penalty × yearly staleness decay (function_score script_score, painless)."""
    penalty = max(0.0, min(float(q.max_incompleteness_penalty), 100.0)) / 100.0
    decay = 1.0 - max(0.0, min(float(q.yearly_decay_percent), 100.0)) / 100.0
    if penalty <= 0 and decay >= 1.0:
        return query
    return {
        "function_score": {
            "query": query,
            "functions": [
                {
                    "script_score": {
                        "script": {
                            "lang": "painless",
                            "source": SHAPING_SCRIPT,
                            "params": {
                                "penalty": penalty,
                                "decay": max(decay, 1e-6),
                                "origin": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                "scale": "365d",
                                "offset": "0",
                            },
                        }
                    }
                }
            ],
            "boost_mode": "multiply",
        }
    }


# Resource documents only (content-file children share the course/program indexes).
RESOURCES_ONLY = {"exists": {"field": "resource_type"}}

DEFAULT_SORT: list[dict[str, Any]] = [
    {"featured_rank": {"order": "asc", "missing": "_last"}},
    {"is_learning_material": {"order": "asc"}},
    {"is_incomplete_or_stale": {"order": "asc"}},
    {"created_on": {"order": "desc", "missing": "_last"}},
    # not MIT Learn's: a unique last key so offset paging is stable
    {"id": {"order": "desc"}},
]


def sort_clause(sort: str) -> list[dict[str, Any]]:
    key = sort.lstrip("-")
    try:
        field = SORT_FIELDS[key]
    except KeyError:
        raise ValueError(f"unknown sort {sort!r}") from None
    order = "desc" if sort.startswith("-") else "asc"
    clauses: list[dict[str, Any]] = [{field: {"order": order}}]
    if field != "id":
        clauses.append({"id": {"order": "asc"}})
    return clauses


def search_body(
    q: KeywordQuery, now: datetime | None = None, program_alias: str | None = None
) -> dict[str, Any]:
    """The whole search request body for a KeywordQuery (MIT Learn's construct_search)."""
    now = now or datetime.now(UTC)
    text = engine_text(q.text or "")
    must: list[dict[str, Any]] = []
    scored = False
    if q.title_prefix is not None:
        prefix = q.title_prefix.strip()
        if prefix:
            must.append({"match_phrase_prefix": {"title": {"query": prefix}}})
    elif text:
        must.append(shaped(text_query(text, q), q, now) if not q.sort else text_query(text, q))
        scored = not q.sort
    query: dict[str, Any] = {"bool": {"filter": [RESOURCES_ONLY], "must": must}}
    body: dict[str, Any] = {
        "query": query,
        "from": max(0, int(q.offset)),
        "size": max(0, int(q.limit)),
        "track_total_hits": True,
    }
    active = {k: v for k, v in q.filters.items() if v}
    if active:
        body["post_filter"] = filters_clause(active)
    if q.facets:
        body["aggs"] = {name: facet_aggregation(name, active) for name in q.facets}
    if q.sort:
        body["sort"] = sort_clause(q.sort)
    elif not scored:
        body["sort"] = DEFAULT_SORT
    if scored and program_alias:
        body["indices_boost"] = [{program_alias: PROGRAM_INDEX_BOOST}]
    return body


# -- content files ----------------------------------------------------------------------------

CONTENT_FILES_ONLY = {"term": {JOIN_FIELD: CONTENT_FILE_RELATION}}
CONTENT_SORT_FIELDS = {"id": "id", "resource_readable_id": "resource_readable_id"}


def content_search_body(q: KeywordQuery) -> dict[str, Any]:
    """MIT Learn's content-file search (content_file_search endpoint) over the child documents:
    CONTENT_FILE_QUERY_FIELDS, no min_score or score shaping, post_filter + disjunctive facets."""
    text = engine_text(q.text or "")
    must: list[dict[str, Any]] = []
    if text:
        must.append(text_match(text, CONTENT_FILE_QUERY_FIELDS, q))
    body: dict[str, Any] = {
        "query": {"bool": {"filter": [CONTENT_FILES_ONLY], "must": must}},
        "from": max(0, int(q.offset)),
        "size": max(0, int(q.limit)),
        "track_total_hits": True,
    }
    active = {k: v for k, v in q.filters.items() if v}
    if active:
        body["post_filter"] = filters_clause(active, specs=CONTENT_FILTERS)
    if q.facets:
        body["aggs"] = {
            name: facet_aggregation(name, active, specs=CONTENT_FILTERS) for name in q.facets
        }
    if q.sort:
        key = q.sort.lstrip("-")
        if key not in CONTENT_SORT_FIELDS:
            raise ValueError(f"unknown content-file sort {q.sort!r}")
        order = "desc" if q.sort.startswith("-") else "asc"
        body["sort"] = [{CONTENT_SORT_FIELDS[key]: {"order": order}}, {"id": {"order": "asc"}}]
    elif not text:
        body["sort"] = [{"id": {"order": "asc"}}]  # no score to order by: stable paging
    return body

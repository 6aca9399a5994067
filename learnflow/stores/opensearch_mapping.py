"""MIT Learn's OpenSearch query building (reference/mit-learn.md §4): filters, facets, the text
query and its score shaping, sort, and the search bodies for resources and content files.

Pure functions only (no client): `opensearch.py` sends what these build, and the unit tests read
the bodies directly. The index layout they query is `opensearch_layout.py`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from learnflow.search_doc import CONTENT_FILTER_FIELDS, FILTER_FIELDS
from learnflow.stores.keyword import SORT_FIELDS, KeywordQuery, engine_text, is_quoted
from learnflow.stores.opensearch_layout import (
    CONTENT_FILE_RELATION,
    JOIN_FIELD,
    PROGRAM_INDEX_BOOST,
)

# -- filters ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FilterField:
    field: str
    nested: str | None = None
    kind: str = "keyword"  # keyword (case-insensitive) | exact | bool | long | flag
    equals: str = ""  # flag: "true" when `field` holds this value, "false" when it does not


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
    "topic": FilterField("topics.name", "topics"),
    "ocw_topic": FilterField("ocw_topics"),
    "content_feature_type": FilterField("content_feature_type"),
    "ocw_file": FilterField("platform.code", "platform", kind="flag", equals="ocw"),
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
    if spec.kind == "flag":
        is_it: dict[str, Any] = {"term": {spec.field: spec.equals}}
        if spec.nested:
            is_it = {"nested": {"path": spec.nested, "query": is_it}}
        flags = {v.strip().lower() for v in values} & {"true", "false"}
        if flags == {"true", "false"}:
            return {"match_all": {}}
        if not flags:
            return MATCH_NONE
        return is_it if flags == {"true"} else {"bool": {"must_not": [is_it]}}
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
    "transcript.english",
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


def query_fields(fields: list[str], q: KeywordQuery) -> list[str]:
    """MIT Learn's fields, or without catalog scoring their `.stemmed` twins (no synonyms: the
    layout's STEMMED explains why), so the default ranks as the embedded engine does."""
    if q.catalog_scoring:
        return fields
    return [f.replace(".english", ".stemmed") for f in fields]


def text_should_clauses(text: str, q: KeywordQuery) -> list[dict[str, Any]]:
    fuzzy = q.fuzzy and fuzzy_fits(text)
    clauses = [text_match(text, query_fields(RESOURCE_QUERY_FIELDS, q), q, fuzzy=fuzzy)]
    for path, fields in NESTED_QUERY_FIELDS:
        clauses.append(
            {
                "nested": {
                    "path": path,
                    "query": text_match(text, query_fields(fields, q), q),
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
                        text,
                        [f"{f}^{weight}" for f in query_fields(CONTENT_FILE_QUERY_FIELDS, q)],
                        q,
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
    if scored and program_alias and q.catalog_scoring:
        # MIT Learn's program boost orders its keyword results; the default mode's keyword side
        # leaves it out: ×3 on every program puts any program that shares a word with the query
        # at the top of the side's min-max normalised scores, and the embedded engine has none.
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

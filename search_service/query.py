"""Pure request handling: validation against reference data, filter maps for the engines, RRF, and search documents → proto messages. No I/O (unit-testable as functions)."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime

from google.protobuf import struct_pb2, timestamp_pb2

from learnflow.models import CertificationType, Delivery, ResourceType
from learnflow.reference import reference_data
from learnflow.search_doc import FILTER_FIELDS
from learnflow.stores.keyword import SEARCH_MODES, SORT_FIELDS, KeywordQuery
from search_service.errors import InvalidArgument
from search_service.hybrid import DEFAULT_FUSION, RRF_K, Fusion, rrf

__all__ = ["RRF_K", "rrf"]  # kept here for callers of the first version
from search_service.pb import search_pb2

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 10
MAX_WINDOW = 10_000  # offset + page_size (OpenSearch's max_result_window)
# A pasted page (10 kB) still answers: the engines search its first words (engine_text).
MAX_QUERY_CHARS = 16_384
MAX_FILTER_VALUES = 100

# MIT Learn's LevelType codes.
LEVELS = {
    "undergraduate", "graduate", "high_school", "noncredit", "advanced", "intermediate",
    "introductory",
}  # fmt: skip
RESOURCE_TYPE_GROUPS = {"course", "program", "learning_material"}
REPEATED_FILTERS = [
    "resource_type", "offered_by", "platform", "topic", "ocw_topic", "department", "level",
    "certification_type", "delivery", "resource_type_group", "resource_category", "course_feature",
]  # fmt: skip
BOOL_FILTERS = ["certification", "professional", "free"]
FACETS = sorted(set(FILTER_FIELDS) - {"id"})
CONTENT_FACETS = [
    "content_feature_type",
    "content_type",
    "file_extension",
    "offered_by",
    "platform",
    "resource_id",
    "run_id",
    "topic",
]
CONTENT_SORTS = {"id", "resource_readable_id"}
KEYWORD_MODES = {
    search_pb2.KEYWORD_SEARCH_MODE_UNSPECIFIED: "phrase",
    search_pb2.KEYWORD_SEARCH_MODE_PHRASE: "phrase",
    search_pb2.KEYWORD_SEARCH_MODE_BEST_FIELDS: "best_fields",
    search_pb2.KEYWORD_SEARCH_MODE_MOST_FIELDS: "most_fields",
}
assert set(KEYWORD_MODES.values()) == set(SEARCH_MODES)


def _allowed_values() -> dict[str, set[str]]:
    """Lower-cased allowed values per filter; filters not listed are free text."""
    ref = reference_data()
    return {
        "resource_type": {str(t) for t in ResourceType},
        "platform": {p.lower() for p in ref.platforms},
        "offered_by": {o.lower() for o in ref.offerors},
        "department": {d.lower() for d in ref.departments},
        "topic": set(ref.topics),
        "level": LEVELS,
        "certification_type": {str(c) for c in CertificationType},
        "delivery": {str(d) for d in Delivery},
        "resource_type_group": RESOURCE_TYPE_GROUPS,
    }


def resource_filters(f: search_pb2.ResourceFilter, field: str = "filter") -> dict[str, list[str]]:
    """The engines' filter map, or InvalidArgument listing every unknown value."""
    allowed = _allowed_values()
    violations: list[tuple[str, str]] = []
    out: dict[str, list[str]] = {}
    for name in REPEATED_FILTERS:
        values = [v.strip() for v in getattr(f, name)]
        if not values:
            continue
        if len(values) > MAX_FILTER_VALUES:
            violations.append((f"{field}.{name}", f"at most {MAX_FILTER_VALUES} values"))
            continue
        for v in values:
            if not v:
                violations.append((f"{field}.{name}", "empty value"))
            elif name in allowed and v.lower() not in allowed[name]:
                violations.append((f"{field}.{name}", f"unknown value {v!r}"))
        out[name] = values
    for name in BOOL_FILTERS:
        if f.HasField(name):
            out[name] = ["true" if getattr(f, name) else "false"]
    if f.id:
        if any(i <= 0 for i in f.id):
            violations.append((f"{field}.id", "ids are positive"))
        out["id"] = [str(i) for i in f.id]
    if violations:
        raise InvalidArgument(violations)
    return out


def content_filters(f: search_pb2.ContentFileFilter) -> dict[str, list[str]]:
    allowed = _allowed_values()
    violations: list[tuple[str, str]] = []
    out: dict[str, list[str]] = {}
    for name in ("platform", "offered_by", "topic"):
        values = list(getattr(f, name))
        for v in values:
            if v.lower() not in allowed[name]:
                violations.append((f"filter.{name}", f"unknown value {v!r}"))
        if values:
            out[name] = values
    for name in ("ocw_topic", "content_feature_type"):
        values = [v.strip() for v in getattr(f, name)]
        if any(not v for v in values):
            violations.append((f"filter.{name}", "empty value"))
        if values:
            out[name] = values
    if f.file_extension:
        exts = [normalise_extension(e) for e in f.file_extension]
        if any(len(e) < 2 or len(e) > 16 for e in exts):
            violations.append(("filter.file_extension", "an extension is 1 to 15 characters"))
        out["file_extension"] = exts
    if f.content_type:
        out["content_type"] = list(f.content_type)
    if f.run_id:
        out["run_id"] = list(f.run_id)
    for name in ("resource_id", "id"):
        ids = list(getattr(f, name))
        if any(i <= 0 for i in ids):
            violations.append((f"filter.{name}", "ids are positive"))
        if ids:
            out[name] = [str(i) for i in ids]
    if violations:
        raise InvalidArgument(violations)
    return out


def normalise_extension(ext: str) -> str:
    ext = ext.strip().lower()
    return ext if ext.startswith(".") else f".{ext}"


def page_window(page_size: int, offset: int, violations: list[tuple[str, str]]) -> int:
    if page_size < 0:
        violations.append(("page_size", "must not be negative"))
    if offset < 0:
        violations.append(("offset", "must not be negative"))
    limit = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)  # AIP-158: coerce above max
    if offset + limit > MAX_WINDOW:
        violations.append(("offset", f"offset + page_size must be at most {MAX_WINDOW}"))
    return limit


def _check_query(query: str, mode: int, violations: list[tuple[str, str]]) -> None:
    if len(query) > MAX_QUERY_CHARS:
        violations.append(("query", f"at most {MAX_QUERY_CHARS} characters"))
    if mode not in search_pb2.SearchMode.values():
        violations.append(("mode", f"unknown mode {mode}"))
    if mode in (search_pb2.SEARCH_MODE_VECTOR, search_pb2.SEARCH_MODE_HYBRID) and not query.strip():
        violations.append(("query", "vector and hybrid search need query text"))


def _check_hybrid(opts: search_pb2.HybridOptions, violations: list[tuple[str, str]]) -> None:
    for name in ("keyword_weight", "vector_weight"):
        if opts.HasField(name) and not 0 <= getattr(opts, name) <= 10:
            violations.append((f"hybrid_options.{name}", "must be between 0 and 10"))


def validate_search(req: search_pb2.SearchResourcesRequest) -> tuple[dict[str, list[str]], int]:
    """Check a SearchResourcesRequest; returns (filters, page size)."""
    violations: list[tuple[str, str]] = []
    _check_query(req.query, req.mode, violations)
    limit = page_window(req.page_size, req.offset, violations)
    if req.page_token and req.offset:
        violations.append(("offset", "give either offset or page_token"))
    for facet in req.facets:
        if facet not in FACETS:
            violations.append(("facets", f"unknown facet {facet!r}; one of {', '.join(FACETS)}"))
    if req.sort and req.sort.removeprefix("-") not in SORT_FIELDS:
        options = ", ".join(sorted(SORT_FIELDS))
        violations.append(("sort", f"unknown sort {req.sort!r}; one of {options}"))
    if req.view not in search_pb2.ResourceView.values():
        violations.append(("view", f"unknown view {req.view}"))
    ko = req.keyword_options
    if ko.search_mode not in KEYWORD_MODES:
        violations.append(("keyword_options.search_mode", "unknown search mode"))
    for name, lo, hi in (
        ("slop", 0, 20),
        ("min_score", 0, 50),
        ("yearly_decay_percent", 0, 10),
        ("max_incompleteness_penalty", 0, 100),
        ("content_file_score_weight", 0, 1),
    ):
        if ko.HasField(name) and not lo <= getattr(ko, name) <= hi:
            violations.append((f"keyword_options.{name}", f"must be between {lo} and {hi}"))
    _check_hybrid(req.hybrid_options, violations)
    try:
        filters = resource_filters(req.filter)
    except InvalidArgument as exc:
        violations.extend(exc.violations)
        filters = {}
    if violations:
        raise InvalidArgument(violations)
    return filters, limit


def validate_content_search(
    req: search_pb2.SearchContentFilesRequest,
) -> tuple[dict[str, list[str]], int]:
    violations: list[tuple[str, str]] = []
    _check_query(req.query, req.mode, violations)
    limit = page_window(req.page_size, req.offset, violations)
    if req.page_token and req.offset:
        violations.append(("offset", "give either offset or page_token"))
    for facet in req.facets:
        if facet not in CONTENT_FACETS:
            options = ", ".join(CONTENT_FACETS)
            violations.append(("facets", f"unknown facet {facet!r}; one of {options}"))
    if req.sort:
        if req.sort.removeprefix("-") not in CONTENT_SORTS:
            violations.append(
                ("sort", f"unknown sort {req.sort!r}; one of id, resource_readable_id")
            )
        elif req.mode not in (search_pb2.SEARCH_MODE_UNSPECIFIED, search_pb2.SEARCH_MODE_KEYWORD):
            violations.append(("sort", "sort applies to keyword mode only"))
    _check_hybrid(req.hybrid_options, violations)
    try:
        filters = content_filters(req.filter)
    except InvalidArgument as exc:
        violations.extend(exc.violations)
        filters = {}
    if req.HasField("show_ocw_files") and not req.show_ocw_files:
        filters["ocw_file"] = ["false"]  # MIT Learn's show_ocw_files=false
    if violations:
        raise InvalidArgument(violations)
    return filters, limit


def keyword_query(
    req: search_pb2.SearchResourcesRequest, filters: dict[str, list[str]], offset: int, limit: int
) -> KeywordQuery:
    ko = req.keyword_options
    q = KeywordQuery(
        text=req.query,
        filters=filters,
        facets=list(req.facets),
        sort=req.sort or None,
        offset=offset,
        limit=limit,
        search_mode=KEYWORD_MODES[ko.search_mode],
    )
    for name in (
        "slop",
        "min_score",
        "yearly_decay_percent",
        "max_incompleteness_penalty",
        "content_file_score_weight",
    ):
        if ko.HasField(name):
            setattr(q, name, getattr(ko, name))
    return q


def effective_mode(req: search_pb2.SearchResourcesRequest) -> int:
    """No mode: hybrid for a query with text, keyword for one without (a browse or a sort)."""
    if req.mode != search_pb2.SEARCH_MODE_UNSPECIFIED:
        return req.mode
    if req.query.strip():
        return search_pb2.SEARCH_MODE_HYBRID
    return search_pb2.SEARCH_MODE_KEYWORD


def fusion(req: search_pb2.SearchResourcesRequest | search_pb2.SearchContentFilesRequest) -> Fusion:
    """The tuned fusion, with the request's weights where it gives them."""
    opts = req.hybrid_options
    return dataclasses.replace(
        DEFAULT_FUSION,
        keyword_weight=(
            opts.keyword_weight
            if opts.HasField("keyword_weight")
            else DEFAULT_FUSION.keyword_weight
        ),
        vector_weight=(
            opts.vector_weight if opts.HasField("vector_weight") else DEFAULT_FUSION.vector_weight
        ),
    )


def hybrid_keyword_query(
    req: search_pb2.SearchResourcesRequest, filters: dict[str, list[str]], depth: int
) -> KeywordQuery:
    """The keyword side of hybrid mode: the first `depth` by score (no sort: the fused ranking
    is sorted afterwards), in the request's keyword mode, else the tuned one, with fuzzy words."""
    kq = keyword_query(req, filters, 0, depth)
    kq.sort = None
    kq.fuzzy = True  # a misspelt word still finds its documents (the vector side may not)
    if not req.keyword_options.search_mode:
        # No MIT Learn mode asked for: the tuned query, BM25 over English-stemmed text without
        # MIT Learn's program boost and synonyms (KeywordQuery.catalog_scoring).
        kq.search_mode = DEFAULT_FUSION.keyword_mode
        kq.catalog_scoring = False
    return kq


# -- documents → messages ---------------------------------------------------------------------


def timestamp(value: str | datetime | None) -> timestamp_pb2.Timestamp | None:
    if not value:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value if isinstance(value, datetime) else datetime.fromisoformat(value))
    return ts


def to_struct(doc: dict) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(json.loads(json.dumps(doc, default=str)))
    return s


def resource_message(doc: dict, view: int) -> search_pb2.LearningResource:
    msg = search_pb2.LearningResource(
        id=int(doc["id"]),
        readable_id=doc.get("readable_id") or "",
        resource_type=doc.get("resource_type") or "",
        title=doc.get("title") or "",
        description=doc.get("description") or "",
        url=doc.get("url") or "",
        platform=(doc.get("platform") or {}).get("code", ""),
        offered_by=(doc.get("offered_by") or {}).get("code", ""),
        topics=[t["name"] for t in doc.get("topics", [])],
        free=bool(doc.get("free")),
        certification=bool(doc.get("certification")),
        certification_type=(doc.get("certification_type") or {}).get("code", ""),
        professional=bool(doc.get("professional")),
        image_url=(doc.get("image") or {}).get("url", "") or "",
        delivery=[d["code"] for d in doc.get("delivery", [])],
        departments=[
            search_pb2.Department(department_id=d["department_id"], name=d["name"])
            for d in doc.get("departments", [])
        ],
        resource_category=doc.get("resource_category") or "",
        resource_type_group=doc.get("resource_type_group") or "",
        published=bool(doc.get("published", True)),
    )
    for name in ("next_start_date", "last_modified"):
        ts = timestamp(doc.get(name))
        if ts is not None:
            getattr(msg, name).CopyFrom(ts)
    if view == search_pb2.RESOURCE_VIEW_FULL:
        msg.document.CopyFrom(to_struct(doc))
    return msg


def content_file_message(doc: dict, view: int) -> search_pb2.ContentFile:
    excerpt = doc.get("content_excerpt") or ""
    return search_pb2.ContentFile(
        id=int(doc["id"]),
        key=doc.get("key") or "",
        resource_id=int(doc.get("resource_id") or 0),
        resource_readable_id=doc.get("resource_readable_id") or "",
        run_id=doc.get("run_id") or "",
        title=doc.get("title") or "",
        url=doc.get("url") or "",
        platform=(doc.get("platform") or {}).get("code", ""),
        offered_by=(doc.get("offered_by") or {}).get("code", ""),
        file_extension=doc.get("file_extension") or "",
        content_type=doc.get("content_type") or "",
        content_excerpt=excerpt if view == search_pb2.RESOURCE_VIEW_FULL else excerpt[:200],
        chunk_number=int(doc.get("chunk_number") or 0),
        chunk_content=doc.get("chunk_content") or "",
    )


def facet_messages(facets: dict[str, list[tuple[str, int]]]) -> list[search_pb2.Facet]:
    return [
        search_pb2.Facet(
            name=name,
            buckets=[search_pb2.FacetBucket(value=v, count=c) for v, c in buckets],
        )
        for name, buckets in facets.items()
    ]

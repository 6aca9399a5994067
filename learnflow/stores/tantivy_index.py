"""The embedded keyword indexes: tantivy (BM25, English stemming), one directory on disk each.

Two indexes share one implementation, described by an `IndexSpec`: learning resources
(`TantivyKeywordIndex`) and content files (`TantivyContentFileIndex`). Filter fields are indexed
raw and fast so filters are term queries and facets are tantivy term aggregations. The search
document is stored so a hit needs no second lookup (content files store an excerpt, not the text).
Writes happen through one writer per process; searches reload the reader after each commit.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import tantivy
from pydantic_core import to_json

from learnflow.search_doc import (
    CASE_SENSITIVE_FILTERS,
    CONTENT_CASE_SENSITIVE_FILTERS,
    CONTENT_FILTER_FIELDS,
    FILTER_FIELDS,
    content_filter_values,
    filter_values,
    search_text,
)
from learnflow.stores.keyword import (
    SORT_FIELDS,
    Hit,
    KeywordQuery,
    KeywordResults,
    engine_text,
    is_quoted,
)
from learnflow.stores.tantivy_columns import ColumnRequest, TermColumns
from learnflow.stores.tantivy_query import TEXT_TOKENIZER, TextQueries, analyse, prepare, register

# Bumped when the schema or an analyzer changes: an index written with an older schema is left
# alone and a new one is built next to it by the indexing workflow, which sees the new
# `generation` and indexes the whole catalog again (tantivy cannot open a mismatched schema).
# v3: English analysis as OpenSearch's `english` analyzer (stop words, possessives).
# v4: score-shaping inputs as fast fields.
# v5: the stored document is a stored-only bytes field, not also indexed as one raw term.
SCHEMA_VERSION = "v5"
# Score shaping re-ranks at most this many BM25 candidates (a window, as a rescore phase would).
SHAPING_WINDOW = 200
# What the hot-term columns of one index may hold (tantivy_columns.py): ~110 columns of a
# 100k-document index, or ~1,100 of a 10k one.
COLUMN_CACHE_BYTES = 256_000_000
# The date score shaping decays from: a resource's next start, else its last change, else creation.
_AGE_DATES = ("next_start_date", "last_modified", "created_on")


@dataclass(frozen=True)
class IndexSpec:
    text_fields: dict[str, float]  # field -> boost
    text_of: Callable[[dict], dict[str, str]]  # document -> text per text field
    filter_fields: tuple[str, ...]
    case_sensitive: frozenset[str]
    filter_values: Callable[[dict], dict[str, list[str]]]
    sort_fields: dict[str, str]  # sort option -> document key
    int_sorts: frozenset[str]  # document keys sorted as integers (dates are epoch seconds)
    stored: Callable[[dict], dict]  # what is stored and served back
    shaping: bool  # MIT Learn's completeness/staleness score shaping applies
    schema_version: str = SCHEMA_VERSION  # the directory under the index path (see above)


def _resource_texts(doc: dict) -> dict[str, str]:
    return {
        "title": doc.get("title") or "",
        "description": doc.get("description") or "",
        "body": search_text(doc),
    }


def _content_texts(doc: dict) -> dict[str, str]:
    return {
        "title": " ".join(p for p in (doc.get("title"), doc.get("content_title")) if p),
        "description": doc.get("description") or "",
        "body": doc.get("_content") or "",
    }


RESOURCE_SPEC = IndexSpec(
    text_fields={"title": 3.0, "description": 2.0, "body": 1.0},
    text_of=_resource_texts,
    filter_fields=tuple(FILTER_FIELDS),
    case_sensitive=frozenset(CASE_SENSITIVE_FILTERS),
    filter_values=filter_values,
    sort_fields=SORT_FIELDS,
    int_sorts=frozenset(
        {"last_modified", "created_on", "next_start_date", "views", "featured_rank"}
    ),
    stored=lambda doc: doc,
    shaping=True,
)

CONTENT_SPEC = IndexSpec(
    text_fields={"title": 2.0, "description": 1.5, "body": 1.0},
    text_of=_content_texts,
    filter_fields=tuple(CONTENT_FILTER_FIELDS),
    case_sensitive=frozenset(CONTENT_CASE_SENSITIVE_FILTERS),
    filter_values=content_filter_values,
    sort_fields={"id": "id", "resource_readable_id": "resource_readable_id"},
    int_sorts=frozenset(),
    stored=lambda doc: {k: v for k, v in doc.items() if not k.startswith("_")},
    shaping=False,
    # The resource schema's version, and its own filters: v5 = v4 plus MIT Learn's content-file
    # filters topic, ocw_topic, content_feature_type, ocw_file; v6 = v5 with the resource
    # schema's v5 change. Bump it with SCHEMA_VERSION.
    schema_version="v6",
)


def _schema(spec: IndexSpec) -> tantivy.Schema:
    sb = tantivy.SchemaBuilder()
    sb.add_integer_field("id", stored=True, indexed=True, fast=True)
    for name in spec.text_fields:
        sb.add_text_field(name, stored=False, tokenizer_name=TEXT_TOKENIZER)
    # Typeahead: title words lowercased but not stemmed, with positions for phrase-prefix.
    sb.add_text_field("ac_title", stored=False, tokenizer_name="default")
    # Stored only: indexed (a raw text field), the whole JSON was one term per document, and
    # building the term dictionary of those multi-kilobyte terms was ~90% of a commit's CPU
    # (~280 of ~310 µs per resource at 10k). Nothing queries it; hits read it back by address.
    sb.add_bytes_field("doc", stored=True, indexed=False)
    # Score-shaping inputs as fast fields (columns): re-ranking a window reads two columns in one
    # call per field instead of loading each candidate's stored document.
    sb.add_float_field("shape_completeness", stored=False, indexed=False, fast=True)
    sb.add_integer_field("shape_age", stored=False, indexed=False, fast=True)
    for name in spec.filter_fields:
        sb.add_text_field(f"f_{name}", stored=False, tokenizer_name="raw", fast=True)
    for key in sorted(set(spec.sort_fields.values()) - {"id"}):  # stable order: schema must match
        if key in spec.int_sorts:
            sb.add_integer_field(f"s_{key}", stored=False, indexed=False, fast=True)
        else:
            sb.add_text_field(f"s_{key}", stored=False, tokenizer_name="raw", fast=True)
    return sb.build()


def _epoch(value: Any) -> int:
    if not value:
        return 0
    if isinstance(value, int | float):
        return int(value)
    return _epoch_of_text(str(value))


# A catalog's dates repeat (a page's rows share their creation time, runs share start dates):
# each text is parsed once (~0.7 µs a parse, 3-4 a document).
@lru_cache(maxsize=65_536)
def _epoch_of_text(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp())


def _stored_json(doc: dict[str, Any]) -> bytes:
    """The stored document (read back with json.loads): pydantic-core's serializer, ~3× faster
    than json.dumps; json.dumps for what it refuses (a lone surrogate in extracted text)."""
    try:
        return to_json(doc)
    except ValueError:
        return json.dumps(doc, separators=(",", ":")).encode()


class TantivyIndex:
    """A tantivy index over search documents described by `spec`."""

    engine = "tantivy"  # the name health checks report it under
    # What the index was built as: the indexing activities index the whole catalog again when
    # the generation they last indexed into differs (a new schema starts empty).
    generation = f"tantivy-{SCHEMA_VERSION}"

    def __init__(
        self,
        spec: IndexSpec,
        path: Path | str | None = None,
        heap_bytes: int = 128_000_000,
        column_cache_bytes: int = COLUMN_CACHE_BYTES,
    ):
        self.spec = spec
        self.generation = f"tantivy-{spec.schema_version}"
        self.schema = _schema(spec)
        meta_json = None
        if path is None:
            self.index = tantivy.Index(self.schema)
        else:
            p = Path(path) / spec.schema_version
            p.mkdir(parents=True, exist_ok=True)
            self.index = tantivy.Index(self.schema, path=str(p), reuse=True)
            meta_json = p / "meta.json"  # rewritten by every commit, whichever process commits
        register(self.index)
        self.columns = TermColumns(self.index, self.schema, meta_json, column_cache_bytes)
        self.queries = TextQueries(self.schema, spec.text_fields)
        # Per document the writer only looks these up (field names and kinds, fixed per spec).
        self._sorts = tuple(
            (key, f"s_{key}", key in spec.int_sorts)
            for key in sorted(set(spec.sort_fields.values()) - {"id"})
        )
        self._filter_names = {name: f"f_{name}" for name in spec.filter_fields}
        self._heap = heap_bytes
        self._writer: tantivy.IndexWriter | None = None
        self._lock = threading.Lock()

    # -- writes ---------------------------------------------------------------------------

    def _get_writer(self) -> tantivy.IndexWriter:
        if self._writer is None:
            self._writer = self.index.writer(heap_size=self._heap, num_threads=1)
        return self._writer

    def _to_tantivy(self, doc: dict[str, Any]) -> tantivy.Document:
        """The tantivy document of a search document: built from a dict by the schema's field
        types (`from_dict`), a date's epoch computed once for its sort field and the shaping age,
        field names looked up, not formatted (48 -> 39 µs a document against keyword arguments
        and per-document names, the same fields and values)."""
        spec = self.spec
        fields: dict[str, Any] = {
            "id": int(doc["id"]),
            "doc": _stored_json(spec.stored(doc)),
            "ac_title": prepare(doc.get("title") or ""),
            "shape_completeness": float(
                doc["completeness"] if doc.get("completeness") is not None else 1.0
            ),
        }
        for name, text in spec.text_of(doc).items():
            fields[name] = prepare(text)
        epochs: dict[str, int] = {}
        for key, name, is_int in self._sorts:
            if is_int:
                fields[name] = epochs[key] = _epoch(doc.get(key))
            else:
                fields[name] = str(doc.get(key) or "")
        # The shaping age: the first of these dates a document has (0 without one).
        age = 0
        for key in _AGE_DATES:
            value = doc.get(key)
            if value:
                age = epochs[key] if key in epochs else _epoch(value)
                break
        fields["shape_age"] = age
        names = self._filter_names
        for name, values in spec.filter_values(doc).items():
            fields[names[name]] = values
        return tantivy.Document.from_dict(fields, self.schema)

    def _upsert_sync(self, documents: list[dict[str, Any]]) -> None:
        # An id twice in a batch: the last copy wins, as when each add replaced the one before.
        latest = {int(doc["id"]): doc for doc in documents}
        with self._lock:
            writer = self._get_writer()
            if latest:
                # One delete of the batch's ids before its adds (a delete removes only what was
                # added before it): the commit looks the ids up once per segment, not once per id.
                query = tantivy.Query.term_set_query(self.schema, "id", list(latest))
                writer.delete_documents_by_query(query)
            for doc in latest.values():
                writer.add_document(self._to_tantivy(doc))
            writer.commit()
        self.index.reload()
        self.columns.invalidate()

    def _delete_sync(self, ids: list[int]) -> None:
        with self._lock:
            writer = self._get_writer()
            for i in ids:
                writer.delete_documents_by_term("id", int(i))
            writer.commit()
        self.index.reload()
        self.columns.invalidate()

    async def upsert(self, documents: list[dict[str, Any]]) -> None:
        if documents:
            await asyncio.to_thread(self._upsert_sync, documents)

    async def delete(self, ids: list[int]) -> None:
        if ids:
            await asyncio.to_thread(self._delete_sync, ids)

    # -- reads ----------------------------------------------------------------------------

    def _text_query(self, q: KeywordQuery, searcher: tantivy.Searcher) -> tantivy.Query:
        if q.title_prefix is not None:
            return self.queries.title_prefix("ac_title", q.title_prefix)
        if not q.text.strip():
            return tantivy.Query.all_query()
        unknown = None
        if q.fuzzy:

            def unknown(field: str, term: str) -> bool:
                return searcher.doc_freq(field, term) == 0

        return self.queries.text(q.text, q.search_mode, q.slop, unknown)

    def _filter_query(
        self, filters: dict[str, list[str]], skip: str | None = None
    ) -> list[tantivy.Query]:
        clauses = []
        for name, values in filters.items():
            if name == skip or not values:
                continue
            norm = values if name in self.spec.case_sensitive else [v.lower() for v in values]
            terms = [
                (tantivy.Occur.Should, tantivy.Query.term_query(self.schema, f"f_{name}", v))
                for v in norm
            ]
            # A filter selects and never scores, as MIT Learn's post_filter (and the OpenSearch
            # backend): its clause adds 0, so a document's score is its text's BM25 alone.
            clauses.append(tantivy.Query.const_score_query(tantivy.Query.boolean_query(terms), 0.0))
        return clauses

    def _combine(self, text_q: tantivy.Query, filters: list[tantivy.Query]) -> tantivy.Query:
        if not filters:
            return text_q
        return tantivy.Query.boolean_query(
            [(tantivy.Occur.Must, text_q), *[(tantivy.Occur.Must, f) for f in filters]]
        )

    def _shapes(self, q: KeywordQuery) -> bool:
        return (
            self.spec.shaping
            and bool(q.text.strip())
            and not q.sort
            and q.title_prefix is None
            and (q.yearly_decay_percent > 0 or q.max_incompleteness_penalty > 0)
            and q.offset + q.limit <= SHAPING_WINDOW
        )

    def _loose_phrase(self, q: KeywordQuery) -> bool:
        """A sloppy phrase of 3+ words, which tantivy's unscored matching (what aggregations
        run) checks per pair of words, not as one slop budget over the phrase as its scored
        search does: it matches documents the search does not (tantivy PR #2031 carries the
        budget for the scored path only)."""
        if q.title_prefix is not None or q.search_mode != "phrase" or q.slop <= 0:
            return False
        text = engine_text(q.text)
        return not is_quoted(text) and len({t.position for t in analyse(text)}) > 2

    def _scored_matches(self, searcher: tantivy.Searcher, query: tantivy.Query) -> tantivy.Query:
        """The documents `query`'s scored search matches, as a set of ids (so an aggregation
        counts exactly those)."""
        n = int(searcher.search(query, limit=1, count=True).count or 0)
        if not n:
            return tantivy.Query.empty_query()
        addresses = [a for _s, a in searcher.search(query, limit=n, count=False).hits]
        ids = searcher.fast_field_values("id", addresses)
        return tantivy.Query.term_set_query(self.schema, "id", ids)

    def _column_request(self, q: KeywordQuery, window: int) -> ColumnRequest | None:
        """`q` as the hot-term columns take it, or None when only tantivy answers it."""
        if q.search_mode != "best_fields" or q.sort or q.title_prefix is not None:
            return None
        text = engine_text(q.text)
        if not text or is_quoted(text):
            return None
        filters = []
        for name, values in q.filters.items():
            if not values:
                continue
            if name not in self._filter_names:
                return None
            norm = values if name in self.spec.case_sensitive else [v.lower() for v in values]
            filters.append((name, tuple(norm)))
        if any(name not in self._filter_names for name in q.facets):
            return None
        return ColumnRequest(
            terms=tuple(dict.fromkeys(t.text for t in analyse(text))),
            fields=tuple((f, float(b)) for f, b in self.spec.text_fields.items()),
            filters=tuple(filters),
            facets=tuple(q.facets),
            window=window,
            fuzzy=q.fuzzy,
        )

    def _search_sync(self, q: KeywordQuery) -> KeywordResults:
        # Negative paging values are clamped as OpenSearch's from/size.
        limit, offset = max(0, int(q.limit)), max(0, int(q.offset))
        shaping = self._shapes(q)
        # Score shaping re-ranks a window of BM25 candidates: 5× the page end, at least 50, at
        # most SHAPING_WINDOW.
        window = min(max(5 * (offset + limit), 50), SHAPING_WINDOW) if shaping else 0
        request = self._column_request(q, window or offset + limit)
        answered = self.columns.answer(request) if request is not None else None
        if answered is not None:
            searcher, answer = answered
            page = answer.ranked if shaping else answer.ranked[offset : offset + limit]
            total, facets = answer.total, answer.facets
        else:
            searcher = self.index.searcher()
            page, total, facets = self._tantivy_answer(q, searcher, limit, offset, window)
        scored = bool(q.text.strip()) and not q.sort and q.title_prefix is None
        if shaping:
            now = datetime.now(UTC).timestamp()
            addresses = [address for _score, address in page]
            completeness = searcher.fast_field_values("shape_completeness", addresses)
            ages = searcher.fast_field_values("shape_age", addresses)
            rescored = []
            for (score, address), c, age in zip(page, completeness, ages, strict=True):
                factor = shaping_factor(c, age, q, now)
                rescored.append((float(score) * factor, float(score), address))
            rescored.sort(key=lambda t: -t[0])
            page = [(s, address) for s, _raw, address in rescored if _raw >= q.min_score]
            page = page[offset : offset + limit]
        hits = []
        for score, address in page:
            s = float(score) if scored else 0.0
            if scored and not shaping and s < q.min_score:
                continue
            doc = json.loads(searcher.doc(address)["doc"][0])
            hits.append(Hit(id=int(doc["id"]), score=s, document=doc))
        return KeywordResults(total=total, hits=hits, facets=facets)

    def _tantivy_answer(
        self, q: KeywordQuery, searcher: tantivy.Searcher, limit: int, offset: int, window: int
    ) -> tuple[list[tuple[Any, tantivy.DocAddress]], int, dict[str, list[tuple[str, int]]]]:
        """tantivy's page (the shaping window when `window`), match count and facets."""
        text_q = self._text_query(q, searcher)
        query = self._combine(text_q, self._filter_query(q.filters))
        scored = bool(q.text.strip()) and not q.sort and q.title_prefix is None
        loose = self._loose_phrase(q)
        if loose and not scored:
            # A sorted search does not score either: it gets the scored search's matches.
            query = self._scored_matches(searcher, query)
        # tantivy panics on limit=0 (a count- or facets-only request): ask for one hit to get
        # the count and drop it.
        kwargs: dict[str, Any] = {"limit": limit or 1, "offset": offset, "count": True}
        if window:
            kwargs.update(limit=window, offset=0)
        if q.sort:
            key = self.spec.sort_fields[q.sort.lstrip("-")]
            kwargs["order_by_field"] = f"s_{key}" if key != "id" else "id"
            kwargs["order"] = tantivy.Order.Desc if q.sort.startswith("-") else tantivy.Order.Asc
        elif not scored and "created_on" in self.spec.sort_fields.values():
            kwargs["order_by_field"] = "s_created_on"
            kwargs["order"] = tantivy.Order.Desc
        result = searcher.search(query, **kwargs)
        page = list(result.hits) if limit else []
        facets: dict[str, list[tuple[str, int]]] = {}
        if q.facets and q.search_mode == "best_fields":
            # Counting needs the matches, not their scores: best_fields' per-field dis_max
            # matches exactly what most_fields' flat disjunction of the same terms matches, and
            # the flat one costs about a quarter less to evaluate (bench.search at 100k).
            text_q = self._text_query(replace(q, search_mode="most_fields"), searcher)
            query = self._combine(text_q, self._filter_query(q.filters))
        # Disjunctive facets: a facet counts under every filter but its own. Facets without a
        # filter of their own share the full query, so they run as one aggregation request.
        shared = [n for n in q.facets if not q.filters.get(n)]
        groups = [(shared, query)] if shared else []
        groups += [
            ([n], self._combine(text_q, self._filter_query(q.filters, skip=n)))
            for n in q.facets
            if q.filters.get(n)
        ]
        for names, facet_q in groups:
            if loose and (scored or facet_q is not query):
                facet_q = self._scored_matches(searcher, facet_q)
            agg = searcher.aggregate(
                facet_q, {n: {"terms": {"field": f"f_{n}", "size": 10000}} for n in names}
            )
            for n in names:
                buckets = agg.get(n, {}).get("buckets", [])
                facets[n] = [(str(b["key"]), int(b["doc_count"])) for b in buckets]
        facets = {n: facets[n] for n in q.facets}
        return page, int(result.count or 0), facets

    async def search(self, query: KeywordQuery) -> KeywordResults:
        return await asyncio.to_thread(self._search_sync, query)

    def search_sync(self, query: KeywordQuery) -> KeywordResults:
        return self._search_sync(query)

    def _get_sync(self, ids: list[int]) -> list[dict[str, Any]]:
        searcher = self.index.searcher()
        out = []
        for i in ids:
            res = searcher.search(tantivy.Query.term_query(self.schema, "id", int(i)), limit=1)
            for _score, address in res.hits:
                out.append(json.loads(searcher.doc(address)["doc"][0]))
        return out

    async def get(self, ids: list[int]) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self._get_sync, ids)

    async def count(self) -> int:
        return self.index.searcher().num_docs

    async def healthy(self) -> bool:
        try:
            self.index.searcher()
            return True
        except Exception:
            return False

    async def close(self) -> None:
        with self._lock:
            self._writer = None


class TantivyKeywordIndex(TantivyIndex):
    """Learning resources (the `KeywordIndex` of the embedded configuration)."""

    def __init__(
        self,
        path: Path | str | None = None,
        heap_bytes: int = 128_000_000,
        column_cache_bytes: int = COLUMN_CACHE_BYTES,
    ):
        super().__init__(RESOURCE_SPEC, path, heap_bytes, column_cache_bytes)


class TantivyContentFileIndex(TantivyIndex):
    """Content files: documents from `search_doc.to_content_file_document` with the full text
    under `_content` (indexed, not stored)."""

    def __init__(
        self,
        path: Path | str | None = None,
        heap_bytes: int = 64_000_000,
        column_cache_bytes: int = COLUMN_CACHE_BYTES,
    ):
        super().__init__(CONTENT_SPEC, path, heap_bytes, column_cache_bytes)


def shaping_factor(
    completeness: float | None, age_epoch: int | None, q: KeywordQuery, now_epoch: float
) -> float:
    """MIT Learn's keyword score shaping: completeness term × linear staleness decay.

    completeness·p + (1 − p) with p = max_incompleteness_penalty/100, times ES decayDateLinear
    (scale 365 d, decay 1 − yearly_decay_percent/100) on the resource age date (1 without one).
    """
    p = max(0.0, min(q.max_incompleteness_penalty, 100.0)) / 100.0
    factor = (1.0 if completeness is None else completeness) * p + (1.0 - p)
    decay = 1.0 - max(0.0, min(q.yearly_decay_percent, 100.0)) / 100.0
    if age_epoch and decay < 1.0:
        days = abs(now_epoch - age_epoch) / 86400.0
        s = 365.0 / (1.0 - decay)
        factor *= max(0.0, (s - days) / s)
    return factor

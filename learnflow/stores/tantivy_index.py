"""The embedded keyword index: tantivy (BM25, English stemming), one directory on disk.

Filter fields are indexed raw and fast so filters are term queries and facets are tantivy term
aggregations. The whole search document is stored so a hit needs no second lookup.
Writes happen through one writer per process; searches reload the reader after each commit.
"""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import tantivy

from learnflow.search_doc import CASE_SENSITIVE_FILTERS, FILTER_FIELDS, filter_values, search_text
from learnflow.stores.keyword import SORT_FIELDS, Hit, KeywordQuery, KeywordResults

_TEXT_FIELDS = {"title": 3.0, "description": 2.0, "body": 1.0}


def _schema() -> tantivy.Schema:
    sb = tantivy.SchemaBuilder()
    sb.add_integer_field("id", stored=True, indexed=True, fast=True)
    for name in _TEXT_FIELDS:
        sb.add_text_field(name, stored=False, tokenizer_name="en_stem")
    sb.add_text_field("doc", stored=True, index_option="basic", tokenizer_name="raw")
    for name in FILTER_FIELDS:
        sb.add_text_field(f"f_{name}", stored=False, tokenizer_name="raw", fast=True)
    sb.add_text_field("s_readable_id", stored=False, tokenizer_name="raw", fast=True)
    for name in ("last_modified", "created_on", "next_start_date"):
        sb.add_integer_field(f"s_{name}", stored=False, indexed=False, fast=True)
    sb.add_integer_field("s_views", stored=False, indexed=False, fast=True)
    return sb.build()


def _epoch(value: str | None) -> int:
    if not value:
        return 0
    from datetime import datetime

    return int(datetime.fromisoformat(value).timestamp())


class TantivyKeywordIndex:
    def __init__(self, path: Path | str | None = None, heap_bytes: int = 128_000_000):
        self.schema = _schema()
        if path is None:
            self.index = tantivy.Index(self.schema)
        else:
            p = Path(path)
            p.mkdir(parents=True, exist_ok=True)
            self.index = tantivy.Index(self.schema, path=str(p), reuse=True)
        self._heap = heap_bytes
        self._writer: tantivy.IndexWriter | None = None
        self._lock = threading.Lock()

    # -- writes ---------------------------------------------------------------------------

    def _get_writer(self) -> tantivy.IndexWriter:
        if self._writer is None:
            self._writer = self.index.writer(heap_size=self._heap, num_threads=1)
        return self._writer

    def _to_tantivy(self, doc: dict[str, Any]) -> tantivy.Document:
        fields: dict[str, Any] = {
            "id": int(doc["id"]),
            "title": doc.get("title") or "",
            "description": doc.get("description") or "",
            "body": search_text(doc),
            "doc": json.dumps(doc, separators=(",", ":")),
            "s_readable_id": doc.get("readable_id") or "",
            "s_last_modified": _epoch(doc.get("last_modified")),
            "s_created_on": _epoch(doc.get("created_on")),
            "s_next_start_date": _epoch(doc.get("next_start_date")),
            "s_views": int(doc.get("views") or 0),
        }
        for name, values in filter_values(doc).items():
            fields[f"f_{name}"] = values
        return tantivy.Document(**fields)

    def _upsert_sync(self, documents: list[dict[str, Any]]) -> None:
        with self._lock:
            writer = self._get_writer()
            for doc in documents:
                writer.delete_documents_by_term("id", int(doc["id"]))
                writer.add_document(self._to_tantivy(doc))
            writer.commit()
        self.index.reload()

    def _delete_sync(self, ids: list[int]) -> None:
        with self._lock:
            writer = self._get_writer()
            for i in ids:
                writer.delete_documents_by_term("id", int(i))
            writer.commit()
        self.index.reload()

    async def upsert(self, documents: list[dict[str, Any]]) -> None:
        if documents:
            await asyncio.to_thread(self._upsert_sync, documents)

    async def delete(self, ids: list[int]) -> None:
        if ids:
            await asyncio.to_thread(self._delete_sync, ids)

    # -- reads ----------------------------------------------------------------------------

    def _text_query(self, q: KeywordQuery) -> tantivy.Query:
        text = q.text.strip()
        if not text:
            return tantivy.Query.all_query()
        quoted = len(text) >= 2 and text.startswith('"') and text.endswith('"')
        try:
            if quoted or q.search_mode == "phrase":
                # phrase mode with slop, as MIT Learn's multi_match type=phrase
                inner = text.strip('"')
                parsed = self.index.parse_query(
                    f'"{_escape(inner)}"~{0 if quoted else q.slop}',
                    list(_TEXT_FIELDS),
                    field_boosts=_TEXT_FIELDS,
                )
            else:
                # best_fields / most_fields: any term may match, BM25 ranks (tantivy sums fields)
                parsed = self.index.parse_query(
                    _escape(text), list(_TEXT_FIELDS), field_boosts=_TEXT_FIELDS
                )
        except ValueError:
            parsed = self.index.parse_query(
                _escape(text), list(_TEXT_FIELDS), field_boosts=_TEXT_FIELDS
            )
        return parsed

    def _filter_query(
        self, filters: dict[str, list[str]], skip: str | None = None
    ) -> list[tantivy.Query]:
        clauses = []
        for name, values in filters.items():
            if name == skip or not values:
                continue
            norm = values if name in CASE_SENSITIVE_FILTERS else [v.lower() for v in values]
            terms = [
                (tantivy.Occur.Should, tantivy.Query.term_query(self.schema, f"f_{name}", v))
                for v in norm
            ]
            clauses.append(tantivy.Query.boolean_query(terms))
        return clauses

    def _combine(self, text_q: tantivy.Query, filters: list[tantivy.Query]) -> tantivy.Query:
        if not filters:
            return text_q
        return tantivy.Query.boolean_query(
            [(tantivy.Occur.Must, text_q), *[(tantivy.Occur.Must, f) for f in filters]]
        )

    def _search_sync(self, q: KeywordQuery) -> KeywordResults:
        searcher = self.index.searcher()
        text_q = self._text_query(q)
        query = self._combine(text_q, self._filter_query(q.filters))
        kwargs: dict[str, Any] = {"limit": q.limit, "offset": q.offset, "count": True}
        if q.sort:
            field = SORT_FIELDS[q.sort.lstrip("-")]
            kwargs["order_by_field"] = f"s_{field}" if field != "id" else "id"
            kwargs["order"] = tantivy.Order.Desc if q.sort.startswith("-") else tantivy.Order.Asc
        elif not q.text.strip():
            kwargs["order_by_field"] = "s_created_on"
            kwargs["order"] = tantivy.Order.Desc
        result = searcher.search(query, **kwargs)
        hits = []
        for score, address in result.hits:
            stored = searcher.doc(address)
            doc = json.loads(stored["doc"][0])
            s = float(score) if not q.sort and q.text.strip() else 0.0
            if q.text.strip() and not q.sort and s < q.min_score:
                continue
            hits.append(Hit(id=int(doc["id"]), score=s, document=doc))
        facets = {}
        for name in q.facets:
            facet_q = self._combine(text_q, self._filter_query(q.filters, skip=name))
            agg = searcher.aggregate(
                facet_q, {"f": {"terms": {"field": f"f_{name}", "size": 10000}}}
            )
            buckets = agg.get("f", {}).get("buckets", [])
            facets[name] = [(str(b["key"]), int(b["doc_count"])) for b in buckets]
        return KeywordResults(total=int(result.count or 0), hits=hits, facets=facets)

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
        return True

    async def close(self) -> None:
        with self._lock:
            self._writer = None


def _escape(text: str) -> str:
    # tantivy's query parser treats these as syntax; user text is plain words here.
    for ch in '\\+-&|!(){}[]^"~*?:/':
        text = text.replace(ch, " ")
    return " ".join(text.split()) or "*"

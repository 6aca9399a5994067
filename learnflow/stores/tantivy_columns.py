"""Hot-term columns: tantivy's answer to a common keyword request, computed from cached columns.

A best_fields request (one to three distinct terms, term filters, terms facets, ranked by
relevance) makes tantivy walk every posting of every term in every text field, twice: once to
rank (a dis_max is never pruned) and once to count facets. When the bench's two-word queries
match nearly all of 100k documents that is ~6 ms of CPU an answer, most of a core per 150
answers/s. Learners' queries repeat their words, so this module keeps, per searcher, each hot
term's BM25 scores as a column over the searcher's documents (and each filter value's documents
as a bitset), and answers such a request with a few vector operations over those columns.

The answer is tantivy's, exactly: the columns are tantivy's own scores (the term query with the
field's boost, which is how the boosted per-field query scores each term), summed per field in
the query's clause order and maxed over fields as tantivy's dis_max does; filters score 0. Ties
go to the lower document address, as tantivy's top-k does; facet buckets are counted from the
same match set and ordered as tantivy's terms aggregation orders them. Requests it cannot answer
exactly (more terms, other modes, sorts, fuzzy expansions, phrases) return None and tantivy
answers them. `tests/search/test_tantivy_columns.py` compares both over many requests.

Columns belong to one searcher: a commit (this process's, or another's seen as a new
`meta.json`) starts a new snapshot with nothing cached. A request never waits for a column:
until its columns are held tantivy answers it, as before, and from its terms' second request in
a snapshot on, a background thread builds them (~30 ms for a term in nearly every one of 100k
documents). The cached columns are bounded by bytes, least recently used first out.
"""

from __future__ import annotations

import os
import queue
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import structlog
import tantivy

log = structlog.get_logger(__name__)

# Above this many distinct terms a field's union sums its terms in an order that changes as
# posting lists run out (tantivy swaps the last list into an ended one's place): not reproduced.
MAX_TERMS = 3
# A column at most this dense is kept sparse (indexes + scores), else as a dense score vector.
SPARSE_SHARE = 0.5
# Requests remembered per snapshot for admission (a term's first request is counted here).
MAX_REMEMBERED = 100_000
# Requests waiting for their columns to be built, at most (more go to tantivy, unscheduled).
MAX_PENDING = 64
# A terms aggregation's `size` (MIT Learn's 10000): a facet with that many values is tantivy's.
MAX_FACET_VALUES = 10_000
# Ranking samples every this-many documents for a threshold the best `window` reach.
SAMPLE_STRIDE = 16


@dataclass(frozen=True)
class ColumnRequest:
    """What the columns need of a keyword request (built by the index from its KeywordQuery)."""

    terms: tuple[str, ...]  # distinct analysed terms, in the query's clause order
    fields: tuple[tuple[str, float], ...]  # text field -> boost, in the query's order
    filters: tuple[tuple[str, tuple[str, ...]], ...]  # filter field -> normalised values
    facets: tuple[str, ...]  # facet fields (f_<name> columns are theirs)
    window: int  # ranked documents wanted: offset + limit, or the shaping window
    fuzzy: bool = False  # a term a field does not know would be matched by its near spellings


@dataclass
class ColumnAnswer:
    ranked: list[tuple[float, tantivy.DocAddress]]  # the best `window`, best first
    total: int
    facets: dict[str, list[tuple[str, int]]]


@dataclass
class _Base:
    """A searcher's documents in one order: segment by segment, by document id within."""

    addresses: list[tantivy.DocAddress]
    offsets: np.ndarray  # first global index of each segment
    size: int


@dataclass
class _Snapshot:
    searcher: tantivy.Searcher
    stamp: tuple[int, int, int] | None
    base: _Base | None = None
    requests: dict[object, int] = field(default_factory=dict)  # key -> times asked
    columns: OrderedDict[object, object] = field(default_factory=OrderedDict)
    bytes: int = 0
    evicted: int = 0
    pending: set[object] = field(default_factory=set)  # requests whose columns are being built


class TermColumns:
    """The hot-term columns of one tantivy index (see the module docstring)."""

    def __init__(
        self,
        index: tantivy.Index,
        schema: tantivy.Schema,
        meta_json: Path | None,
        budget_bytes: int,
        admit_after: int = 2,
    ):
        self._index = index
        self._schema = schema
        self._meta = meta_json
        self.budget_bytes = budget_bytes
        self.admit_after = admit_after
        self._lock = threading.Lock()
        self._snapshot: _Snapshot | None = None
        self._jobs: queue.Queue[tuple[_Snapshot, ColumnRequest, object]] = queue.Queue(
            maxsize=MAX_PENDING
        )
        self._builder: threading.Thread | None = None

    # -- snapshots ------------------------------------------------------------------------

    def _stamp(self) -> tuple[int, int, int] | None:
        if self._meta is None:
            return None
        try:
            st = os.stat(self._meta)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def invalidate(self) -> None:
        """This process committed: the next request starts a new snapshot."""
        with self._lock:
            self._snapshot = None

    def _current(self) -> _Snapshot:
        stamp = self._stamp()
        with self._lock:
            snap = self._snapshot
            if snap is not None and snap.stamp == stamp:
                return snap
        # A commit (another process's, or this one's): read meta.json now, not when the reader's
        # watcher would, so the snapshot's searcher is at least as new as `stamp`.
        self._index.reload()
        fresh = _Snapshot(self._index.searcher(), stamp)
        with self._lock:
            self._snapshot = fresh
        return fresh

    def _admitted(self, snap: _Snapshot, key: object) -> bool:
        with self._lock:
            if len(snap.requests) > MAX_REMEMBERED:
                snap.requests.clear()  # a long-lived snapshot asked for very many terms
            n = snap.requests.get(key, 0) + 1
            snap.requests[key] = n
        return n >= self.admit_after

    # -- columns --------------------------------------------------------------------------

    def _build_base(self, searcher: tantivy.Searcher) -> _Base:
        n = searcher.num_docs
        hits = searcher.search(tantivy.Query.all_query(), limit=max(n, 1), count=False).hits
        ends = [0] * searcher.num_segments
        for _score, a in hits:
            if a.doc >= ends[a.segment_ord]:
                ends[a.segment_ord] = a.doc + 1
        offsets = np.zeros(len(ends), np.int64)
        if ends:
            offsets[1:] = np.cumsum(ends)[:-1]
        size = int(sum(ends))
        addresses: list[tantivy.DocAddress] = [None] * size  # type: ignore[list-item]
        for _score, a in hits:
            addresses[int(offsets[a.segment_ord]) + a.doc] = a
        return _Base(addresses, offsets, size)

    def _hits(
        self, searcher: tantivy.Searcher, base: _Base, query: tantivy.Query, upper: int
    ) -> tuple[np.ndarray, np.ndarray]:
        if upper <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        hits = searcher.search(query, limit=upper, count=False).hits
        offsets = base.offsets
        where = np.fromiter((offsets[a.segment_ord] + a.doc for _s, a in hits), np.int64, len(hits))
        scores = np.fromiter((s for s, _a in hits), np.float32, len(hits))
        return where, scores

    def _cached(self, snap: _Snapshot, key: object) -> object | None:
        with self._lock:
            value = snap.columns.get(key)
            if value is not None:
                snap.columns.move_to_end(key)
            return value

    def _keep(self, snap: _Snapshot, key: object, value: object) -> None:
        with self._lock:
            if key in snap.columns:
                return
            snap.columns[key] = value
            snap.bytes += _nbytes(value)
            while snap.bytes > self.budget_bytes and len(snap.columns) > 1:
                _k, old = snap.columns.popitem(last=False)
                snap.bytes -= _nbytes(old)
                snap.evicted += 1

    def _score_column(
        self, snap: _Snapshot, base: _Base, name: str, term: str, boost: float
    ) -> tuple | np.ndarray:
        """The term's BM25 scores in `name`, boosted as its field's clause is: dense, or
        (indexes, scores) when sparse."""
        key = ("score", name, term, boost)
        col = self._cached(snap, key)
        if col is None:
            query = tantivy.Query.term_query(self._schema, name, term)
            if boost != 1.0:
                query = tantivy.Query.boost_query(query, boost)
            where, scores = self._hits(
                snap.searcher, base, query, snap.searcher.doc_freq(name, term)
            )
            if len(where) <= SPARSE_SHARE * base.size:
                col = (where, scores)
            else:
                col = np.zeros(base.size, np.float32)
                col[where] = scores
            self._keep(snap, key, col)
        return col  # type: ignore[return-value]

    def _value_bits(
        self, snap: _Snapshot, base: _Base, name: str, value: str, keep: bool = True
    ) -> np.ndarray:
        """The documents with `value` in the raw field `name`, as bits (see `_bits`)."""
        key = ("bits", name, value)
        bits = self._cached(snap, key)
        if bits is None:
            query = tantivy.Query.term_query(self._schema, name, value)
            where, _ = self._hits(snap.searcher, base, query, snap.searcher.doc_freq(name, value))
            mask = np.zeros(base.size, bool)
            mask[where] = True
            bits = _bits(mask)
            if keep:
                self._keep(snap, key, bits)
        return bits  # type: ignore[return-value]

    def _facet_values(
        self, snap: _Snapshot, base: _Base, name: str
    ) -> tuple[list[str], np.ndarray] | None:
        """A facet field's values (those of tantivy's terms aggregation over every document)
        and their documents' bits, one row a value, counted in one pass per request."""
        key = ("facet", name)
        values = self._cached(snap, key)
        if values is None:
            agg = snap.searcher.aggregate(
                tantivy.Query.all_query(), {"k": {"terms": {"field": name, "size": 10000}}}
            )
            buckets = agg.get("k", {}).get("buckets", [])
            keys = [str(b["key"]) for b in buckets]
            many = len(keys) >= MAX_FACET_VALUES  # tantivy answers (see below): no rows
            # The rows are the matrix's own (a filter's value keeps its own bits when asked).
            rows = [] if many else [self._value_bits(snap, base, name, k, keep=False) for k in keys]
            matrix = np.stack(rows) if rows else np.zeros((0, _words(base.size)), np.uint64)
            values = (keys, matrix)
            self._keep(snap, key, values)
        keys, matrix = values  # type: ignore[misc]
        if len(keys) >= MAX_FACET_VALUES:
            return None  # as many values as one aggregation lists: maybe more, tantivy answers
        return keys, matrix

    # -- answers --------------------------------------------------------------------------

    def answer(self, req: ColumnRequest) -> tuple[tantivy.Searcher, ColumnAnswer] | None:
        """The answer and the searcher whose addresses it holds, or None (tantivy answers).

        Never waits for a column: a request whose columns are not all held goes to tantivy,
        and (from its terms' `admit_after`-th request on) has them built in the background."""
        if not req.terms or len(req.terms) > MAX_TERMS or self.budget_bytes <= 0:
            return None
        snap = self._current()
        if req.fuzzy and any(
            snap.searcher.doc_freq(f, t) == 0 for f, _b in req.fields for t in req.terms
        ):
            return None  # tantivy adds fuzzy clauses for the unknown word
        wanted = _keys(req)
        admitted = all([self._admitted(snap, k) for k in wanted])  # every key counts
        with self._lock:
            base = snap.base
            ready = base is not None and all(k in snap.columns for k in wanted)
            for k in wanted if ready else ():
                snap.columns.move_to_end(k)
        if not ready:
            if admitted:
                self._schedule(snap, req)
            return None
        assert base is not None
        answer = self._answer(snap, base, req)
        return None if answer is None else (snap.searcher, answer)

    # -- the builder ----------------------------------------------------------------------

    def _schedule(self, snap: _Snapshot, req: ColumnRequest) -> None:
        key = (req.terms, req.fields, req.filters, req.facets)
        with self._lock:
            if key in snap.pending:
                return
            snap.pending.add(key)
            if self._builder is None or not self._builder.is_alive():
                self._builder = threading.Thread(
                    target=self._build_forever, name="keyword-columns", daemon=True
                )
                self._builder.start()
        try:
            self._jobs.put_nowait((snap, req, key))
        except queue.Full:
            with self._lock:
                snap.pending.discard(key)

    def _build_forever(self) -> None:
        # At the requests' own priority: under a steady load a build at a lower one waited for
        # seconds while tantivy answered its requests at 4x the CPU (bench.search at 100k).
        while True:
            snap, req, key = self._jobs.get()
            try:
                if snap is self._snapshot:  # a commit since makes these columns useless
                    self._prepare(snap, req)
            except Exception as exc:  # tantivy keeps answering these requests
                log.warning("keyword_columns.build_failed", error=repr(exc))
            finally:
                with self._lock:
                    snap.pending.discard(key)
                self._jobs.task_done()

    def _prepare(self, snap: _Snapshot, req: ColumnRequest) -> None:
        with self._lock:
            base = snap.base
        if base is None:
            base = self._build_base(snap.searcher)
            with self._lock:
                snap.base = snap.base or base
                base = snap.base
        for name, boost in req.fields:
            for term in req.terms:
                self._score_column(snap, base, name, term, boost)
        for name, values in req.filters:
            for value in values:
                self._value_bits(snap, base, f"f_{name}", value)
        for name in req.facets:
            self._facet_values(snap, base, f"f_{name}")

    def wait_idle(self) -> None:
        """Return once every scheduled build has ended (tests, benchmarks)."""
        self._jobs.join()

    def _answer(self, snap: _Snapshot, base: _Base, req: ColumnRequest) -> ColumnAnswer | None:
        size = base.size
        best: np.ndarray | None = None
        for name, boost in req.fields:
            total = np.zeros(size, np.float32)
            for term in req.terms:  # summed in clause order, as tantivy's union sums them
                col = self._score_column(snap, base, name, term, boost)
                if isinstance(col, tuple):
                    where, scores = col
                    total[where] += scores
                else:
                    total += col
            best = total if best is None else np.maximum(best, total, out=best)
        assert best is not None
        matched = _bits(best > 0)
        filter_bits = {
            name: _any_of([self._value_bits(snap, base, f"f_{name}", v) for v in values])
            for name, values in req.filters
        }
        mask = _all_of([matched, *filter_bits.values()])
        facets: dict[str, list[tuple[str, int]]] = {}
        for name in req.facets:
            values = self._facet_values(snap, base, f"f_{name}")
            if values is None:
                return None
            keys, matrix = values
            # Disjunctive: a facet counts under every filter but its own.
            scope = (
                _all_of([matched, *(b for n, b in filter_bits.items() if n != name)])
                if name in filter_bits
                else mask
            )
            counts = np.bitwise_count(matrix & scope).sum(axis=1).tolist()
            buckets = [(k, c) for k, c in zip(keys, counts, strict=True) if c]
            # tantivy's terms aggregation: by count, most first, then by key.
            buckets.sort(key=lambda kc: (-kc[1], kc[0]))
            facets[name] = buckets
        return ColumnAnswer(
            ranked=self._ranked(base, best, mask, req.window),
            total=int(np.bitwise_count(mask).sum()),
            facets=facets,
        )

    @staticmethod
    def _ranked(
        base: _Base, best: np.ndarray, mask: np.ndarray, window: int
    ) -> list[tuple[float, tantivy.DocAddress]]:
        """The best `window` matches, by score then by lower address (tantivy's order)."""
        if window <= 0:
            return []
        matched = np.unpackbits(mask.view(np.uint8), count=base.size).view(bool)
        scores = best * matched  # 0 for a document that does not match; a match scores > 0
        # A threshold that at least `window` matches reach, from every 16th document: then
        # only the few documents above it are sorted, not every match.
        sample = scores[::SAMPLE_STRIDE]
        if np.count_nonzero(sample) >= window:
            threshold = np.partition(sample, len(sample) - window)[len(sample) - window]
            where = np.flatnonzero(scores >= threshold)
        else:
            where = np.flatnonzero(matched)
        top = scores[where]
        order = np.lexsort((where, -top))[:window]
        return [(float(top[i]), base.addresses[where[i]]) for i in order]


def _keys(req: ColumnRequest) -> list[object]:
    """The cache keys of what a request's answer reads."""
    keys: list[object] = [("score", f, t, b) for f, b in req.fields for t in req.terms]
    keys += [("bits", f"f_{n}", v) for n, vs in req.filters for v in vs]
    keys += [("facet", f"f_{n}") for n in req.facets]
    return keys


def _words(size: int) -> int:
    return (size + 63) // 64


def _bits(mask: np.ndarray) -> np.ndarray:
    """A boolean vector as 64-bit words (AND, OR and popcount a word at a time)."""
    packed = np.packbits(mask)
    padded = np.zeros(_words(len(mask)) * 8, np.uint8)
    padded[: len(packed)] = packed
    return padded.view(np.uint64)


def _any_of(bits: list[np.ndarray]) -> np.ndarray:
    out = bits[0].copy()
    for b in bits[1:]:
        np.bitwise_or(out, b, out=out)
    return out


def _all_of(bits: list[np.ndarray]) -> np.ndarray:
    out = bits[0].copy()
    for b in bits[1:]:
        np.bitwise_and(out, b, out=out)
    return out


def _nbytes(value: object) -> int:
    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, tuple) and isinstance(value[0], list):  # a facet's keys and bits
        return value[1].nbytes + 64 * len(value[0])
    return sum(v.nbytes for v in value)  # type: ignore[union-attr]

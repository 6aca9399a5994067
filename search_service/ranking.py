"""The rankings behind SearchResources and SearchContentFiles: keyword, vector and hybrid.

No mode set and query text given: hybrid (BM25 + dense, fused as `hybrid.DEFAULT_FUSION`), the
best ranking the service has; a side that is down leaves the other's ranking, and the answer
names the missing side; a quoted phrase matches as a phrase (the vector side only ranks the
keyword side's matches). Explicit modes are MIT Learn's: keyword in its search mode (phrase,
best_fields, most_fields) and vector. Filters, facets, sorts and paging apply in every mode;
hybrid mode (and vector mode with a sort) ranks, sorts and pages a fixed window of candidates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from learnflow.stores.keyword import KeywordQuery, engine_text, is_quoted
from search_service import query as rq
from search_service.budget import encode, within_budget
from search_service.errors import BackendUnavailable
from search_service.hybrid import (
    CANDIDATES,
    SORT_CANDIDATES,
    Ranked,
    SideResult,
    hybrid_search,
    sort_ranked,
)
from search_service.pb import search_pb2


@dataclass
class Ranking:
    hits: Ranked  # the page: (id, score, document)
    total: int
    facets: dict[str, list[tuple[str, int]]]
    mode: int = search_pb2.SEARCH_MODE_KEYWORD
    unavailable: list[str] = field(default_factory=list)


VECTOR_TIE_SLACK = 20
MAX_TIE_WINDOW = rq.MAX_WINDOW + VECTOR_TIE_SLACK  # the deepest page, plus slack


def _tie_runs_past(ranking: Ranked, end: int, fetched: int) -> bool:
    """The engine filled the `fetched` it was asked for and its last hit ties the page's last
    (by the rounded score the pages break ties on): the tie may go on beyond what came back."""
    if len(ranking) < fetched or len(ranking) < end or end == 0:
        return False
    return round(ranking[-1][1], 6) == round(ranking[end - 1][1], 6)


def _is_down(exc: BaseException) -> bool:
    return isinstance(exc, BackendUnavailable)


def _side(res: Any) -> SideResult:
    return SideResult([(h.id, h.score, h.document) for h in res.hits], res.total, res.facets)


async def rank_resources(
    stores: Any,
    context,
    request,
    filters: dict[str, list[str]],
    offset: int,
    limit: int,
    vectors: Any = None,
) -> Ranking:
    """`vectors` (a `ServingVectors`): the promoted encoder and its collection, which the
    vector side encodes with and reads; None: the configured ones (`stores`)."""
    mode = rq.effective_mode(request)
    facets = list(request.facets)
    encoder = vectors.encoder if vectors is not None else stores.encoder
    store = vectors.resources if vectors is not None else stores.vector

    async def keyword(kq: KeywordQuery) -> SideResult:
        return _side(await within_budget(context, stores.keyword.search(kq), "keyword index"))

    async def vector(start: int, size: int, documents: int | None = None) -> SideResult:
        encoded = await encode(context, encoder, request.query)
        res = await within_budget(
            context,
            store.search(
                encoded, filters, limit=size, offset=start, facets=facets, documents=documents
            ),
            "vector store",
        )
        return _side(res)

    if mode == search_pb2.SEARCH_MODE_KEYWORD:
        res = await keyword(rq.keyword_query(request, filters, offset, limit))
        return Ranking(res.ranking, res.total, res.facets, mode)
    if mode == search_pb2.SEARCH_MODE_VECTOR and not request.sort:  # the store counts
        # Equal scores (duplicate texts) come back from the engine in no fixed order, and which
        # of a tie falls inside a page depends on the limit asked for: ask for the page plus some
        # slack from the top and break ties by id, so consecutive pages join up into one ranking.
        # Only the page's hits (and ties at its end) need their documents.
        end = offset + limit
        size = end + VECTOR_TIE_SLACK
        res = await vector(0, size, documents=end)
        while _tie_runs_past(res.ranking, end, size) and size < MAX_TIE_WINDOW:
            # A tie wider than the slack (duplicates, or an encoder that scores every unrelated
            # text 0) crosses the page's end: which of its members the engine returns depends
            # on the limit, so widen until the whole tie is in; the page's documents after.
            size = min(size * 4, MAX_TIE_WINDOW)
            res = await vector(0, size, documents=0)
        ranking = sorted(res.ranking, key=lambda hit: (-round(hit[1], 6), str(hit[0])))
        page = await _fill(context, store, ranking[offset:end])
        return Ranking(page, res.total, res.facets, mode)
    depth = SORT_CANDIDATES if request.sort else max(CANDIDATES, limit)
    unavailable: list[str] = []
    if mode == search_pb2.SEARCH_MODE_VECTOR:
        res = await vector(0, depth)
    else:
        kq = rq.hybrid_keyword_query(request, filters, depth)
        fused = await hybrid_search(
            lambda: keyword(kq),
            # Unsorted, the vector side's candidates need no documents: the page's come from
            # the keyword side's hits or, for the rest, are loaded after fusion (`_fill`).
            lambda: vector(0, depth, documents=None if request.sort else 0),
            rq.fusion(request),
            _is_down,
            keyword_matches_only=is_quoted(engine_text(request.query)),
        )
        res = SideResult(fused.ranking, fused.total, fused.facets)
        unavailable = fused.unavailable
        if unavailable:  # the side that answered
            mode = (
                search_pb2.SEARCH_MODE_KEYWORD
                if unavailable == ["vector"]
                else search_pb2.SEARCH_MODE_VECTOR
            )
    # Paged from the candidates: the total is what can be paged through.
    ranking = sort_ranked(res.ranking, request.sort) if request.sort else res.ranking
    page = await _fill(context, store, ranking[offset : offset + limit])
    return Ranking(page, len(ranking), res.facets, mode, unavailable)


async def _fill(context, store: Any, page: Ranked) -> Ranked:
    """The page with the documents of hits that only the vector side found (searched without
    them: turning 30 payloads into Python cost more than the search)."""
    missing = [key for key, _s, doc in page if not doc]
    if not missing:
        return page
    docs = await within_budget(context, store.documents(missing), "vector store")
    return [(key, s, doc or docs.get(key, {})) for key, s, doc in page]


async def rank_content_files(
    content: Any,
    encoder: Any,
    context,
    request,
    filters: dict[str, list[str]],
    offset: int,
    limit: int,
) -> Ranking:
    """Content files: keyword (no mode, as MIT Learn's content_file_search), vector (chunks) or
    hybrid, where a file's best chunk stands for it and carries the chunk text."""
    mode = request.mode or search_pb2.SEARCH_MODE_KEYWORD
    index, vectors = content.keyword, content.vector
    facets = list(request.facets)
    if mode == search_pb2.SEARCH_MODE_KEYWORD:
        kq = KeywordQuery(
            text=request.query,
            filters=filters,
            facets=facets,
            sort=request.sort or None,
            offset=offset,
            limit=limit,
            search_mode="best_fields",
        )
        res = _side(await within_budget(context, index.search(kq), "content index"))
        return Ranking(res.ranking, res.total, res.facets, mode)
    if mode == search_pb2.SEARCH_MODE_VECTOR:
        encoded = await encode(context, encoder, request.query)
        vres = await within_budget(
            context,
            vectors.search(encoded, filters, limit=limit, offset=offset, facets=facets),
            "content vector store",
        )
        res = _side(vres)
        return Ranking(res.ranking, res.total, res.facets, mode)
    depth = max(CANDIDATES, limit)
    kq = KeywordQuery(
        text=request.query, filters=filters, facets=facets, limit=depth, search_mode="best_fields"
    )
    best_chunk: dict[int, dict] = {}

    async def keyword() -> SideResult:
        return _side(await within_budget(context, index.search(kq), "content index"))

    async def vector() -> SideResult:
        encoded = await encode(context, encoder, request.query)
        res = await within_budget(
            context, vectors.search(encoded, filters, limit=depth), "content vector store"
        )
        ranking = []
        for h in res.hits:
            if h.id not in best_chunk:
                best_chunk[h.id] = h.document
                ranking.append((h.id, h.score, h.document))
        return SideResult(ranking, res.total)

    fused = await hybrid_search(keyword, vector, rq.fusion(request), _is_down)
    page = [
        (fid, score, {**doc, **best_chunk.get(fid, {})})
        for fid, score, doc in fused.ranking[offset : offset + limit]
    ]
    return Ranking(page, fused.total, fused.facets, mode, fused.unavailable)

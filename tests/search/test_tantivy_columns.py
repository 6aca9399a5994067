"""The hot-term columns answer exactly as tantivy does (learnflow/stores/tantivy_columns.py).

Two index objects over one directory: `tantivy_only` (no column budget: tantivy answers all) and
`columns` (a term's column is built on its first request). Every request is sent to both and the
answers must be equal: the same hits with the same scores in the same order, the same total,
the same facet buckets in the same order. The corpus is bench.search's, whose 56-word vocabulary
makes ties common, over several segments with updated and deleted documents.
"""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime

import pytest

from bench.search import FACETS, QUERIES, WORDS, generate
from learnflow.search_doc import to_content_file_document
from learnflow.stores import tantivy_columns, tantivy_index
from learnflow.stores.keyword import KeywordQuery, KeywordResults
from learnflow.stores.tantivy_index import TantivyContentFileIndex, TantivyKeywordIndex


class _FrozenClock(datetime):
    @classmethod
    def now(cls, tz=None):
        return datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _one_now(monkeypatch):
    """Score shaping decays from now: both answers of a pair are shaped at the same instant."""
    monkeypatch.setattr(tantivy_index, "datetime", _FrozenClock)


def _answer(res: KeywordResults) -> tuple:
    return res.total, [(h.id, h.score) for h in res.hits], res.facets


class _Counted:
    """Counts the requests the columns answered (not None)."""

    def __init__(self, columns):
        self.answered = 0
        self._answer = columns.answer
        columns.answer = self

    def __call__(self, request):
        got = self._answer(request)
        self.answered += got is not None
        return got


def _warm(idx: TantivyKeywordIndex, q: KeywordQuery) -> None:
    """Ask once (tantivy answers; the columns are built in the background) and wait for them."""
    idx.search_sync(q)
    idx.columns.wait_idle()


@pytest.fixture(scope="module")
def indexes(tmp_path_factory):
    path = tmp_path_factory.mktemp("columns")
    tantivy_only = TantivyKeywordIndex(path, column_cache_bytes=0)
    docs = generate(2400)
    for i in range(0, 2000, 500):  # four segments
        tantivy_only._upsert_sync(docs[i : i + 500])
    changed = [dict(d, title=f"{d['title']} quantum quantum") for d in docs[100:160]]
    tantivy_only._upsert_sync(changed + docs[2000:])  # updates: deletes in older segments
    tantivy_only._delete_sync([d["id"] for d in docs[600:650]])
    columns = TantivyKeywordIndex(path)
    columns.columns.admit_after = 1
    return tantivy_only, columns


def _requests() -> list[KeywordQuery]:
    rng = random.Random(11)
    texts = list(QUERIES)
    texts += [" ".join(rng.sample(WORDS, rng.randint(1, 3))) for _ in range(12)]
    texts += ["Machine's LEARNING!", "the learning of machines", "quantum quantum physics"]
    filters = [
        {},
        {"free": ["true"]},
        {"free": ["true"], "delivery": ["online"]},
        {"delivery": ["Online", "in_person"], "resource_type": ["course"]},
    ]
    facet_sets = [[], FACETS, ["delivery", "resource_type", "free"]]
    paging = [(10, 0), (5, 7), (0, 0), (3, 40)]
    out = []
    for text, f, facets, (limit, offset) in itertools.product(texts, filters, facet_sets, paging):
        for shaped in (True, False):
            shape = {} if shaped else {"yearly_decay_percent": 0, "max_incompleteness_penalty": 0}
            out.append(
                KeywordQuery(
                    text=text,
                    filters=f,
                    facets=facets,
                    limit=limit,
                    offset=offset,
                    search_mode="best_fields",
                    **shape,
                )
            )
    return out


def test_columns_answer_exactly_as_tantivy(indexes) -> None:
    tantivy_only, columns = indexes
    counted = _Counted(columns.columns)
    requests = _requests()
    answered = 0
    for q in requests:
        _warm(columns, q)
        before = counted.answered
        assert _answer(columns.search_sync(q)) == _answer(tantivy_only.search_sync(q)), q
        answered += counted.answered - before
    assert answered == len(requests)  # every request here is one the columns take


def test_requests_the_columns_leave_to_tantivy_are_still_answered(indexes) -> None:
    tantivy_only, columns = indexes
    counted = _Counted(columns.columns)
    others = [
        KeywordQuery(text="machine learning", search_mode="most_fields", facets=FACETS),
        KeywordQuery(text="machine learning", search_mode="phrase", facets=FACETS),
        KeywordQuery(text='"machine learning"', search_mode="best_fields"),
        KeywordQuery(text="data science python neural", search_mode="best_fields"),
        KeywordQuery(text="machine learning", search_mode="best_fields", sort="-id"),
        KeywordQuery(text="machnie learning", search_mode="best_fields", fuzzy=True),
        KeywordQuery(text="", search_mode="best_fields", facets=FACETS),
        KeywordQuery(title_prefix="mach", search_mode="best_fields"),
    ]
    for q in others:
        _warm(columns, q)
        assert _answer(columns.search_sync(q)) == _answer(tantivy_only.search_sync(q)), q
    assert counted.answered == 0


def _by_tantivy(idx: TantivyKeywordIndex, q: KeywordQuery) -> tuple:
    budget, idx.columns.budget_bytes = idx.columns.budget_bytes, 0
    try:
        return _answer(idx.search_sync(q))
    finally:
        idx.columns.budget_bytes = budget


def _from_columns(idx: TantivyKeywordIndex, counted: _Counted, q: KeywordQuery) -> KeywordResults:
    _warm(idx, q)
    before = counted.answered
    res = idx.search_sync(q)
    assert counted.answered == before + 1, "the columns did not answer"
    return res


def test_a_commit_in_another_process_starts_new_columns(tmp_path) -> None:
    """Another index object (as the worker's) commits: a new meta.json, read at once."""
    docs = generate(300)
    writer = TantivyKeywordIndex(tmp_path, column_cache_bytes=0)
    writer._upsert_sync(docs[:200])
    reader = TantivyKeywordIndex(tmp_path)
    reader.columns.admit_after = 1
    counted = _Counted(reader.columns)
    q = KeywordQuery(text="quantum", search_mode="best_fields", facets=FACETS, limit=300)
    before = _from_columns(reader, counted, q)
    assert _answer(before) == _answer(writer.search_sync(q))
    writer._upsert_sync(docs[200:])
    after = _from_columns(reader, counted, q)
    assert after.total > before.total and _answer(after) == _answer(writer.search_sync(q))
    writer._delete_sync([h.id for h in after.hits[:5]])
    fewer = _from_columns(reader, counted, q)
    assert fewer.total == after.total - 5 and _answer(fewer) == _answer(writer.search_sync(q))


def test_a_commit_in_this_process_starts_new_columns() -> None:
    docs = generate(300)
    idx = TantivyKeywordIndex()  # in memory: no meta.json, the writes themselves invalidate
    idx.columns.admit_after = 1
    counted = _Counted(idx.columns)
    idx._upsert_sync(docs[:200])
    q = KeywordQuery(text="quantum", search_mode="best_fields", facets=FACETS, limit=300)
    before = _from_columns(idx, counted, q)
    idx._upsert_sync(docs[200:])
    after = _from_columns(idx, counted, q)
    assert after.total > before.total and _answer(after) == _by_tantivy(idx, q)
    idx._delete_sync([h.id for h in after.hits[:5]])
    fewer = _from_columns(idx, counted, q)
    assert fewer.total == after.total - 5 and _answer(fewer) == _by_tantivy(idx, q)


def test_columns_are_built_in_the_background_after_a_terms_second_request(tmp_path) -> None:
    idx = TantivyKeywordIndex(tmp_path)
    idx._upsert_sync(generate(200))
    counted = _Counted(idx.columns)
    q = KeywordQuery(text="quantum physics", search_mode="best_fields", facets=FACETS)
    first = idx.search_sync(q)
    idx.columns.wait_idle()
    assert idx.columns._snapshot.columns == {}  # a term asked once gets no column
    second = idx.search_sync(q)  # tantivy answers, and the columns are built meanwhile
    assert counted.answered == 0
    idx.columns.wait_idle()
    third = idx.search_sync(q)
    assert counted.answered == 1
    assert _answer(first) == _answer(second) == _answer(third)


def test_a_small_budget_evicts_and_still_answers_exactly(tmp_path) -> None:
    docs = generate(400)
    tantivy_only = TantivyKeywordIndex(tmp_path, column_cache_bytes=0)
    tantivy_only._upsert_sync(docs)
    budget = 20_000  # one request's columns (~7 kB here), not every query's
    small = TantivyKeywordIndex(tmp_path, column_cache_bytes=budget)
    small.columns.admit_after = 1
    counted = _Counted(small.columns)
    for text in QUERIES:
        q = KeywordQuery(text=text, search_mode="best_fields", filters={"free": ["true"]},
                         facets=FACETS)  # fmt: skip
        assert _answer(_from_columns(small, counted, q)) == _answer(tantivy_only.search_sync(q))
    snapshot = small.columns._snapshot
    assert snapshot is not None and snapshot.evicted > 0 and 0 < snapshot.bytes <= budget


def test_the_content_file_index_answers_alike(tmp_path) -> None:
    """The content-file index (its own fields, boosts and filters) through the same columns."""
    rng = random.Random(5)
    platforms, extensions = ["ocw", "mitxonline", "edx"], ["pdf", "html", "srt"]

    def content_file(i: int) -> dict:
        row = {"id": i, "key": f"k/{i}", "resource_id": i % 40, "run_id": f"r{i % 7}",
               "title": " ".join(rng.sample(WORDS, 3)), "file_extension": rng.choice(extensions),
               "content": " ".join(rng.choices(WORDS, k=rng.randint(20, 200))),
               "platform": rng.choice(platforms), "offered_by": "ocw",
               "resource_readable_id": f"res-{i % 40}", "data": {}}  # fmt: skip
        return {**to_content_file_document(row), "_content": row["content"]}

    files = [content_file(i) for i in range(1, 601)]
    tantivy_only = TantivyContentFileIndex(tmp_path, column_cache_bytes=0)
    tantivy_only._upsert_sync(files[:300])
    tantivy_only._upsert_sync(files[300:])
    columns = TantivyContentFileIndex(tmp_path)
    columns.columns.admit_after = 1
    counted = _Counted(columns.columns)
    for text in QUERIES:
        for filters in ({}, {"file_extension": [".pdf", ".srt"]}):
            q = KeywordQuery(text=text, filters=filters, facets=["platform", "file_extension"],
                             search_mode="best_fields", limit=20)  # fmt: skip
            got = _from_columns(columns, counted, q)
            assert got.total > 0 and _answer(got) == _answer(tantivy_only.search_sync(q)), q


def test_a_facet_with_as_many_values_as_an_aggregation_lists_is_tantivys(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(tantivy_columns, "MAX_FACET_VALUES", 3)  # platform has more here
    idx = TantivyKeywordIndex(tmp_path)
    idx._upsert_sync(generate(300))
    idx.columns.admit_after = 1
    counted = _Counted(idx.columns)
    q = KeywordQuery(text="quantum physics", search_mode="best_fields", facets=["platform"])
    _warm(idx, q)
    got = idx.search_sync(q)
    assert counted.answered == 0 and len(got.facets["platform"]) > 3
    assert _answer(got) == _by_tantivy(idx, q)

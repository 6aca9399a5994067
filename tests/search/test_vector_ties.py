"""Vector mode pages one ranking whatever the page size, even when a tie is wider than the
slack it fetches past the page (duplicate texts, or an encoder that scores every unrelated text
0): ties break by id, and the whole tie is fetched before a page is cut from it."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from learnflow.search_doc import filter_values
from learnflow.stores.vector import EdgeVectorStore, VectorPoint, payload_for
from search_service.pb import search_pb2 as pb
from search_service.ranking import VECTOR_TIE_SLACK, rank_resources

TIED = 3 * VECTOR_TIE_SLACK  # wider than the slack


class _Encoder:
    def encode(self, texts: list[str]) -> np.ndarray:
        return np.array([[1.0, 0.0, 0.0, 0.0]] * len(texts), dtype=np.float32)


class _NoDeadline:
    def time_remaining(self):
        return None


@pytest.fixture
async def stores(tmp_path):
    store = EdgeVectorStore(path=str(tmp_path), collection="ties.resources")
    await store.ensure_collection(4)
    points = []
    for i in range(1, TIED + 5):
        doc = {"id": i, "title": f"t{i}", "resource_type": "course", "platform": {"code": "ocw"},
               "offered_by": None, "topics": [], "departments": []}  # fmt: skip
        # ids 1-4 lean towards the query by different amounts; the rest are orthogonal: score 0
        vector = np.array([5.0 - i, 1.0, 0, 0]) if i <= 4 else np.array([0.0, 1.0, 0, 0])
        points.append(VectorPoint(f"k{i}", vector, payload_for(doc, filter_values(doc))))
    await store.upsert(points)
    yield SimpleNamespace(vector=store, encoder=_Encoder(), keyword=None)
    await store.close()


async def _ids(stores, offset: int, limit: int) -> list[int]:
    request = pb.SearchResourcesRequest(query="anything", mode=pb.SEARCH_MODE_VECTOR)
    ranking = await rank_resources(stores, _NoDeadline(), request, {}, offset, limit)
    assert all(doc.get("title") == f"t{key}" for key, _s, doc in ranking.hits)
    assert ranking.total == TIED + 4
    return [key for key, _s, _doc in ranking.hits]


async def test_pages_of_any_size_join_into_one_ranking_across_a_wide_tie(stores):
    whole = await _ids(stores, 0, TIED + 4)
    # the four leaning ones first, then the tie by id (as text, the way pages break ties)
    assert whole == [1, 2, 3, 4, *sorted(range(5, TIED + 5), key=str)]
    for size in (2, 7):
        paged = []
        for offset in range(0, TIED + 4, size):
            paged += await _ids(stores, offset, size)
        assert paged == whole, size

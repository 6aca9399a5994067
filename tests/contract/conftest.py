"""Both keyword backends, loaded with the same contract corpus once per session.

`tantivy` is the embedded index in a temp directory; `opensearch` is the OpenSearch backend on a
REAL OpenSearch 2.19.6 node started by the harness (or TEST_OPENSEARCH_URL), with refresh after
every write so tests read their writes. A node that cannot start fails the tests, never skips.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from learnflow.stores.opensearch import OpenSearchKeywordIndex
from learnflow.stores.tantivy_index import TantivyKeywordIndex
from tests.contract.corpus import corpus_documents


@pytest.fixture(scope="session")
def contract_opensearch_url(opensearch_url: str) -> str:
    """The session's OpenSearch node (root conftest), shared with every other suite."""
    return opensearch_url


@pytest.fixture(scope="session")
def corpus() -> list[dict[str, Any]]:
    docs = corpus_documents()
    assert len(docs) > 60
    return docs


@pytest.fixture(scope="session")
async def tantivy_backend(corpus, tmp_path_factory) -> AsyncIterator[TantivyKeywordIndex]:
    index = TantivyKeywordIndex(tmp_path_factory.mktemp("contract-tantivy"))
    await index.upsert(corpus)
    yield index
    await index.close()


@pytest.fixture(scope="session")
async def opensearch_backend(
    corpus, contract_opensearch_url
) -> AsyncIterator[OpenSearchKeywordIndex]:
    index = OpenSearchKeywordIndex(
        contract_opensearch_url, f"contract_{uuid.uuid4().hex[:8]}", refresh=True
    )
    await index.upsert(corpus)
    yield index
    await index.drop_all()
    await index.close()


@pytest.fixture(params=["tantivy", pytest.param("opensearch", marks=pytest.mark.opensearch)])
def backend(request) -> Any:
    """Each contract test that takes `backend` runs once per engine."""
    return request.getfixturevalue(f"{request.param}_backend")


@pytest.fixture
def both(tantivy_backend, opensearch_backend) -> tuple[TantivyKeywordIndex, OpenSearchKeywordIndex]:
    return tantivy_backend, opensearch_backend

"""Session fixtures that start a REAL OpenSearch 2.19.6 node and a REAL Tika 3.3.1 server.

Both come from Maven Central via learnflow.harness (cached under ~/.cache/learnflow or
$LEARNFLOW_CACHE_DIR). A failure to start is a test failure (never a skip), in CI and out.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from opensearchpy import OpenSearch

from learnflow.harness.opensearch import OpenSearchNode
from learnflow.harness.tika import TikaServer, configure_tika_client


def _start_or_fail(what: str, start) -> None:
    try:
        start()
    except Exception as exc:
        ci = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
        pytest.fail(f"could not start {what} (CI={ci}): {exc}", pytrace=False)


@pytest.fixture(scope="session")
def opensearch_node() -> Iterator[OpenSearchNode]:
    node = OpenSearchNode()
    _start_or_fail("OpenSearch", node.start)
    yield node
    node.stop()


@pytest.fixture(scope="session")
def opensearch_url(opensearch_node: OpenSearchNode) -> str:
    assert opensearch_node.url
    return opensearch_node.url


@pytest.fixture(scope="session")
def opensearch_client(opensearch_url: str) -> Iterator[OpenSearch]:
    client = OpenSearch(hosts=[opensearch_url], timeout=60)
    yield client
    client.close()


@pytest.fixture
def index_name(opensearch_client: OpenSearch) -> Iterator[str]:
    """A unique index name; the index (if created) is deleted afterwards."""
    name = f"learnflow_test_{uuid.uuid4().hex[:10]}"
    yield name
    opensearch_client.indices.delete(index=name, ignore_unavailable=True)


@pytest.fixture(scope="session")
def tika_server() -> Iterator[TikaServer]:
    srv = TikaServer()
    _start_or_fail("Tika", srv.start)
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def tika_url(tika_server: TikaServer) -> Iterator[str]:
    """Base URL of the Tika server; also points the Python `tika` client at it (client-only).

    The env vars it sets are restored at the end of the session.
    """
    assert tika_server.url
    saved = {k: os.environ.get(k) for k in tika_server.client_env()}
    configure_tika_client(tika_server.url)
    yield tika_server.url
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value

"""Session fixtures that start a REAL OpenSearch 2.19.6 node and a REAL Tika 3.3.1 server.

Both come from Maven Central via devstack.harness (cached under ~/.cache/learnflow or
$LEARNFLOW_CACHE_DIR). A failure to start is a test failure (never a skip), in CI and out.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from opensearchpy import OpenSearch


@pytest.fixture
def index_name(opensearch_client: OpenSearch) -> Iterator[str]:
    """A unique index name; the index (if created) is deleted afterwards."""
    name = f"learnflow_test_{uuid.uuid4().hex[:10]}"
    yield name
    opensearch_client.indices.delete(index=name, ignore_unavailable=True)


# -- the OpenSearch keyword backend (learnflow.stores.opensearch) ----------------------


@pytest.fixture
async def keyword_index(opensearch_url: str):
    """An OpenSearchKeywordIndex under a fresh prefix, refreshing after writes; dropped after."""
    from learnflow.stores.opensearch import OpenSearchKeywordIndex

    index = OpenSearchKeywordIndex(opensearch_url, f"kw_{uuid.uuid4().hex[:10]}", refresh=True)
    await index.ensure_indexes()
    yield index
    await index.drop_all()
    await index.close()


@pytest.fixture
async def catalog_dsn(postgres_dsn: str):
    """A fresh, migrated catalog database in the session's Postgres (dropped afterwards), so
    resources written for a reindex never show up in other tests' catalog."""
    import asyncpg

    from learnflow.db.migrate import migrate

    name = f"reindex_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(postgres_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = postgres_dsn.rsplit("/", 1)[0] + f"/{name}"
    conn = await asyncpg.connect(dsn)
    await migrate(conn)
    await conn.close()
    yield dsn
    await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    await admin.close()

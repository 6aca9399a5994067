"""Fixtures of the embeddings tests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest


@pytest.fixture
async def fresh_dsn(postgres_dsn: str) -> AsyncIterator[str]:
    """An empty database of its own (never the shared app's catalog), dropped afterwards."""
    import asyncpg

    name = f"emb_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(postgres_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    yield postgres_dsn.rsplit("/", 1)[0] + f"/{name}"
    await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    await admin.close()

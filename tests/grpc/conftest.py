"""gRPC fixtures: the root `app` (workers + service on real Temporal/Postgres/embedded engines)
seeded through the real workflows, a JWKS server with our own RSA key, a local
OpenAI-compatible server, and extra service instances (auth on; LLM pointed at the fake)."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from devstack.harness.fixture_server import FixtureServer, Response
from learnflow.contracts import EmbedInput, EmbedResult, IndexInput, IndexResult, IngestSourceInput
from search_service.answers import LLMConfig
from search_service.auth import AuthConfig
from search_service.pb import search_pb2_grpc
from search_service.server import start_server
from tests.conftest import unique_id
from tests.grpc.openai_server import OpenAIServer

ISSUER = "http://127.0.0.1/realms/learn"
AUDIENCE = "learn-search"
CERTS_PATH = "/realms/learn/protocol/openid-connect/certs"

CONTENT_FILES = [
    # (key, title, extension, content type, text, published)
    ("ode/laplace.pdf", "Laplace transforms", ".pdf", "file",
     "The Laplace transform turns linear differential equations into algebra. " * 40, True),
    ("ode/phase.html", "Phase portraits", ".html", "page",
     "Phase portraits show trajectories of autonomous systems near equilibria. " * 5
     + " ".join(f"filler{i}" for i in range(900)), True),
    ("ode/draft.pdf", "Unpublished draft", ".pdf", "file",
     "This draft about eigenvalues must never be found.", False),
]  # fmt: skip


@dataclass
class Seeded:
    resource_ids: dict[str, int]  # readable_id -> id
    content_ids: dict[str, int]  # key -> id


async def _run(app, workflow: str, arg, result_type, queue: str):
    return await app.client.execute_workflow(
        workflow, arg, id=unique_id(f"test/{workflow}"), task_queue=queue, result_type=result_type
    )


@pytest.fixture(scope="session")
async def seeded(app) -> Seeded:
    """MITx Online ingested through the real workflow, plus content files written the way the
    archive pipeline writes them, then indexed and embedded by the real workflows."""
    await _run(app, "IngestSourceWorkflow", IngestSourceInput(source="mitxonline"), None, "default")
    async with app.stores.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT id, readable_id FROM learning_resource WHERE etl_source='mitxonline'"
        )
        resource_ids = {r["readable_id"]: r["id"] for r in rows}
        course = resource_ids["course-v1:MITxT+18.03.1x"]
        run = await conn.fetchrow(
            # a published run: files of an unpublished run are hidden (the catalog's run order is
            # not a contract, so pick by state, not by id)
            "SELECT id, run_id FROM learning_resource_run WHERE resource_id=$1"
            " ORDER BY published DESC, id LIMIT 1",
            course,
        )
        content_ids = {}
        for key, title, ext, ctype, text, published in CONTENT_FILES:
            content_ids[key] = await conn.fetchval(
                "INSERT INTO content_file (run_id, resource_id, key, title, url, file_type, content_type,"
                " file_extension, content, checksum, published, data)"
                " VALUES ($1,$2,$3,$4,$5,'application/pdf',$6,$7,$8,md5($8),$9,$10)"
                " ON CONFLICT (coalesce(run_id, 0), resource_id, key) DO UPDATE SET content = EXCLUDED.content,"
                " updated_on = now() RETURNING id",
                run["id"],
                course,
                key,
                title,
                f"https://example.mit.edu/{key}",
                ctype,
                ext,
                text,
                published,
                {"description": f"{title} notes"},
            )
    await _run(app, "IndexResourcesWorkflow", IndexInput(), IndexResult, "default")
    await _run(app, "EmbedResourcesWorkflow", EmbedInput(), EmbedResult, "embeddings")
    return Seeded(resource_ids=resource_ids, content_ids=content_ids)


@pytest.fixture(scope="session")
async def channel(app) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(app.grpc_address) as ch:
        yield ch


@pytest.fixture(scope="session")
def stub(channel) -> search_pb2_grpc.SearchServiceStub:
    return search_pb2_grpc.SearchServiceStub(channel)


# -- auth -------------------------------------------------------------------------------------


@dataclass
class Issuer:
    """Issues Keycloak-shaped access tokens signed by a key the JWKS server publishes."""

    key: rsa.RSAPrivateKey
    kid: str

    def token(self, **overrides) -> str:
        now = int(time.time())
        claims = {
            "exp": now + 300, "iat": now, "jti": unique_id("jti"), "iss": ISSUER,
            "aud": [AUDIENCE, "account"], "sub": "user-1", "typ": "Bearer", "azp": "learn-bff",
            "preferred_username": "learner", "realm_access": {"roles": ["default-roles-learn"]},
        }  # fmt: skip
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})


@pytest.fixture(scope="session")
def jwks_server() -> Iterator[tuple[FixtureServer, Issuer]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    issuer = Issuer(key=key, kid="test-key-1")
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": issuer.kid, "alg": "RS256", "use": "sig"})
    with FixtureServer() as server:
        server.route(CERTS_PATH, Response.json({"keys": [jwk]}))
        yield server, issuer


@pytest.fixture(scope="session")
async def auth_address(app, seeded, jwks_server) -> AsyncIterator[str]:
    server, _ = jwks_server
    running = await start_server(
        app.stores,
        auth=AuthConfig(issuer=ISSUER, audience=AUDIENCE, jwks_url=server.base_url + CERTS_PATH),
    )
    try:
        yield f"127.0.0.1:{running.port}"
    finally:
        await running.stop(grace=1.0)


@pytest.fixture(scope="session")
def issuer(jwks_server) -> Issuer:
    return jwks_server[1]


# -- answers ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def openai_server() -> Iterator[OpenAIServer]:
    with OpenAIServer() as server:
        yield server


@pytest.fixture(scope="session")
async def answer_address(app, seeded, openai_server) -> AsyncIterator[str]:
    running = await start_server(
        app.stores,
        auth=None,
        llm=LLMConfig(model="openai/local-chat", api_base=openai_server.api_base),
    )
    try:
        yield f"127.0.0.1:{running.port}"
    finally:
        await running.stop(grace=1.0)


# -- the OpenSearch configuration -------------------------------------------------------------


@dataclass
class OpenSearchService:
    """A second service whose keyword backend (resources and content files) is the real
    OpenSearch node; the vector store, catalog and LLM double are the same as the embedded run's."""

    address: str
    keyword: Any  # OpenSearchKeywordIndex
    content: Any  # OpenSearchContentFileIndex


async def index_catalog_into(app, keyword, content) -> tuple[int, int]:
    """Every published resource and visible content file of the session's catalog, written with
    the same document builders the indexing activities use; (resources, content files)."""
    from activities.search import _CONTENT_ROWS, index_content_rows
    from learnflow.models import Resource
    from learnflow.search_doc import to_search_document

    async with app.stores.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT id, data, created_on FROM learning_resource WHERE published ORDER BY id"
        )
        files = [dict(r) for r in await conn.fetch(_CONTENT_ROWS, None, None, 0, 100_000)]
    docs = [
        to_search_document(Resource.model_validate(r["data"]), r["id"], r["created_on"])
        for r in rows
    ]
    await keyword.upsert(docs)
    indexed, _gone = await index_content_rows(content, files)
    return len(docs), indexed


@contextlib.asynccontextmanager
async def opensearch_search_service(
    app, opensearch_url: str, **server_options: Any
) -> AsyncIterator[OpenSearchService]:
    """A service on fresh OpenSearch indexes holding the session's catalog as it is now."""
    import dataclasses
    import uuid

    from learnflow.stores.content_search import ContentStores, content_stores
    from learnflow.stores.opensearch import (
        OpenSearchContentFileIndex,
        OpenSearchKeywordIndex,
    )

    keyword = OpenSearchKeywordIndex(
        opensearch_url, f"learnflow_grpc_{uuid.uuid4().hex[:8]}", refresh=True
    )
    content = OpenSearchContentFileIndex(resources=keyword)
    try:
        resources, files = await index_catalog_into(app, keyword, content)
        # MITx Online's 4 published resources; the 2 published content files of CONTENT_FILES
        assert resources >= 4 and files >= 2, (resources, files)
        running = await start_server(
            dataclasses.replace(app.stores, keyword=keyword),
            auth=None,
            content=ContentStores(
                keyword=content, vector=content_stores(app.stores.settings).vector
            ),
            **server_options,
        )
        try:
            yield OpenSearchService(f"127.0.0.1:{running.port}", keyword, content)
        finally:
            await running.stop(grace=1.0)
    finally:
        await keyword.drop_all()
        await keyword.close()


@pytest.fixture(scope="session")
async def opensearch_service(
    app, seeded, opensearch_url, openai_server
) -> AsyncIterator[OpenSearchService]:
    llm = LLMConfig(model="openai/local-chat", api_base=openai_server.api_base)
    async with opensearch_search_service(
        app, opensearch_url, llm=llm, health_interval=0.5
    ) as service:
        yield service

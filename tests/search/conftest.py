"""Search fixtures: the root `app` (workers + service on real Temporal/Postgres/embedded engines)
seeded through the real workflows, a JWKS server with our own RSA key, a local OpenAI-compatible
server and extra service instances (gRPC); both keyword backends loaded with the contract corpus
(tantivy in a temp dir, OpenSearch on the session's REAL node, refresh after every write);
throwaway OpenSearch indexes and catalog databases; and the doors (issue 18) content files with
a second service on OpenSearch, plus helpers that read google.rpc details.

A service that cannot start fails the tests that need it, never skips.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from opensearchpy import OpenSearch

from devstack.harness.fixture_server import FixtureServer, Response
from learnflow.contracts import EmbedInput, EmbedResult, IndexInput, IndexResult, IngestSourceInput
from learnflow.models import Resource, Run, Topic
from learnflow.stores.opensearch import OpenSearchKeywordIndex
from learnflow.stores.tantivy_index import TantivyKeywordIndex
from search_service.answers import LLMConfig
from search_service.auth import AuthConfig
from search_service.pb import search_pb2_grpc
from search_service.server import start_server
from tests.conftest import unique_id
from tests.search.corpus import corpus_documents
from tests.search.openai_server import OpenAIServer

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


# -- keyword contract: both backends on the same corpus ----------------------------------------


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


# -- OpenSearch indexes and catalog databases -------------------------------------------------


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


# -- doors (issue 18): content files for the filters, rich error details ----------------------


def details(err: grpc.aio.AioRpcError) -> tuple[dict[str, str], dict[str, str]]:
    """(BadRequest field → description, ErrorInfo metadata) of a rich error status."""
    status = rpc_status.from_call(err)
    assert status is not None, f"no rich status: {err.code()} {err.details()}"
    violations: dict[str, str] = {}
    info: dict[str, str] = {}
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            br = error_details_pb2.BadRequest()
            detail.Unpack(br)
            violations.update({v.field: v.description for v in br.field_violations})
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            ei = error_details_pb2.ErrorInfo()
            detail.Unpack(ei)
            assert ei.domain == "search.learnflow"
            info = dict(ei.metadata)
    return violations, info


async def invalid(call) -> dict[str, str]:
    """The field violations of a call that must fail INVALID_ARGUMENT without internal names."""
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (
        err.value.code(),
        err.value.details(),
    )
    text = err.value.details() or ""
    for internal in ("Traceback", "class", "DecodeError", "Exception", "Error("):
        assert internal not in text, text
    return details(err.value)[0]


# -- content files for the filters -----------------------------------------------------------


@dataclass
class DoorsFiles:
    word: str  # a word only these files contain: a query for it finds exactly them
    tag: str  # an ocw_topic and a content tag only these files carry
    keys: dict[str, str]  # name (ocw_notes, ocw_sets, mitx_notes, mitx_plain) -> file key
    ids: dict[str, int]


def _course(
    readable_id: str, platform: str, offered_by: str, topic: str, ocw_topics: list[str]
) -> Resource:
    return Resource(
        readable_id=readable_id,
        platform=platform,
        offered_by=offered_by,
        resource_type="course",
        etl_source="doors-test",
        title=f"Doors course {readable_id}",
        topics=[Topic(name=topic)],
        ocw_topics=ocw_topics,
        runs=[Run(run_id=f"{readable_id}-run")],
    )


@pytest.fixture(scope="session")
async def doors_files(app, seeded) -> DoorsFiles:
    """An OCW course (topic Mathematics, an OCW topic of its own) and an xPRO course
    (topic Physics, on xPRO), two content files each with MIT Learn content tags, indexed and embedded
    by the real workflows."""
    tag = uuid.uuid4().hex[:8]
    word = f"doorsword{tag}"
    ocw = _course(f"doors-ocw-{tag}", "ocw", "ocw", "Mathematics", [f"Doors Calculus {tag}"])
    # xPRO, not MITx Online: the gRPC tests count MITx Online's courses in the session's catalog
    mitx = _course(f"doors-mitx-{tag}", "xpro", "xpro", "Physics", [])
    await app.stores.catalog.upsert_resources(f"doors-{tag}", [ocw, mitx])
    files = {
        # name: (resource, content tags)
        "ocw_notes": (ocw, ["Lecture Notes", f"Doors {tag}"]),
        "ocw_sets": (ocw, ["Problem Sets"]),
        "mitx_notes": (mitx, ["Lecture Notes"]),
        "mitx_plain": (mitx, []),
    }
    ids: dict[str, int] = {}
    keys: dict[str, str] = {}
    async with app.stores.pool.acquire() as conn:
        for name, (res, tags) in files.items():
            row = await conn.fetchrow(
                "SELECT lr.id, run.id AS run FROM learning_resource lr"
                " JOIN learning_resource_run run ON run.resource_id = lr.id"
                " WHERE lr.readable_id = $1",
                res.readable_id,
            )
            keys[name] = f"doors/{tag}/{name}.pdf"
            ids[name] = await conn.fetchval(
                "INSERT INTO content_file (run_id, resource_id, key, title, url, file_type,"
                " content_type, file_extension, content, checksum, published, data)"
                " VALUES ($1,$2,$3,$4,$5,'application/pdf','file','.pdf',$6,md5($6),true,$7)"
                " RETURNING id",
                row["run"],
                row["id"],
                keys[name],
                f"{name} {tag}",
                f"https://example.mit.edu/{keys[name]}",
                f"Notes on {word} and {name}. " * 20,
                {"content_tags": tags},
            )
    await _run(app, "IndexResourcesWorkflow", IndexInput(), IndexResult, "default")
    await _run(app, "EmbedResourcesWorkflow", EmbedInput(), EmbedResult, "embeddings")
    return DoorsFiles(word=word, tag=tag, keys=keys, ids=ids)


@pytest.fixture(scope="package")
async def opensearch_address(app, doors_files, opensearch_url) -> AsyncIterator[str]:
    """A second service whose keyword backends (resources and content files) are a real
    OpenSearch node, holding the same catalog (doors files included)."""
    async with opensearch_search_service(app, opensearch_url) as service:
        yield service.address

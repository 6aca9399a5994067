"""docker-compose.yml's learnflow services as separate OS processes, from the file's own commands.

What compose would run, minus the container engine this machine lacks: `migrate` and `schedules`
run to completion, then one worker per task queue, the gRPC search service and the webhook
service, each started from its `command` and `environment` in the file and declared up by its own
`healthcheck`. Then one scheduled ingestion (the `ingest/mitxonline` schedule that the schedules
job created, triggered with `learn schedules trigger`) and one webhook-started workflow (a signed
content_files delivery POSTed to the webhook process; the edx_content worker loads the archive from
S3 with Tika) run end to end, and what they loaded is found through the search process.

Infrastructure stand-ins (what answers for each compose host):
- postgres: a throwaway Debian PostgreSQL, with the role and database that the compose
  postgres service's POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB create;
- temporal: the Temporal dev server (its own, so no other test's workers poll these queues);
- opensearch, tika: the session's nodes (real OpenSearch and Tika servers); the index name gets a
  unique suffix because other tests share the node;
- minio: moto's S3 server (its own), with the buckets the minio-buckets job's `mc mb` lines name;
- qdrant: no Qdrant server can run here (no binary in any package registry we reach, no container
  engine), and qdrant-client's local mode and qdrant-edge are in-process only. The closest honest
  stand-in is devstack/harness/qdrant_rest.py: one process serving Qdrant's REST API over
  qdrant-client's local engine, reached by QDRANT_URL exactly like `qdrant:6333`, so the
  embeddings worker and the search service share vectors across processes through the production
  code path (qdrant-client's REST client). Its engine is exact search, not Qdrant's HNSW;
- litellm: not started (QDRANT_ENCODER=local needs none; answers are not exercised here): its
  address is a port where nothing listens, so any use fails loudly;
- the internet: MITx Online's API is the fixture server answering from recorded payloads, and
  the identity provider's JWKS is served there too.

Settings not from the file, added to every service's environment (`extra_env`): the unique
OPENSEARCH_INDEX, MITX_ONLINE_BASE_URL and HTTP_ALLOW_PRIVATE_HOSTS (the fixture server), and an
empty LEARNFLOW_ENV_FILE (an image has no `learn up` state file). Everything else is the file's,
interpolated with the variables an operator exports (WEBHOOK_SECRET, GRPC_AUTH_*, ...).
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import grpc
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from devstack.harness.fixture_server import FixtureServer, Response
from devstack.harness.postgres import DebianPostgres
from devstack.harness.process import free_port
from devstack.harness.s3 import MotoS3
from devstack.harness.temporal import DevServer
from learnflow.contracts import EmbedResult, IngestResult
from learnflow.contracts.archives import ArchiveIngestResult
from learnflow.db.content_files import ContentFileStore
from search_service.pb import search_pb2, search_pb2_grpc
from tests.conftest import TEST_JSON, mitxonline_routes
from tests.helpers.polling import eventually
from tests.ops import compose
from tests.ops.conftest import clean_env
from tests.search.conftest import AUDIENCE, CERTS_PATH, ISSUER, Issuer
from webhook_service.signatures import MITLEARN_HEADER, mitlearn_signature

pytestmark = [
    pytest.mark.topology,
    pytest.mark.temporal,
    pytest.mark.postgres,
    pytest.mark.opensearch,
    pytest.mark.tika,
    pytest.mark.s3,
]

SCHEDULE = "ingest/mitxonline"
ARCHIVE = TEST_JSON / "course-v1:MITxT+8.01.3x+3T2022.tar.gz"  # an OLX export with an overview
ARCHIVE_PHRASE = "long course description"  # in the archive's about/overview.html


def _postgres(pg: DebianPostgres, config: dict) -> str:
    """The compose postgres service's database and role, created as its image's entrypoint
    does (POSTGRES_USER is a superuser there); returns `host:port`."""
    env = compose.interpolate(config["services"]["postgres"]["environment"], {})
    user, password, db = env["POSTGRES_USER"], env["POSTGRES_PASSWORD"], env["POSTGRES_DB"]

    async def create() -> None:
        conn = await asyncpg.connect(pg.dsn)
        try:
            await conn.execute(f"CREATE ROLE {user} SUPERUSER LOGIN PASSWORD '{password}'")
            await conn.execute(f"CREATE DATABASE {db} OWNER {user}")
        finally:
            await conn.close()

    asyncio.run(create())
    return urlsplit(pg.dsn).netloc.rsplit("@", 1)[-1]


def _buckets(config: dict, variables: dict[str, str]) -> list[str]:
    """The buckets the minio-buckets job makes (`mc mb ... local/<name>`): its command
    interpolated by compose, then its shell variables from the job's environment."""
    job = config["services"]["minio-buckets"]
    env = compose.interpolate(job["environment"], variables)
    script = compose.interpolate(" ".join(compose.interpolate(job["command"], variables)), env)
    return re.findall(r"mc mb [^&]*?local/([^\s\"&]+)", script)


@pytest.fixture
def stack(tmp_path, opensearch_url, tika_url):
    """Infrastructure stand-ins for the compose hosts, and every process started, stopped after."""
    config = compose.load()
    started: list[compose.ServiceRun] = []
    with DebianPostgres() as pg, DevServer() as temporal, MotoS3() as s3, FixtureServer() as web:
        mitxonline_routes(web)
        issuer = Issuer(key=rsa.generate_private_key(public_exponent=65537, key_size=2048), kid="k")
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(issuer.key.public_key()))
        web.route(CERTS_PATH, Response.json({"keys": [{**jwk, "kid": "k", "alg": "RS256"}]}))
        qdrant_port = free_port()
        qdrant = compose.ServiceRun(
            "qdrant-stand-in",
            [compose.program("python"), "-m", "devstack.harness.qdrant_rest", "--port", str(qdrant_port)],
            clean_env(),
            tmp_path,
        )  # fmt: skip
        started.append(qdrant)
        variables = {  # what an operator exports for the file's ${...}
            "WEBHOOK_SECRET": uuid.uuid4().hex,
            "MITX_ONLINE_ETL_API_KEY": "topology-test-key",
            "GRPC_AUTH_ISSUER": ISSUER,
            "GRPC_AUTH_AUDIENCE": AUDIENCE,
            "GRPC_AUTH_JWKS_URL": web.base_url + CERTS_PATH,
            "SEARCH_PAGE_TOKEN_SECRET": uuid.uuid4().hex,
        }
        hosts = {
            "postgres:5432": _postgres(pg, config),
            "temporal:7233": temporal.address,
            "opensearch:9200": urlsplit(opensearch_url).netloc,
            "qdrant:6333": f"127.0.0.1:{qdrant_port}",
            "tika:9998": urlsplit(tika_url).netloc,
            "minio:9000": urlsplit(s3.endpoint_url).netloc,
            "litellm:4000": f"127.0.0.1:{free_port()}",  # nothing listens: not exercised
        }
        s3_client = s3.client()
        for bucket in _buckets(config, variables):
            s3_client.create_bucket(Bucket=bucket)
        stand_ins = compose.StandIns(hosts=hosts, variables=variables, scratch=tmp_path)
        stand_ins.extra_env = {
            # an image has no `learn up` state file; a checkout may (.learnflow/learnflow.env)
            "LEARNFLOW_ENV_FILE": "",
            "OPENSEARCH_INDEX": f"learnflow-topology-{uuid.uuid4().hex[:8]}",
            "MITX_ONLINE_BASE_URL": web.base_url,
            "HTTP_ALLOW_PRIVATE_HOSTS": "true",
        }
        try:
            yield Stack(config, stand_ins, tmp_path, started, s3_client, temporal.address, issuer)
        finally:
            for run in reversed(started):
                run.stop(grace=15)


class Stack:
    def __init__(self, config, stand_ins, logs: Path, started, s3, temporal_address, issuer):
        self.services: dict = config["services"]
        self.stand_ins = stand_ins
        self.logs = logs
        self.started: list[compose.ServiceRun] = started
        self.s3 = s3
        self.temporal_address = temporal_address
        self.issuer = issuer
        self.envs: dict[str, dict[str, str]] = {}

    def env(self, name: str) -> dict[str, str]:
        if name not in self.envs:
            own = self.stand_ins.environment(name, self.services[name])
            self.envs[name] = clean_env(**{**own, **self.stand_ins.extra_env})
        return self.envs[name]

    def start(self, name: str, argv: list[str] | None = None) -> compose.ServiceRun:
        svc = self.services[name]
        run = compose.ServiceRun(
            name, argv or self.stand_ins.command(name, svc), self.env(name), self.logs
        )
        self.started.append(run)
        return run

    def logs_of_all(self) -> str:
        return "\n".join(run.log(40) for run in self.started)


def _learnflow_services(services: dict) -> tuple[list[str], list[str]]:
    """(one-shot jobs, long-running services) built from learnflow's image, in start order."""
    ours = {n for n, s in services.items() if str(s.get("image", "")).startswith("learnflow:")}
    order = compose.start_order(services, ours)
    jobs = [n for n in order if str(services[n].get("restart")) == "no"]
    return jobs, [n for n in order if n not in jobs]


def _grpc_port(stack: Stack) -> int:
    return next(p for (svc, _), p in stack.stand_ins.ports.items() if svc == "search")


def _webhook_port(stack: Stack) -> int:
    return next(p for (svc, _), p in stack.stand_ins.ports.items() if svc == "webhooks")


async def test_compose_services_as_processes_run_a_schedule_and_a_webhook(stack: Stack):
    from worker import connect

    started = time.monotonic()
    jobs, services = _learnflow_services(stack.services)
    assert {"migrate", "schedules"} <= set(jobs), jobs
    workers = [n for n in services if "worker" in stack.services[n]["command"][:3]]
    assert len(workers) >= 3 and {"search", "webhooks"} <= set(services), services
    try:
        # -- one-shot jobs: exit 0 before the services start (depends_on ... completed)
        for name in jobs:
            run = stack.start(name)
            assert run.wait(timeout=60) == 0, run.log()
        printed = stack.started[-1].log_path.read_text()  # `learn schedules sync`'s report
        report = json.loads(printed[printed.index("{") : printed.rindex("}") + 1])
        assert SCHEDULE in report["created"], report

        # -- services, each up by its own compose health check
        for name in services:
            stack.start(name)
        runs = {r.name: r for r in stack.started if r.name in services}
        await asyncio.to_thread(
            compose.wait_healthy,
            stack.stand_ins,
            runs,
            stack.services,
            {n: stack.env(n) for n in runs},
            90,
        )
        client = await connect(stack.temporal_address)

        # -- the scheduled ingestion: the operator's `learn schedules trigger`, with the
        # schedules job's environment
        trigger = await asyncio.to_thread(
            subprocess.run,
            [compose.program("learn"), "schedules", "trigger", SCHEDULE],
            cwd=compose.REPO_ROOT,
            env=stack.env("schedules"),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert trigger.returncode == 0, trigger.stderr
        handle = client.get_schedule_handle(SCHEDULE)

        async def started_run() -> str | None:
            info = (await handle.describe()).info
            actions = [*info.running_actions, *info.recent_actions]
            return actions[0].workflow_id if actions else None  # type: ignore[union-attr]

        ingest_id = await eventually(started_run, "the schedule's workflow", within=30)
        ingest = await asyncio.wait_for(
            client.get_workflow_handle(ingest_id, result_type=IngestResult).result(), 120
        )
        assert ingest.outcome == "ok" and ingest.inserted > 0, ingest
        assert ingest.indexed > 0 and ingest.embed_workflow_id, ingest
        # embedding runs on the embeddings worker after the run (embed-async-v1): its child's result
        embedded = await asyncio.wait_for(
            client.get_workflow_handle(ingest.embed_workflow_id, result_type=EmbedResult).result(),
            120,
        )
        assert embedded.embedded > 0, embedded

        # -- the webhook-started workflow: an archive for an ingested run lands in the bucket
        # the workers read, and the data platform says so with a signed delivery
        worker_env = stack.env(workers[0])
        pool = await asyncpg.create_pool(worker_env["DATABASE_URL"], min_size=1, max_size=2)
        try:
            runs_ = await ContentFileStore(pool).course_runs("mitxonline")
            run = next(r for r in runs_ if r.resource_published)
            title = await pool.fetchval(
                "SELECT title FROM learning_resource WHERE id = $1", run.resource_id
            )
        finally:
            await pool.close()
        key = f"mitxonline/openedx/raw_data/course_xml/{run.run_id}/export.tar.gz"
        stack.s3.put_object(
            Bucket=worker_env["COURSE_ARCHIVE_BUCKET_NAME"], Key=key, Body=ARCHIVE.read_bytes()
        )
        body = json.dumps(
            {"source": "mitxonline", "content_path": key, "course_readable_id": run.run_id}
        ).encode()
        secret = stack.env("webhooks")["WEBHOOK_SECRET"]
        async with httpx.AsyncClient(timeout=30) as http:
            reply = await http.post(
                f"http://127.0.0.1:{_webhook_port(stack)}/api/v1/webhooks/content_files/",
                content=body,
                headers={
                    MITLEARN_HEADER: mitlearn_signature(secret, body),
                    "content-type": "application/json",
                },
            )
        assert reply.status_code == 202, reply.text
        archive_id = reply.json()["workflow_id"]
        archive = await asyncio.wait_for(
            client.get_workflow_handle(archive_id, result_type=ArchiveIngestResult).result(), 120
        )
        assert archive.outcome == "loaded" and archive.loaded > 0, archive
        assert archive.extractor_calls > 0 and archive.failed == 0, archive  # Tika did the text
        assert archive.index_workflow_id
        await asyncio.wait_for(client.get_workflow_handle(archive.index_workflow_id).result(), 120)

        # -- both found through the search process (auth on, as in production)
        token = stack.issuer.token()
        metadata = (("authorization", f"Bearer {token}"),)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{_grpc_port(stack)}") as channel:
            stub = search_pb2_grpc.SearchServiceStub(channel)
            for mode in (search_pb2.SEARCH_MODE_KEYWORD, search_pb2.SEARCH_MODE_VECTOR):
                # vector: embedded by the embeddings worker, read by the search process
                found = await eventually(
                    lambda mode=mode: _resource_found(stub, metadata, title, run.resource_id, mode),
                    f"{title!r} in mode {mode}",
                    within=30,
                    every=0.5,
                )
                assert not found.unavailable, found.unavailable
            files = await eventually(
                lambda: _content_found(stub, metadata, run.run_id),
                "the archive's content files",
                within=30,
                every=0.5,
            )
            assert {f.content_file.run_id for f in files.results} == {run.run_id}
        # the keyword side is OpenSearch (KEYWORD_BACKEND from the file), not an embedded index
        index = stack.env("search")["OPENSEARCH_INDEX"]
        opensearch = "http://" + stack.stand_ins.hosts["opensearch:9200"]
        async with httpx.AsyncClient(timeout=30) as http:
            counted = await http.get(f"{opensearch}/{index}*/_count")
        assert counted.status_code == 200 and counted.json()["count"] > 0, counted.text

        # -- compose's stop: SIGTERM, each service ends on its own within its stop_grace_period
        # (None: it had to be killed). uvicorn re-raises the SIGTERM after its graceful
        # shutdown, so the webhook service may end "by" the signal; the others exit 0.
        for name in reversed(services):
            code = runs[name].stop(grace=compose.grace_seconds(stack.services[name]))
            assert code in (0, -signal.SIGTERM), f"{name} ended with {code}\n{runs[name].log()}"
        assert time.monotonic() - started < 180
    except BaseException:
        print(stack.logs_of_all())
        raise


async def _resource_found(stub, metadata, title: str, resource_id: int, mode: int):
    reply = await stub.SearchResources(
        search_pb2.SearchResourcesRequest(query=title, mode=mode, page_size=10),
        metadata=metadata,
        timeout=10,
    )
    return reply if resource_id in [r.resource.id for r in reply.results] else None


async def _content_found(stub, metadata, run_id: str):
    reply = await stub.SearchContentFiles(
        search_pb2.SearchContentFilesRequest(
            query=ARCHIVE_PHRASE,
            mode=search_pb2.SEARCH_MODE_KEYWORD,
            filter=search_pb2.ContentFileFilter(run_id=[run_id]),
        ),
        metadata=metadata,
        timeout=10,
    )
    return reply if reply.results else None

"""A change of encoder (#15): the search service keeps answering vector queries from the promoted
encoder's collection, with that encoder on the query side, until the embeddings workflow has
filled the new encoder's collections; then it promotes them, the services follow, the old
collections are dropped, and a restarted service serves the promoted one.

Real services: Temporal (the session's dev server), a fresh PostgreSQL database, the embeddings
worker as a subprocess (`python worker.py`, restarted with the new QDRANT_ENCODER as a deploy
would), Qdrant's REST API over qdrant-client's local engine (the harness stand-in both processes
reach by URL), and the gRPC service in this process, once configured with each encoder.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
import uuid
from datetime import timedelta
from pathlib import Path

import grpc
import numpy as np
import pytest

from devstack.harness import reaper
from devstack.harness.process import free_port
from devstack.harness.qdrant_rest import serve as serve_qdrant
from learn_cli.commands.status import _vector_status
from learnflow.contracts import EmbedInput, EmbedResult
from learnflow.db.vector_serving import catch_up, read_serving
from learnflow.models import Resource
from learnflow.settings import Settings
from learnflow.stores.encoders import collection_name, encoder_id, get_encoder
from learnflow.stores.vector import QdrantClientVectorStore
from search_service.pb import search_pb2, search_pb2_grpc
from tests.helpers.catalog import course
from tests.helpers.polling import eventually

pytestmark = [pytest.mark.postgres, pytest.mark.temporal, pytest.mark.grpc]

REPO = Path(__file__).resolve().parents[2]
WORKER = (sys.executable, "worker.py", "--queue", "embeddings")
OLD, NEW = "local", "glove"  # fast encoders: hashed tf-idf, then SIF-GloVe
QUERY = "a course on negotiation, leadership and machine learning"
TOPICS = [
    "negotiation and conflict resolution",
    "machine learning with python",
    "introduction to economics",
    "leadership for engineers",
    "organic chemistry",
    "music theory and composition",
]


@pytest.fixture
async def stack(postgres_dsn, temporal_server, tmp_path):
    """A fresh catalog database, a Qdrant REST stand-in, and the environment both use."""
    import asyncpg

    name = f"promote_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(postgres_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    qdrant = serve_qdrant(free_port())
    threading.Thread(target=qdrant.serve_forever, daemon=True).start()
    env = {
        "DATABASE_URL": postgres_dsn.rsplit("/", 1)[0] + f"/{name}",
        "TEMPORAL_ADDRESS": temporal_server.address,
        "DATA_DIR": str(tmp_path),
        "BLOB_STORE_URL": str(tmp_path / "blobs"),
        "QDRANT_URL": f"http://127.0.0.1:{qdrant.server_address[1]}",
        "QDRANT_PATH": "",
        "QDRANT_ENCODER": OLD,
        "GRPC_AUTH_ENABLED": "false",
        "SEARCH_PAGE_TOKEN_SECRET": secrets.token_hex(16),
        "VECTOR_SERVING_REFRESH_SECONDS": "0.2",
        "VECTOR_RETIRE_GRACE_SECONDS": "1",
        "LEARNFLOW_ENV_FILE": "",
    }
    stack = Stack(env, f"promote-{uuid.uuid4().hex[:6]}-", tmp_path)
    try:
        yield stack
    finally:
        stack.stop_worker()
        await stack.stop_services()
        qdrant.shutdown()
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


class Stack:
    def __init__(self, env: dict[str, str], prefix: str, data_dir: Path):
        self.env, self.prefix, self.data_dir = env, prefix, data_dir
        self.worker: subprocess.Popen | None = None
        self.services: list = []

    def settings(self, encoder: str) -> Settings:
        fields = {k.lower(): v for k, v in self.env.items() if k != "LEARNFLOW_ENV_FILE"}
        return Settings(**{**fields, "qdrant_encoder": encoder})

    def start_worker(self, encoder: str) -> None:
        """`python worker.py --queue embeddings` configured with `encoder` (a deploy)."""
        self.stop_worker()
        log = self.data_dir / f"worker-{encoder}.log"
        env = {**os.environ, **self.env, "QDRANT_ENCODER": encoder, "PYTHONPATH": str(REPO)}
        with log.open("ab") as out:
            self.worker = subprocess.Popen(
                [*WORKER, "--task-queue-prefix", self.prefix],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        reaper.watch(self.worker.pid)
        self.worker_log = log

    def stop_worker(self) -> None:
        if self.worker is not None and self.worker.poll() is None:
            self.worker.terminate()
            self.worker.wait(30)
        self.worker = None

    async def embed(self, source: str | None) -> EmbedResult:
        from worker import connect

        client = await connect(self.env["TEMPORAL_ADDRESS"])
        return await client.execute_workflow(
            "EmbedResourcesWorkflow",
            EmbedInput(source=source),
            id=f"{self.prefix}embed-{uuid.uuid4().hex[:6]}",
            task_queue=f"{self.prefix}embeddings",
            result_type=EmbedResult,
            execution_timeout=timedelta(minutes=3),
        )

    async def start_service(self, encoder: str):
        """The gRPC service configured with `encoder`; returns a stub."""
        from learnflow.db.catalog import CatalogStore, create_pool
        from learnflow.stores import Stores, make_blob_store, make_keyword_index
        from learnflow.stores.vector_serving import RESOURCES, vector_store
        from search_service.server import start_server

        settings = self.settings(encoder)
        pool = await create_pool(settings.database_url)
        stores = Stores(
            settings=settings,
            pool=pool,
            catalog=CatalogStore(pool),
            keyword=make_keyword_index(settings),
            vector=vector_store(settings, RESOURCES, encoder_id(encoder)),
            blobs=make_blob_store(settings),
        )
        running = await start_server(stores, auth=None, health_interval=60)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
        self.services.append((running, pool, channel))
        return search_pb2_grpc.SearchServiceStub(channel)

    async def stop_services(self) -> None:
        for running, pool, channel in self.services:
            await channel.close()
            await running.stop(0)
            await pool.close()
        self.services = []


def _resources(source: str, numbers: range) -> list[Resource]:
    """Courses with distinct texts (no two tie in a vector ranking)."""
    return [
        course(
            source,
            f"{source}-{i}",
            f"{TOPICS[i % len(TOPICS)].title()} {i}",
            f"Course {i}: {TOPICS[i % len(TOPICS)]}, part {i}.",
        )
        for i in numbers
    ]


def _nearest(settings: Settings, encoder: str, what: str) -> list:
    """QUERY's nearest points (with payloads) straight from `encoder`'s `what` collection,
    encoded by it."""
    store = QdrantClientVectorStore(
        url=settings.qdrant_url,
        collection=collection_name(settings.qdrant_collection_prefix, what, encoder_id(encoder)),
    )
    vector = get_encoder(encoder).encode([QUERY])[0]
    try:
        return store.client.query_points(
            store.collection, query=np.asarray(vector).tolist(), limit=20, with_payload=True
        ).points
    finally:
        store.client.close()


def _direct(settings: Settings, encoder: str) -> list[tuple[int, float]]:
    """The vector ranking of QUERY straight from `encoder`'s resources collection."""
    points = _nearest(settings, encoder, "resources")
    return _ranked((int(p.payload["resource_id"]), float(p.score)) for p in points)


def _content_file_ids(settings: Settings, encoder: str) -> set[int]:
    """The content files of QUERY's nearest chunks in `encoder`'s content-file collection."""
    return {int(p.payload["content_file_id"]) for p in _nearest(settings, encoder, "content_files")}


def _ranked(hits) -> list[tuple[int, float]]:
    return sorted(((i, round(s, 4)) for i, s in hits), key=lambda h: (-h[1], h[0]))


async def _search(stub):
    res = await stub.SearchResources(
        search_pb2.SearchResourcesRequest(
            query=QUERY, mode=search_pb2.SEARCH_MODE_VECTOR, page_size=10
        )
    )
    return res.results


async def _answer(stub) -> list[tuple[int, float]]:
    return _ranked((r.resource.id, r.score) for r in await _search(stub))


def _collections(settings: Settings) -> set[str]:
    from qdrant_client import QdrantClient

    client = QdrantClient(url=settings.qdrant_url)
    try:
        return {c.name for c in client.get_collections().collections}
    finally:
        client.close()


async def test_a_new_encoder_serves_only_once_complete_then_the_old_one_is_retired(
    stack, monkeypatch
):
    from learnflow.db.catalog import CatalogStore, create_pool
    from learnflow.db.migrate import migrate

    settings = stack.settings(OLD)
    pool = await create_pool(settings.database_url)
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
        catalog = CatalogStore(pool)
        await catalog.upsert_resources("run-a", _resources("promo_a", range(6)))
        await catalog.upsert_resources("run-b", _resources("promo_b", range(6, 10)))

        # Encoder A fills its collections; the first complete pass promotes it.
        stack.start_worker(OLD)
        first = await stack.embed(None)
        assert first.embedded == 10
        assert (await read_serving(pool)).encoder == encoder_id(OLD)
        old_answer = _direct(settings, OLD)
        assert len(old_answer) == 10
        service_a = await stack.start_service(OLD)
        assert await _answer(service_a) == old_answer

        # Deploy encoder B. Its pass over one source leaves its collection incomplete: every
        # service, configured with A or with B, still answers with A (collection and encoder).
        stack.start_worker(NEW)
        partial = await stack.embed("promo_a")
        assert partial.embedded == 6
        assert (await read_serving(pool)).encoder == encoder_id(OLD)
        new_collection = collection_name(
            settings.qdrant_collection_prefix, "resources", encoder_id(NEW)
        )
        assert new_collection in _collections(settings)
        service_b = await stack.start_service(NEW)
        assert await _answer(service_b) == old_answer
        assert await _answer(service_a) == old_answer
        monkeypatch.setenv("DATABASE_URL", settings.database_url)
        monkeypatch.setenv("QDRANT_ENCODER", NEW)
        status = await _vector_status()  # `learn status`'s line
        assert f"serving {encoder_id(OLD)};" in status
        assert f"{encoder_id(NEW)}: 6/10 resources embedded" in status

        # Unpublished during the catch-up: gone from the served (A) answers at B's next pass.
        gone = await pool.fetchval(
            "UPDATE learning_resource SET published = false, updated_on = now()"
            " WHERE readable_id = 'promo_a-1' RETURNING id"
        )
        assert gone in {i for i, _ in old_answer}
        again = await stack.embed("promo_a")
        assert (again.removed, again.embedded) == (1, 0)
        old_answer = [hit for hit in old_answer if hit[0] != gone]
        assert _direct(settings, OLD) == old_answer
        assert await _answer(service_a) == await _answer(service_b) == old_answer

        # Added, and edited, during the catch-up: B's next pass embeds them with A into the
        # served collection too, so every service finds them before the promotion.
        edited_title = "Negotiation for leaders"
        await catalog.upsert_resources(
            "run-c",
            [
                course("promo_a", "promo_a-new", QUERY.capitalize(), f"All about {QUERY}."),
                course("promo_a", "promo_a-3", edited_title, "Negotiation, leadership, teams."),
            ],
        )
        new_id, edited_id = [
            await pool.fetchval(
                "SELECT id FROM learning_resource WHERE readable_id = $1", readable_id
            )
            for readable_id in ("promo_a-new", "promo_a-3")
        ]
        file_id = await pool.fetchval(
            "INSERT INTO content_file (resource_id, key, title, url, file_type, content,"
            " checksum, published, data) VALUES ($1, 'syllabus', 'Syllabus', $2,"
            " 'application/pdf', $3, md5($3), true, '{}') RETURNING id",
            new_id,
            "https://example.mit.edu/syllabus",
            f"Week one: {QUERY}.",
        )
        added = await stack.embed("promo_a")
        assert added.embedded == 2
        assert file_id in _content_file_ids(settings, OLD)
        old_answer = _direct(settings, OLD)
        assert old_answer[0][0] == new_id
        assert len(old_answer) == 10
        for stub in (service_a, service_b):
            assert await _answer(stub) == old_answer
            assert await _title(stub, edited_id) == edited_title
        assert (await read_serving(pool)).encoder == encoder_id(OLD)

        # The catch-up over every source completes B: promoted, A's collections dropped after
        # the grace, and both running services follow to B.
        rest = await stack.embed(None)
        assert rest.embedded == 4
        assert (await catch_up(pool, encoder_id(NEW))).complete
        serving = await read_serving(pool)
        assert serving.encoder == encoder_id(NEW)
        new_answer = _direct(settings, NEW)
        assert new_answer != old_answer
        assert new_answer[0][0] == new_id
        assert file_id in _content_file_ids(settings, NEW)
        for stub in (service_a, service_b):
            await eventually(lambda stub=stub: _same(stub, new_answer), "B's answers", within=30)
        old_names = {
            collection_name(settings.qdrant_collection_prefix, what, encoder_id(OLD))
            for what in ("resources", "content_files")
        }
        await eventually(
            lambda: not (old_names & _collections(settings)), "A's collections dropped", within=30
        )
        assert (await read_serving(pool)).retiring is None

        # A restarted service serves the promoted encoder from its first query.
        await stack.stop_services()
        restarted = await stack.start_service(NEW)
        assert await _answer(restarted) == new_answer
    finally:
        await pool.close()


async def _title(stub, resource_id: int) -> str:
    """The title a vector answer serves for `resource_id` (from the point's stored document)."""
    return next(r.resource.title for r in await _search(stub) if r.resource.id == resource_id)


async def _same(stub, expected) -> bool:
    return await _answer(stub) == expected

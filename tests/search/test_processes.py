"""Several search server processes on one port (`search_service.processes`): every process
finds what is indexed after it started (tantivy readers reload on the writer's commits, the
embedded vector shard is searched through the first process), checks callers and requests the
same way, reports health, honours the others' page tokens, and all stop together."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.search import generate
from search_service.auth import AuthConfig
from search_service.pb import search_pb2 as pb
from search_service.pb import search_pb2_grpc
from search_service.processes import process_count
from search_service.server import SERVICE_NAME
from tests.helpers.polling import eventually
from tests.search.conftest import AUDIENCE, CERTS_PATH, ISSUER
from tests.search.process_group_app import first_stores, index, start_group

PROCESSES = 2
# Fresh connections per check: the kernel spreads connections over the processes by a hash of
# the client's port, so 16 connections all reaching one of 2 processes has odds 2**-15.
CONNECTIONS = 16
NEW_WORD = "zyzzogeton"
REPO_ROOT = str(Path(__file__).resolve().parents[2])


def _doc(doc_id: int, title: str) -> dict:
    doc = generate(1, seed=doc_id)[0]
    return {**doc, "id": doc_id, "title": title}


async def _on_fresh_connections(address: str, call, n: int = CONNECTIONS) -> list:
    """`call(channel)` on `n` new connections to the shared port, one after the other."""
    out = []
    for _ in range(n):
        async with grpc.aio.insecure_channel(
            address, options=[("grpc.use_local_subchannel_pool", 1)]
        ) as channel:
            out.append(await call(channel))
    return out


async def _found_everywhere(address: str, request, metadata, want_id: int) -> None:
    """Poll (deadline 20 s) until `want_id` is found on CONNECTIONS fresh connections in a row."""

    async def ids(channel) -> list[int]:
        stub = search_pb2_grpc.SearchServiceStub(channel)
        resp = await stub.SearchResources(request, metadata=metadata, timeout=10)
        return [r.resource.id for r in resp.results]

    answers: list[list[int]] = []

    async def everywhere() -> bool:
        answers[:] = await _on_fresh_connections(address, ids)
        return all(want_id in a for a in answers)

    # every 0.2 s: the readers reload on a poll of the index's meta file
    await eventually(
        everywhere, lambda: f"{want_id} to be found by every process: {answers}", 20, every=0.2
    )


@pytest.fixture
async def group(tmp_path, jwks_server):
    server, _ = jwks_server
    stores = first_stores(tmp_path, page_token_key="test-group-page-tokens")
    await index(stores, [_doc(i, f"Differential equations {i}") for i in range(1, 31)])
    auth = AuthConfig(issuer=ISSUER, audience=AUDIENCE, jwks_url=server.base_url + CERTS_PATH)
    running = await start_group(stores, tmp_path, PROCESSES, auth)
    try:
        yield stores, running
    finally:
        await running.stop(grace=1)
        await stores.vector.close()
    assert not any(c.is_alive() for c in running.children)


async def test_every_process_finds_what_is_indexed_after_it_started(group, issuer):
    stores, running = group
    assert running.processes == PROCESSES and all(c.is_alive() for c in running.children)
    address = f"127.0.0.1:{running.port}"
    metadata = [("authorization", f"Bearer {issuer.token()}")]
    await index(stores, [_doc(10_000, f"{NEW_WORD.title()} studies")])
    keyword = pb.SearchResourcesRequest(query=NEW_WORD, mode=pb.SEARCH_MODE_KEYWORD)
    await _found_everywhere(address, keyword, metadata, 10_000)
    vector = pb.SearchResourcesRequest(query=f"{NEW_WORD} studies", mode=pb.SEARCH_MODE_VECTOR)
    await _found_everywhere(address, vector, metadata, 10_000)


async def test_every_process_checks_callers_health_and_requests(group, issuer):
    _, running = group
    address = f"127.0.0.1:{running.port}"
    metadata = [("authorization", f"Bearer {issuer.token()}")]
    search = pb.SearchResourcesRequest(
        query="differential", mode=pb.SEARCH_MODE_KEYWORD, page_size=5
    )

    async def anonymous(channel):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await search_pb2_grpc.SearchServiceStub(channel).SearchResources(search, timeout=10)
        return err.value.code()

    assert set(await _on_fresh_connections(address, anonymous)) == {grpc.StatusCode.UNAUTHENTICATED}

    async def invalid(channel):
        bad = pb.SearchResourcesRequest(query="differential", page_size=-1)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await search_pb2_grpc.SearchServiceStub(channel).SearchResources(
                bad, metadata=metadata, timeout=10
            )
        return err.value.code()

    assert set(await _on_fresh_connections(address, invalid)) == {grpc.StatusCode.INVALID_ARGUMENT}

    async def health(channel):
        stub = health_pb2_grpc.HealthStub(channel)
        statuses = []
        for s in ("", SERVICE_NAME, f"{SERVICE_NAME}/keyword", f"{SERVICE_NAME}/vector"):
            resp = await stub.Check(health_pb2.HealthCheckRequest(service=s), timeout=10)
            statuses.append(resp.status)
        return tuple(statuses)

    serving = health_pb2.HealthCheckResponse.SERVING
    assert set(await _on_fresh_connections(address, health)) == {(serving,) * 4}


async def _next_page_anywhere(address: str) -> None:
    """A page token from one process is honoured by every other: with no key configured (auth
    off) the group shares one random key."""
    search = pb.SearchResourcesRequest(
        query="linear algebra", mode=pb.SEARCH_MODE_KEYWORD, page_size=4
    )
    async with grpc.aio.insecure_channel(address) as channel:
        first = await search_pb2_grpc.SearchServiceStub(channel).SearchResources(search, timeout=10)
    assert first.next_page_token

    async def second_page(channel):
        request = pb.SearchResourcesRequest()
        request.CopyFrom(search)
        request.page_token = first.next_page_token
        resp = await search_pb2_grpc.SearchServiceStub(channel).SearchResources(request, timeout=10)
        return tuple(r.resource.id for r in resp.results)

    pages = set(await _on_fresh_connections(address, second_page))
    assert len(pages) == 1, pages
    assert not set(next(iter(pages))) & {r.resource.id for r in first.results}


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # a zombie (exited, not yet reaped by its parent) has stopped serving too
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] == "Z"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_a_signal_to_the_parent_stops_every_server_process(tmp_path, sig):
    stores = first_stores(tmp_path)
    await index(stores, [_doc(i, f"Linear algebra {i}") for i in range(1, 11)])
    await stores.vector.close()  # the served group opens the shard itself
    env = {**os.environ, "PYTHONPATH": REPO_ROOT}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.search.process_group_app",
        str(tmp_path),
        str(PROCESSES),
        env=env,
    )
    try:
        state_file = tmp_path / "group.json"

        def started() -> bool:
            assert proc.returncode is None, "the group's parent exited"
            return state_file.exists()

        await eventually(started, "the group's state file", within=120)
        state = json.loads(state_file.read_text())
        assert len(state["children"]) == PROCESSES - 1
        request = pb.SearchResourcesRequest(query="linear algebra", mode=pb.SEARCH_MODE_HYBRID)

        async def hits(channel):
            resp = await search_pb2_grpc.SearchServiceStub(channel).SearchResources(
                request, timeout=10
            )
            return len(resp.results)

        address = f"127.0.0.1:{state['port']}"
        assert all(await _on_fresh_connections(address, hits, n=8))
        await _next_page_anywhere(address)
        proc.send_signal(sig)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
        await eventually(
            lambda: all(_gone(pid) for pid in state["children"]),
            "every server process to exit with its parent",
            within=10,
        )
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def test_process_count_zero_means_one_per_core():
    from learnflow.settings import Settings

    assert process_count(Settings(search_processes=0)) == (os.cpu_count() or 1)
    assert process_count(Settings(search_processes=3)) == 3
    assert process_count(Settings(search_processes=3), requested=1) == 1

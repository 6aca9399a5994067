"""Issue 18 rows 7 and 7b: exactly one workflow run per webhook event, however many deliveries of
it arrive at once or later, over real HTTP against a real Temporal dev server and Postgres.

`learn up` runs workers, so a started run closes within milliseconds; Temporal's USE_EXISTING
policy only covers a run that is still open. The tests make runs close just as fast (a task
terminates every open run of the event's workflow id while the deliveries arrive), without a
worker, and count the runs Temporal recorded for that id.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid

import httpx
import pytest
from temporalio.client import Client
from temporalio.service import RPCError

from devstack.harness.process import free_port
from tests.webhooks.conftest import (
    Running,
    base_config,
    count_runs,
    dumps,
    sign_mitlearn,
    sign_standard,
    start_server,
)
from tests.webhooks.test_endpoints import content_payload
from webhook_service.starter import LazyTemporalStarter

pytestmark = [pytest.mark.doors, pytest.mark.webhooks, pytest.mark.temporal, pytest.mark.postgres]

CONTENT = "/api/v1/webhooks/content_files/"
DELIVERIES = 200


def _apps(temporal_address: str, n: int, **config) -> list[Running]:
    return [
        start_server(base_config(**config), LazyTemporalStarter(temporal_address)) for _ in range(n)
    ]


@contextlib.asynccontextmanager
async def runs_closing_fast(client: Client, workflow_id: str):
    """Terminate every open run of `workflow_id` until the block ends (as a worker finishing
    each run at once would close it)."""
    stop = asyncio.Event()

    async def close() -> None:
        while not stop.is_set():
            with contextlib.suppress(RPCError):
                await client.get_workflow_handle(workflow_id).terminate("doors: runs close fast")
            await asyncio.sleep(0.005)  # pacing, not synchronisation

    task = asyncio.create_task(close())
    try:
        yield
    finally:
        stop.set()
        await task


async def _storm(
    apps: list[Running], tclient: Client, body: bytes, headers: dict[str, str]
) -> tuple[str, int]:
    """DELIVERIES identical deliveries at once, spread over `apps`; (workflow id, runs)."""
    workflow_id = f"webhook/content_files/mit_edx/{json.loads(body)['content_path']}"
    limits = httpx.Limits(max_connections=DELIVERIES)
    async with (
        httpx.AsyncClient(timeout=60, limits=limits) as http,
        runs_closing_fast(tclient, workflow_id),
    ):
        answers = await asyncio.gather(
            *(
                http.post(apps[i % len(apps)].url + CONTENT, content=body, headers=headers)
                for i in range(DELIVERIES)
            )
        )
    assert {a.status_code for a in answers} == {202}, {a.text for a in answers}
    assert {a.json()["workflow_id"] for a in answers} == {workflow_id}
    # Visibility is eventually consistent: poll for a second run; none may appear.
    return workflow_id, await count_runs(tclient, workflow_id, 2, within=3.0)


@pytest.mark.parametrize("store", ["postgres", "memory"])
@pytest.mark.parametrize("scheme", ["mitlearn", "standard"])
async def test_row7_200_identical_deliveries_start_one_run(
    temporal_dev, tclient, migrated, scheme, store
):
    """200 identical deliveries at once: MIT Learn-signed (no delivery id: the signed body is the
    event), or Standard Webhooks with one `webhook-id`. Postgres: two service instances share the
    delivery store, as replicas do; memory: one instance."""
    apps = (
        _apps(temporal_dev.address, 2, database_url=migrated)
        if store == "postgres"
        else _apps(temporal_dev.address, 1)
    )
    try:
        body = dumps(content_payload())
        headers = (
            sign_mitlearn(body)
            if scheme == "mitlearn"
            else sign_standard(body, webhook_id=f"msg_doors_{uuid.uuid4().hex}")
        )
        workflow_id, runs = await _storm(apps, tclient, body, headers)
        assert runs == 1, f"{runs} runs of {workflow_id}"
        assert sum(len(a.starter.calls) for a in apps) == 1
    finally:
        for a in apps:
            a.server.stop()


async def test_row7b_replayed_mitlearn_delivery_starts_nothing_within_the_window(
    temporal_dev, tclient, migrated
):
    (app,) = _apps(temporal_dev.address, 1, database_url=migrated)
    (short,) = _apps(temporal_dev.address, 1, database_url=migrated, dedupe_ttl_seconds=1)
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            body = dumps(content_payload())
            headers = sign_mitlearn(body)
            first = await http.post(app.url + CONTENT, content=body, headers=headers)
            assert first.status_code == 202
            workflow_id = first.json()["workflow_id"]
            await tclient.get_workflow_handle(workflow_id).terminate("doors: run done")
            for _ in range(3):  # the same signed bytes resent after the run closed
                again = await http.post(app.url + CONTENT, content=body, headers=headers)
                assert again.status_code == 202 and again.json() == first.json()
            assert len(app.starter.calls) == 1
            assert await count_runs(tclient, workflow_id, 2, within=3.0) == 1

            # The window is bounded: with a 1 s window, the same delivery later is a new event.
            other = dumps(content_payload())
            other_headers = sign_mitlearn(other)
            r = await http.post(short.url + CONTENT, content=other, headers=other_headers)
            other_id = r.json()["workflow_id"]
            await tclient.get_workflow_handle(other_id).terminate("doors: run done")
            deadline = asyncio.get_running_loop().time() + 15
            while len(short.starter.calls) < 2:
                assert asyncio.get_running_loop().time() < deadline, "window never ended"
                r = await http.post(short.url + CONTENT, content=other, headers=other_headers)
                assert r.status_code == 202
                await asyncio.sleep(0.2)  # pacing the resends, not synchronisation
            assert await count_runs(tclient, other_id, 2) == 2
    finally:
        app.server.stop()
        short.server.stop()


async def test_row7_a_failed_start_releases_the_event_for_the_retry(
    temporal_dev, tclient, migrated
):
    dead = LazyTemporalStarter(f"127.0.0.1:{free_port()}", connect_timeout=2)
    down = start_server(base_config(database_url=migrated), dead)
    (up,) = _apps(temporal_dev.address, 1, database_url=migrated)
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            body = dumps(content_payload())
            headers = sign_mitlearn(body)
            r = await http.post(down.url + CONTENT, content=body, headers=headers)
            assert r.status_code == 503
            retry = await http.post(up.url + CONTENT, content=body, headers=headers)
            assert retry.status_code == 202
            assert await count_runs(tclient, retry.json()["workflow_id"], 1) == 1
            assert len(up.starter.calls) == 1
    finally:
        down.server.stop()
        up.server.stop()

"""What an operator sees from outside: `grpcurl` lists, describes and calls the service through
reflection; and auth is on by default, configured from GRPC_AUTH_* settings, failing closed."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
import sys
from pathlib import Path

import grpc
import pytest

from learnflow.settings import Settings
from search_service.pb import search_pb2 as pb
from search_service.pb import search_pb2_grpc
from search_service.server import auth_from_settings, start_server
from tests.search.conftest import AUDIENCE, CERTS_PATH, ISSUER

pytestmark = [pytest.mark.grpc, pytest.mark.temporal, pytest.mark.postgres]

SERVICE = "learn.search.v1.SearchService"


def _grpcurl() -> str:
    """`make install` builds grpcurl into the venv (.ci/tools.sh); PATH is the fallback."""
    local = Path(sys.prefix) / "bin" / "grpcurl"
    found = str(local) if local.exists() else shutil.which("grpcurl")
    assert found, "grpcurl is missing: run `bash .ci/tools.sh` (make install does)"
    return found


async def _grpcurl_run(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        _grpcurl(), *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_grpcurl_lists_and_describes_through_reflection(app):
    rc, out, err = await _grpcurl_run("-plaintext", app.grpc_address, "list")
    assert rc == 0, err
    services = set(out.split())
    assert {SERVICE, "grpc.health.v1.Health"} <= services

    rc, out, err = await _grpcurl_run("-plaintext", app.grpc_address, "list", SERVICE)
    assert rc == 0, err
    methods = {line.rsplit(".", 1)[-1] for line in out.split()}
    assert {
        "SearchResources",
        "SearchContentFiles",
        "GetResource",
        "BatchGetResources",
        "Autocomplete",
        "ListChangedResources",
        "StreamAnswer",
    } <= methods

    rc, out, err = await _grpcurl_run(
        "-plaintext", app.grpc_address, "describe", "learn.search.v1.SearchResourcesRequest"
    )
    assert rc == 0, err
    assert "page_token" in out and "ResourceFilter" in out


async def test_grpcurl_calls_search_and_health(app, seeded):
    rc, out, err = await _grpcurl_run(
        "-plaintext",
        "-d",
        json.dumps({"query": "differential equations", "pageSize": 3}),
        app.grpc_address,
        f"{SERVICE}/SearchResources",
    )
    assert rc == 0, err
    body = json.loads(out)
    assert int(body["total"]) >= 1
    ids = {int(hit["resource"]["id"]) for hit in body["results"]}
    assert ids & set(seeded.resource_ids.values())

    rc, out, err = await _grpcurl_run(
        "-plaintext",
        "-d",
        json.dumps({"query": "x", "filter": {"resourceType": ["spaceship"]}}),
        app.grpc_address,
        f"{SERVICE}/SearchResources",
    )
    assert rc != 0
    assert "InvalidArgument" in err and "spaceship" in err

    rc, out, err = await _grpcurl_run("-plaintext", app.grpc_address, "grpc.health.v1.Health/Check")
    assert rc == 0, err
    assert json.loads(out)["status"] == "SERVING"


def test_auth_is_on_by_default_and_fails_closed_without_a_jwks(monkeypatch):
    monkeypatch.delenv("GRPC_AUTH_ENABLED", raising=False)  # the app fixture turns it off
    settings = Settings(_env_file=None)
    assert settings.grpc_auth_enabled is True
    with pytest.raises(ValueError, match="GRPC_AUTH_JWKS_URL"):
        auth_from_settings(settings)
    assert auth_from_settings(Settings(_env_file=None, grpc_auth_enabled=False)) is None


async def test_auth_from_settings_protects_the_service(app, seeded, jwks_server, issuer):
    server, _ = jwks_server
    settings = app.stores.settings.model_copy(
        update={
            "grpc_auth_enabled": True,
            "grpc_auth_issuer": ISSUER,
            "grpc_auth_audience": AUDIENCE,
            "grpc_auth_jwks_url": server.base_url + CERTS_PATH,
        }
    )
    running = await start_server(dataclasses.replace(app.stores, settings=settings), auth=True)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as ch:
            stub = search_pb2_grpc.SearchServiceStub(ch)
            request = pb.SearchResourcesRequest(query="differential")
            with pytest.raises(grpc.aio.AioRpcError) as denied:
                await stub.SearchResources(request, timeout=10)
            assert denied.value.code() == grpc.StatusCode.UNAUTHENTICATED
            token = (("authorization", f"Bearer {issuer.token()}"),)
            resp = await stub.SearchResources(request, timeout=10, metadata=token)
            assert resp.total >= 1
    finally:
        await running.stop(grace=1.0)

"""Auth (bearer JWT through a JWKS we serve), StreamAnswer (a local OpenAI-compatible server),
and per-backend health going NOT_SERVING when a backend is unreachable."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from search_service.pb import search_pb2 as pb
from search_service.pb import search_pb2_grpc
from tests.helpers.polling import eventually
from tests.search.conftest import AUDIENCE, ISSUER

pytestmark = [pytest.mark.grpc, pytest.mark.temporal, pytest.mark.postgres]


async def _call(address: str, token: str | None):
    metadata = (("authorization", f"Bearer {token}"),) if token is not None else None
    async with grpc.aio.insecure_channel(address) as ch:
        return await search_pb2_grpc.SearchServiceStub(ch).SearchResources(
            pb.SearchResourcesRequest(query="differential"), timeout=10, metadata=metadata
        )


async def _code(address: str, token: str | None) -> grpc.StatusCode:
    try:
        await _call(address, token)
        return grpc.StatusCode.OK
    except grpc.aio.AioRpcError as exc:
        return exc.code()


async def test_valid_token_is_accepted(auth_address, issuer):
    resp = await _call(auth_address, issuer.token())
    assert resp.total >= 1


@pytest.mark.parametrize(
    "case",
    ["missing", "garbage", "expired", "wrong_issuer", "wrong_audience", "id_token", "other_key",
     "hs256", "unknown_kid", "no_sub"],
)  # fmt: skip
async def test_bad_tokens_are_unauthenticated(auth_address, issuer, case):
    import time

    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    now = int(time.time())
    token = {
        "missing": None,
        "garbage": "not.a.jwt",
        "expired": issuer.token(exp=now - 120, iat=now - 600),
        "wrong_issuer": issuer.token(iss="http://evil/realms/learn"),
        "wrong_audience": issuer.token(aud="account"),
        "id_token": issuer.token(typ="ID"),
        "other_key": jwt.encode(
            {"sub": "x", "iss": ISSUER, "aud": AUDIENCE, "exp": now + 60, "iat": now},
            rsa.generate_private_key(public_exponent=65537, key_size=2048),
            algorithm="RS256",
            headers={"kid": issuer.kid},
        ),
        "hs256": jwt.encode(
            {"sub": "x", "iss": ISSUER, "aud": AUDIENCE, "exp": now + 60, "iat": now},
            "a-shared-secret-that-is-long-enough-for-hs256",
            algorithm="HS256",
            headers={"kid": issuer.kid},
        ),
        "unknown_kid": jwt.encode(
            {"sub": "x", "iss": ISSUER, "aud": AUDIENCE, "exp": now + 60, "iat": now},
            issuer.key,
            algorithm="RS256",
            headers={"kid": "rotated-away"},
        ),
        "no_sub": issuer.token(sub=None),
    }[case]
    assert await _code(auth_address, token) == grpc.StatusCode.UNAUTHENTICATED


async def test_health_and_reflection_stay_open(auth_address):
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    async with grpc.aio.insecure_channel(auth_address) as ch:
        resp = await health_pb2_grpc.HealthStub(ch).Check(
            health_pb2.HealthCheckRequest(service="learn.search.v1.SearchService"), timeout=5
        )
        assert resp.status == health_pb2.HealthCheckResponse.SERVING
        call = reflection_pb2_grpc.ServerReflectionStub(ch).ServerReflectionInfo()
        await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
        await call.done_writing()
        listed = [r async for r in call][0]  # noqa: RUF015
        assert "learn.search.v1.SearchService" in {
            s.name for s in listed.list_services_response.service
        }


async def test_streaming_rpc_is_protected_too(auth_address, issuer):
    async with grpc.aio.insecure_channel(auth_address) as ch:
        call = search_pb2_grpc.SearchServiceStub(ch).StreamAnswer(
            pb.StreamAnswerRequest(question="what is a laplace transform?"), timeout=10
        )
        with pytest.raises(grpc.aio.AioRpcError) as err:
            [m async for m in call]
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


# -- StreamAnswer ---------------------------------------------------------------------------------


async def test_stream_answer_streams_text_then_citations(answer_address, openai_server, seeded):
    async with grpc.aio.insecure_channel(answer_address) as ch:
        call = search_pb2_grpc.SearchServiceStub(ch).StreamAnswer(
            pb.StreamAnswerRequest(question="differential equations course", context_size=3),
            timeout=20,
        )
        events = [m async for m in call]
    kinds = [m.WhichOneof("event") for m in events]
    assert kinds[-1] == "citations" and set(kinds[:-1]) == {"text"} and len(kinds) >= 5
    text = "".join(m.text for m in events[:-1])
    assert text.startswith("Try course one.")
    cited = list(events[-1].citations.resource_ids)
    assert len(cited) == 1 and f"[{cited[0]}]" in text
    request = openai_server.requests[-1]
    assert request["path"].endswith("/chat/completions") and request["body"]["stream"] is True
    assert f"[{cited[0]}]" in request["body"]["messages"][0]["content"]
    assert cited[0] in seeded.resource_ids.values()


async def test_stream_answer_errors(answer_address, app):
    from search_service.answers import LLMConfig
    from search_service.server import start_server

    async with grpc.aio.insecure_channel(answer_address) as ch:
        stub = search_pb2_grpc.SearchServiceStub(ch)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            [m async for m in stub.StreamAnswer(pb.StreamAnswerRequest(question=" "), timeout=5)]
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # An LLM that is not there: UNAVAILABLE, not a stack trace.
    dead = await start_server(
        app.stores, auth=None, llm=LLMConfig(model="openai/x", api_base="http://127.0.0.1:9/v1")
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{dead.port}") as ch:
            stub = search_pb2_grpc.SearchServiceStub(ch)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                [
                    m
                    async for m in stub.StreamAnswer(
                        pb.StreamAnswerRequest(question="hi"), timeout=20
                    )
                ]
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "Traceback" not in (err.value.details() or "")
    finally:
        await dead.stop(grace=0.5)


# -- health with an unreachable backend ---------------------------------------------------------


async def test_unreachable_backends_make_the_service_not_serving(app, seeded):
    """A Qdrant server URL nobody listens on, and a Postgres pool whose server is gone."""
    import dataclasses

    from devstack.harness.postgres import DebianPostgres
    from learnflow.db.catalog import create_pool
    from learnflow.stores.vector import QdrantVectorStore
    from search_service.server import start_server

    pg = DebianPostgres()
    pg.__enter__()
    pool = await create_pool(pg.dsn, min_size=0)
    stores = dataclasses.replace(
        app.stores, pool=pool, vector=QdrantVectorStore(url="http://127.0.0.1:9", collection="c")
    )
    running = await start_server(stores, auth=None, health_interval=0.1)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as ch:
            health = health_pb2_grpc.HealthStub(ch)

            async def status(service: str) -> int:
                req = health_pb2.HealthCheckRequest(
                    service=f"learn.search.v1.SearchService{service}"
                )
                return (await health.Check(req, timeout=5)).status

            assert await status("/vector") == health_pb2.HealthCheckResponse.NOT_SERVING
            assert await status("/keyword") == health_pb2.HealthCheckResponse.SERVING
            assert await status("/postgres") == health_pb2.HealthCheckResponse.SERVING
            assert await status("") == health_pb2.HealthCheckResponse.NOT_SERVING
            pg.__exit__(None, None, None)  # Postgres goes away

            async def postgres_down() -> bool:
                return await status("/postgres") == health_pb2.HealthCheckResponse.NOT_SERVING

            await eventually(postgres_down, "/postgres to go NOT_SERVING", within=15, every=0.05)
            # a search that needs the dead vector store is UNAVAILABLE, not a stack trace
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await search_pb2_grpc.SearchServiceStub(ch).SearchResources(
                    pb.SearchResourcesRequest(query="x", mode=pb.SEARCH_MODE_VECTOR), timeout=15
                )
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await running.stop(grace=0.5)
        pool.terminate()

"""The gRPC door under load and under bad input, on the root `app` (workers + service in-process
against the real Temporal, PostgreSQL and the embedded engines).

Missing, forged and expired JWTs are tested by the gRPC suite (tests/search/test_auth_and_answers.py:
test_bad_tokens_are_unauthenticated, test_streaming_rpc_is_protected_too); not repeated here.
"""

from __future__ import annotations

import asyncio
import os
import uuid

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from search_service.pb import search_pb2 as pb
from search_service.pb import search_pb2_grpc
from tests.search.load import MODES, ingest_with, run_load

pytestmark = [
    pytest.mark.reliability,
    pytest.mark.grpc,
    pytest.mark.temporal,
    pytest.mark.postgres,
]

# The issue asks for 60 s; CI runs 20 s to hold its time budget. The benchmark report
# (`python -m bench.all`) runs the full 60 s through `python -m tests.search.load`.
LOAD_SECONDS = float(os.environ.get("RELIABILITY_LOAD_SECONDS", "20"))
LOAD_CLIENTS = 16
METHOD = "/learn.search.v1.SearchService/SearchResources"
# The service's receive limit (search_service/server.py: grpc.max_receive_message_length).
MAX_RECEIVE = 4 * 1024 * 1024


@pytest.fixture(scope="module")
async def seeded_app(app):
    """One ingestion first, so every mode (vector included) has something to search."""
    assert await ingest_with(app.client)() == "ok"
    return app


async def test_16_clients_mixed_modes_while_ingesting_zero_errors(seeded_app):
    report = await run_load(
        seeded_app.grpc_address, LOAD_SECONDS, LOAD_CLIENTS, ingest_with(seeded_app.client)
    )
    print(f"\nload: {report}")
    assert report.errors == {}, report
    assert set(report.by_mode) == set(MODES)
    # Every client kept calling for the whole window (at least one answer a second each).
    assert report.requests >= LOAD_CLIENTS * LOAD_SECONDS, report
    assert report.ingestions >= 1 and report.ingestion_outcomes == {"ok": report.ingestions}
    assert report.p99_ms < 10_000


async def _call_raw(address: str, payload: bytes) -> grpc.StatusCode:
    """Send bytes as the request message (no protobuf serialisation on our side)."""
    async with grpc.aio.insecure_channel(address) as channel:
        call = channel.unary_unary(
            METHOD,
            request_serializer=None,
            response_deserializer=pb.SearchResourcesResponse.FromString,
        )
        try:
            await call(payload, timeout=10)
        except grpc.aio.AioRpcError as exc:
            return exc.code()
        return grpc.StatusCode.OK


async def _still_serving(address: str) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        ok = await search_pb2_grpc.SearchServiceStub(channel).SearchResources(
            pb.SearchResourcesRequest(query="differential equations"), timeout=10
        )
    assert ok.total >= 1


async def test_malformed_and_oversized_messages_get_a_status_not_a_crash(seeded_app):
    address = seeded_app.grpc_address
    # Not a protobuf at all (field number 0, an invalid wire type, a truncated varint): the
    # request guard answers INVALID_ARGUMENT (grpcio alone would answer UNKNOWN, naming the
    # DecodeError; issue 18).
    for junk in (b"\x00", b"\x0f\xff\xff\xff", b"\x0a\xff\xff\xff\xff\x0f"):
        assert await _call_raw(address, junk) in UNDECODABLE
    # Over the 4 MB receive limit: refused before the handler runs.
    huge = pb.SearchResourcesRequest(query="x" * (MAX_RECEIVE + 1024))
    async with grpc.aio.insecure_channel(address) as channel:
        stub = search_pb2_grpc.SearchServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.SearchResources(huge, timeout=30)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        # Under the limit but absurd: validation answers, the engine is never asked.
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.SearchResources(
                pb.SearchResourcesRequest(query="y" * (MAX_RECEIVE // 2)), timeout=30
            )
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await channel.unary_unary("/learn.search.v1.SearchService/DropTables")(b"", timeout=10)
        assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    await _still_serving(address)


async def test_long_unknown_filter_value_is_invalid_argument(seeded_app):
    async with grpc.aio.insecure_channel(seeded_app.grpc_address) as channel:
        stub = search_pb2_grpc.SearchServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.SearchResources(
                pb.SearchResourcesRequest(filter=pb.ResourceFilter(topic=["a" * 5000])), timeout=10
            )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert len(err.value.details()) < 2000  # the echoed value is cut short


# Field values a client can put in a well-formed message: wrong, long, empty, odd unicode.
# (Filter values are kept under 200 characters: longer unknown ones overflow the error's
# trailers, see test_long_unknown_filter_value_is_invalid_argument.)
ODD = ["", "\x00", "🙂" * 50, "*:*", "(((", 'title:[* TO *] OR "', "\\", "-"]
TEXT = st.one_of(st.text(max_size=40), st.sampled_from(ODD))
QUERY = st.one_of(TEXT, st.just("a" * 5000))
INTS = st.one_of(st.integers(-(2**31), 2**31 - 1), st.sampled_from([0, -1, 100, 101, 10_000]))
REQUESTS = st.builds(
    pb.SearchResourcesRequest,
    query=QUERY,
    mode=st.integers(0, 7),  # unknown enum values included
    facets=st.lists(TEXT, max_size=3),
    sort=TEXT,
    page_size=INTS,
    page_token=st.one_of(TEXT, st.just(uuid.uuid4().hex)),
    offset=INTS,
    view=st.integers(0, 5),
    filter=st.builds(
        pb.ResourceFilter,
        platform=st.lists(TEXT, max_size=2),
        topic=st.lists(TEXT, max_size=2),
        id=st.lists(st.integers(-(2**63), 2**63 - 1), max_size=3),
    ),
)
# A well-formed message with bad values is the caller's mistake (INVALID_ARGUMENT) or simply
# matches nothing (OK); anything else (INTERNAL, UNKNOWN) would be a bug on our side.
ALLOWED = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT}
UNDECODABLE = {grpc.StatusCode.INVALID_ARGUMENT}


async def test_fuzzed_requests_only_ok_or_invalid_argument(seeded_app):
    address = seeded_app.grpc_address
    seen: dict[grpc.StatusCode, int] = {}

    # Hypothesis drives a sync client in a thread; the service keeps running on this loop.
    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(request=REQUESTS, raw=st.binary(max_size=64))
    def fuzz(channel: grpc.Channel, request: pb.SearchResourcesRequest, raw: bytes) -> None:
        stub = search_pb2_grpc.SearchServiceStub(channel)
        try:
            stub.SearchResources(request, timeout=10)
            code = grpc.StatusCode.OK
        except grpc.RpcError as exc:
            code = exc.code()
        seen[code] = seen.get(code, 0) + 1
        assert code in ALLOWED, (code, request)
        # Random bytes: often a valid message of unknown fields, else undecodable (INTERNAL,
        # grpc's answer to a message it cannot parse); never a dead server.
        call = channel.unary_unary(METHOD)
        try:
            call(raw, timeout=10)
        except grpc.RpcError as exc:
            assert exc.code() in ALLOWED | UNDECODABLE, (exc.code(), raw)

    def run() -> None:
        with grpc.insecure_channel(address) as channel:
            fuzz(channel)

    await asyncio.to_thread(run)
    assert seen.get(grpc.StatusCode.INVALID_ARGUMENT) and seen.get(grpc.StatusCode.OK)
    await _still_serving(address)

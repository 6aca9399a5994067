"""Fixtures for the doors suite (issue 18): the gRPC service of the root `app` (embedded engines)
seeded as in tests/grpc, plus catalog resources and content files of our own for the content-file
filters, a second service on a real OpenSearch node, and helpers that read google.rpc details."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from learnflow.contracts import EmbedInput, EmbedResult, IndexInput, IndexResult
from learnflow.models import Resource, Run, Topic
from tests.grpc.conftest import (  # noqa: F401 - fixtures used by this suite
    _run,
    channel,
    openai_server,
    opensearch_search_service,
    seeded,
    stub,
)
from tests.webhooks.conftest import migrated, postgres, tclient, temporal_dev  # noqa: F401

pytestmark = [pytest.mark.doors]


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
async def doors_files(app, seeded) -> DoorsFiles:  # noqa: F811 - the fixture above
    """An OCW course (topic Mathematics, an OCW topic of its own) and an xPRO course
    (topic Physics, on xPRO), two content files each with MIT Learn content tags, indexed and embedded
    by the real workflows."""
    tag = uuid.uuid4().hex[:8]
    word = f"doorsword{tag}"
    ocw = _course(f"doors-ocw-{tag}", "ocw", "ocw", "Mathematics", [f"Doors Calculus {tag}"])
    # xPRO, not MITx Online: tests/grpc count MITx Online's courses in the session's catalog
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

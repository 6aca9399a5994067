"""A resource's search document is one mapping read from either form: the `Resource` (load_page,
the search service) or its stored JSON (`data`, as the embed pass reads it without validating it
again). Both give the same document, key order included (the vector payload stores its text), for
every demo source's resources, rows stored before a field existed, and awkward values; and the
payload's document text is `json.dumps`'s, byte for byte."""

from __future__ import annotations

import asyncio
import json
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from activities.ingest_cpu import decode_page
from bench.embed_pass_cpu import jsonb_order as jsonb
from devstack.demo import DEMO_SOURCES, install_demo
from devstack.harness.environ import environ
from devstack.harness.fixture_server import FixtureServer
from learnflow.http import SourceHttp
from learnflow.models import Resource
from learnflow.search_doc import (
    FILTER_FIELDS,
    filter_values,
    search_document,
    stored_key,
    to_search_document,
)
from learnflow.settings import get_settings, reset_settings
from learnflow.stores.vector import document_text
from sources import get_source
from sources.base import ExtractContext

CREATED = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)


def stored(res: Resource) -> dict[str, Any]:
    return json.loads(json.dumps(jsonb(res.stored_form()[0])))


def text(doc: dict[str, Any]) -> str:
    return json.dumps(doc)  # key order counts


async def _demo_resources() -> dict[str, list[Resource]]:
    out: dict[str, list[Resource]] = {}
    with FixtureServer() as server, environ(install_demo(server)):
        reset_settings()
        try:
            settings = get_settings()
            for name in DEMO_SOURCES:
                source = get_source(name)
                hosts = source.allowed_hosts(settings)
                async with SourceHttp(hosts or None, allow_private=True, max_backoff=0.01) as http:
                    ctx = ExtractContext(http=http, settings=settings, options={})
                    pages = [p async for p in source.extract(ctx)]
                for page in pages:
                    wanted = source.context_kinds.get(page.kind, ())
                    context = [decode_page(c.body) for c in pages if c.kind in wanted]
                    result = source.transform_payload(page.kind, decode_page(page.body), context)
                    out.setdefault(name, []).extend(result.resources)
        finally:
            reset_settings()
    return out


@pytest.fixture(scope="module")
def demo_resources() -> dict[str, list[Resource]]:
    return asyncio.run(_demo_resources())


def test_every_demo_resource_gives_one_document_from_either_form(demo_resources):
    with_resources = {name for name, resources in demo_resources.items() if resources}
    # the feed and view sources make no resources; every catalog source does
    assert {"mitxonline", "edx", "xpro", "sloan", "oll", "ovs", "podcasts", "youtube"} <= (
        with_resources
    )
    for resources in demo_resources.values():
        for i, res in enumerate(resources):
            data = stored(res)
            validated = Resource.model_validate(data)
            want = text(to_search_document(validated, i, CREATED))
            assert text(search_document(data, i, CREATED)) == want, res.key
            assert text(to_search_document(res, i, CREATED)) == want, res.key
            assert stored_key(data) == res.key
            doc = search_document(data, i, CREATED)
            assert document_text(doc) == json.dumps(doc, separators=(",", ":"))


def _awkward() -> Resource:
    """Values the stored JSON writes differently from the model: zone offsets other than UTC,
    naive and sub-second date-times, exponent and zero-padded prices, enum defaults, unpublished
    and variant runs, start dates whose text order is not their time order, no primary course
    number, text json escapes."""
    ist = timezone(timedelta(hours=5, minutes=30))
    return Resource.model_validate(
        {
            "readable_id": "awkward-1",
            "platform": "ocw",
            "resource_type": "course",
            "etl_source": "ocw",
            "title": "Ünïcode title \u2028 with DEL \x7f and a tab\t",
            "offered_by": "ocw",
            "image": {"url": "https://example.org/i.png"},
            "last_modified": datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=ist),
            "departments": [{"department_id": "6", "name": "EECS"}],
            "topics": [{"name": "Mathematics"}],
            "delivery": ["in_person", "online"],
            "pace": ["self_paced"],
            "prices": [{"amount": "1E+2"}, {"amount": "0.00"}],
            "completeness": 0.30000000000000004,
            "course_numbers": [
                {"value": "6.001", "primary": False, "sort_coursenum": None},
                {"value": "6.0001", "primary": False, "sort_coursenum": "06.0001"},
            ],
            "runs": [
                {
                    "run_id": "variant",
                    "is_variant": True,
                    "start_date": "2027-01-01T00:00:00Z",
                    "level": ["graduate"],
                    "instructors": [{"full_name": "V. Ariant"}],
                },
                {"run_id": "hidden", "published": False, "start_date": "2023-01-01T00:00:00"},
                {
                    "run_id": "late",
                    "start_date": datetime(
                        2026, 8, 31, 23, 0, tzinfo=timezone(-timedelta(hours=4))
                    ),
                    "end_date": datetime(2026, 12, 1, 17, 0, 0, 500),
                    "level": ["advanced", "introductory"],
                    "instructors": [{"full_name": "B"}, {"full_name": "A"}],
                    "year": 2026,
                    "semester": "Fall",
                },
                {"run_id": "early", "start_date": "2026-09-01T01:00:00+05:30"},
            ],
            "details": {"view_count": 12, "transcript": "spoken words"},
        }
    )


def test_awkward_values_give_one_document_from_either_form():
    res = _awkward()
    data = stored(res)
    want = text(to_search_document(Resource.model_validate(data), 1, None))
    assert text(search_document(data, 1, None)) == want
    assert text(to_search_document(res, 1, None)) == want
    doc = search_document(data, 1, None)
    assert document_text(doc) == json.dumps(doc, separators=(",", ":"))
    # the mapping's own rules are the model's: prices include a zero, published runs only
    assert doc["free"] is True and doc["prices"] == ["1E+2", "0.00"]
    assert doc["next_start_date"] == "2026-09-01T01:00:00+05:30"  # 19:30 UTC the day before
    assert [r["run_id"] for r in doc["runs"]] == ["late", "early"]
    assert doc["level"] == ["advanced", "graduate", "introductory"]
    assert doc["instructors"] == ["A", "B"]
    assert doc["sort_coursenum"] == "6.001"


def test_a_row_stored_before_a_field_existed_reads_with_the_models_defaults():
    """Stored forms lacking optional fields (at the top, in runs, images, course numbers) give
    the document validation would: the model's defaults."""
    full = stored(_awkward())
    data = {k: full[k] for k in ("readable_id", "platform", "resource_type", "etl_source", "title")}
    data["image"] = {"url": "https://example.org/i.png"}
    data["runs"] = [{"run_id": "r1", "start_date": "2026-01-05T00:00:00Z"}, {"run_id": "r2"}]
    data["course_numbers"] = [{"value": "18.01"}]
    data["prices"] = [{"amount": "5"}]
    want = text(to_search_document(Resource.model_validate(data), 3, CREATED))
    assert text(search_document(data, 3, CREATED)) == want
    assert json.loads(want)["certification_type"] == {"code": "none", "name": "No Certificate"}
    with pytest.raises(KeyError):
        search_document({k: v for k, v in data.items() if k != "title"}, 3, CREATED)


@pytest.mark.parametrize(
    "value",
    [
        "plain ascii",
        "é non-ascii",
        "del \x7f",
        'controls \x00\x01\x1f\b\f\n\r\t \\ " /',
        "\U0001f600 astral",
        1e-05,
        0.00012,
        1e16,
        1.7976931348623157e308,
        math.nan,
        math.inf,
        2**70,
        "1e-5 in text 0.00001",
    ],
)
def test_the_payload_document_text_is_json_dumps_byte_for_byte(value):
    doc = {"id": 1, "completeness": 0.5, "value": value, "nested": [{"v": value}], "none": None}
    if isinstance(value, float):
        doc["completeness"] = value
        doc["nested"] = [{"v": 1.0}]  # a document's floats below its top level are finite
    assert document_text(doc) == json.dumps(doc, separators=(",", ":"))


@pytest.mark.postgres
async def test_rows_read_back_from_postgres_give_the_resources_documents(fresh_dsn, demo_resources):
    """The real jsonb round trip and the pool's codec: every row's stored form gives the
    document of the resource written (a catalog of its own: the shared app's search tests
    would index these rows)."""
    from learnflow.db.catalog import CatalogStore, create_pool
    from tests.helpers.stack import prepare_database

    await prepare_database(fresh_dsn)
    resources = [r for rs in demo_resources.values() for r in rs]
    pool = await create_pool(fresh_dsn)
    try:
        await CatalogStore(pool).upsert_resources("forms", resources)
        async with pool.acquire() as conn:
            rows = await conn.fetch("SELECT id, data, created_on FROM learning_resource")
    finally:
        await pool.close()
    by_key = {r.key: r for r in resources}
    assert len(rows) == len(by_key)
    for row in rows:
        res = by_key[stored_key(row["data"])]
        want = text(to_search_document(res, row["id"], row["created_on"]))
        assert text(search_document(row["data"], row["id"], row["created_on"])) == want


def test_filter_values_of_sparse_and_odd_documents():
    """Every filter, in FILTER_FIELDS' order: values lowercased but the ids, codes read off
    their dicts, plain values as text; what a document lacks gives no value (a flag: false)."""
    sparse = filter_values({"id": 3})
    assert list(sparse) == list(FILTER_FIELDS)
    flags = {"certification": ["false"], "professional": ["false"], "free": ["false"]}
    assert sparse == {**{name: [] for name in FILTER_FIELDS}, **flags, "id": ["3"]}
    odd = filter_values(
        {
            "id": "X9",
            "resource_type": "Course",
            "offered_by": None,
            "platform": [{"code": "OCW"}, "MITx"],
            "level": "Graduate",
            "ocw_topics": ["Á", 2],
            "delivery": [],
            "resource_category": ["A", "B"],
            "certification": 1,
            "free": None,
            "topics": [{"name": "ÉCONOMICS"}],
            "departments": [{"department_id": "CMS-W"}],
        }
    )
    assert odd["id"] == ["X9"]
    assert odd["resource_type"] == ["course"]
    assert odd["offered_by"] == [] and odd["delivery"] == []
    assert odd["platform"] == ["ocw", "mitx"]
    assert odd["level"] == ["graduate"]
    assert odd["ocw_topic"] == ["á", "2"]
    assert odd["resource_category"] == ["a", "b"]
    assert odd["certification"] == ["true"] and odd["free"] == ["false"]
    assert odd["topic"] == ["économics"]
    assert odd["department"] == ["cms-w"]

"""PostHog views: the recorded zstd Parquet export, skipped and quarantined rows, corrupted
properties, and the S3 extract (moto) with the `since` cut-off."""

from __future__ import annotations

import copy
import io
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from learnflow.http import SourceHttp
from learnflow.models import TransformOutput
from learnflow.settings import get_settings
from sources import posthog_views
from sources.base import ExtractContext
from tests.helpers.corruption import JUNK
from tests.helpers.fixtures import TEST_JSON

EXPORT = TEST_JSON / "posthog" / "test_data.parquet.zst"
RAW = EXPORT.read_bytes()
TABLE = pq.read_table(EXPORT)
ROWS = TABLE.to_pylist()


def parquet_of(rows: list[dict]) -> bytes:
    """Rows in the export's schema, zstd-compressed as PostHog writes them."""
    table = pa.Table.from_pylist(rows, schema=TABLE.schema)
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def row(n: int = 0, **overrides: Any) -> dict:
    out = copy.deepcopy(ROWS[n])
    out.update(overrides)
    return out


def props(n: int = 0) -> dict:
    return json.loads(ROWS[n]["properties"])


def test_view_events_from_the_recorded_export():
    assert pq.ParquetFile(EXPORT).metadata.row_group(0).column(0).compression == "ZSTD"
    out = posthog_views.transform("events", RAW)
    assert not out.quarantined and out.resources == [] and out.feed_items == []
    assert [e.resource_id for e in out.view_events] == [3235, 3235, 3235, 3235]
    first = out.view_events[0]
    assert first.event_uuid == "0198f143-cf8c-79b6-bab8-9c9063659a54"
    assert first.event_date == datetime(2025, 8, 28, 15, 20, 10, 403000, tzinfo=UTC)
    assert len({e.event_uuid for e in out.view_events}) == 4


def test_a_local_path_works_too():
    assert len(posthog_views.transform("events", str(EXPORT)).view_events) == 4


def test_resource_id_rules():
    resource_only = {**props(), "resource": {"id": 7}}
    legacy = {k: v for k, v in props().items() if k != "resource"}
    legacy["learning_resource_id"] = "8"
    other_event = {"$lib": "web"}  # e.g. an LLM call event: no resource
    rows = [
        row(0, uuid="u-resource", properties=json.dumps(resource_only)),
        row(1, uuid="u-legacy", properties=json.dumps(legacy)),
        row(2, uuid="u-other", properties=json.dumps(other_event)),
        row(3, uuid=None),  # no uuid: skipped
        row(0, uuid="u-resource"),  # duplicate uuid inside one file: once
    ]
    out = posthog_views.transform("events", parquet_of(rows))
    assert [(e.event_uuid, e.resource_id) for e in out.view_events] == [
        ("u-resource", 7),
        ("u-legacy", 8),
    ]
    assert not out.quarantined


def test_bad_rows_are_quarantined_the_rest_load():
    rows = [
        row(0, uuid="bad-json", properties="{not json"),
        row(1),
        row(2, uuid="bad-id", properties=json.dumps({"resource": {"id": "abc"}})),
        row(3, uuid="bad-shape", properties=json.dumps([1, 2])),
    ]
    out = posthog_views.transform("events", parquet_of(rows))
    assert [e.event_uuid for e in out.view_events] == [ROWS[1]["uuid"]]
    assert {q.item_key for q in out.quarantined} == {"bad-json", "bad-id", "bad-shape"}
    assert all(q.source == "posthog" and q.reason for q in out.quarantined)


def test_wrong_shape_raises_value_error():
    no_props = pa.table({"uuid": ["x"], "timestamp": [datetime(2025, 1, 1, tzinfo=UTC)]})
    sink = io.BytesIO()
    pq.write_table(no_props, sink)
    for payload in (b"PAR1 not really", {"results": []}, RAW[:100], sink.getvalue()):
        with pytest.raises(ValueError):
            posthog_views.transform("events", payload)
    with pytest.raises(ValueError):
        posthog_views.transform("views", RAW)


@st.composite
def corrupted_properties(draw) -> str:
    """The real event's properties with keys removed or given values of the wrong type."""
    data = props(0)
    keys = ["resource", "learning_resource_id", *sorted(data)[:10]]
    for key in draw(st.lists(st.sampled_from(keys), min_size=1, max_size=4)):
        if draw(st.booleans()):
            data.pop(key, None)
        else:
            data[key] = draw(JUNK)
    if draw(st.booleans()) and isinstance(data.get("resource"), dict):
        data["resource"]["id"] = draw(JUNK)
    return json.dumps(data) if draw(st.integers(0, 9)) else draw(st.text(max_size=10))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(properties=corrupted_properties(), uid=st.one_of(st.none(), st.text(max_size=8)))
def test_corrupted_rows_only_quarantine(properties, uid):
    rows = [row(0, uuid=uid, properties=properties), row(1)]
    out = posthog_views.transform("events", parquet_of(rows))
    assert isinstance(out, TransformOutput)
    assert ROWS[1]["uuid"] in {e.event_uuid for e in out.view_events}
    assert len(out.view_events) + len(out.quarantined) <= 2


@settings(max_examples=40, deadline=None)
@given(cut=st.integers(min_value=0, max_value=len(RAW)), flip=st.integers(0, 255))
def test_damaged_files_raise_only_value_error(cut, flip):
    damaged = bytearray(RAW)
    if cut < len(damaged):
        damaged[cut] = flip
    try:
        out = posthog_views.transform("events", bytes(damaged))
    except ValueError:
        return
    assert isinstance(out, TransformOutput)


async def test_extract_reads_objects_after_since(s3_server):
    bucket = f"posthog-{uuid.uuid4().hex[:8]}"
    client = s3_server.client()
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="events/2025/08/28/part-0.parquet.zst", Body=RAW)
    client.put_object(
        Bucket=bucket, Key="events/2025/08/28/part-1.parquet.zst", Body=parquet_of([row(1)])
    )
    client.put_object(Bucket=bucket, Key="other/ignored.parquet", Body=RAW)
    options = {
        "posthog_event_s3_bucket": bucket,
        "posthog_event_s3_prefix": "events/",
        "s3_endpoint_url": s3_server.endpoint_url,
    }
    async with SourceHttp(allowed_hosts={"127.0.0.1"}, allow_private=True) as http:
        ctx = ExtractContext(http=http, settings=get_settings(), options=options)
        pages = [p async for p in posthog_views.extract(ctx)]
        assert [(p.kind, p.item_count) for p in pages] == [("events", 4), ("events", 1)]
        assert pages[0].url == f"s3://{bucket}/events/2025/08/28/part-0.parquet.zst"
        assert pages[0].body == RAW
        later = ExtractContext(
            http=http, settings=get_settings(), options={**options, "since": "2999-01-01T00:00:00Z"}
        )
        assert [p async for p in posthog_views.extract(later)] == []
    assert len(posthog_views.transform("events", pages[1].body).view_events) == 1


def test_unavailable_without_a_bucket(monkeypatch):
    monkeypatch.delenv("POSTHOG_EVENT_S3_BUCKET", raising=False)
    assert "POSTHOG_EVENT_S3_BUCKET" in posthog_views.unavailable(get_settings())
    monkeypatch.setenv("POSTHOG_EVENT_S3_BUCKET", "b")
    assert posthog_views.unavailable(get_settings()) is None

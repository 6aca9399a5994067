"""PostHog resource views: Parquet event exports in S3 → view events (`lrd_open`).

Transport: PostHog's batch export writes Parquet files (zstd-compressed column chunks) under
`POSTHOG_EVENT_S3_BUCKET`/`POSTHOG_EVENT_S3_PREFIX`; the extractor reads every object modified
after the newest event already stored (`ctx.options["since"]`, ISO-8601; none = everything),
one raw page per object. Field rules follow MIT Learn's `learning_resources/etl/posthog.py`
(reference/mit-learn.md §1.2): columns `uuid, timestamp, properties` read in 1000-row batches;
`properties` is JSON whose `resource.id` (else `learning_resource_id`) is the viewed resource;
rows without a resource id or a uuid are other PostHog events and are skipped.

Kind `events`: the payload is the Parquet file (bytes, or a local path). The output is
`TransformOutput.view_events` (`ViewEvent(event_uuid, resource_id, event_date)`), which the
loader writes to the view-event table deduplicated on `event_uuid` (MIT Learn's partial unique
index) and from which it recounts `view_count` of the resources touched. A row whose properties
are not JSON, or whose resource id is not an integer, is quarantined.

Differences on purpose (reference/mit-learn.md §9): the schedule is this source's own (MIT
Learn's PostHog task read the OL-events schedule variable); S3 reads go through aioboto3 with
the shared endpoint/credentials settings, with a size cap per object.
"""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import structlog

from learnflow.models import Quarantined, TransformOutput, ViewEvent
from learnflow.schedules import H3, ingest_schedule
from learnflow.settings import SourceSettings
from sources._catalog import source_settings
from sources.base import ExtractContext, RawPage, Source, parse_datetime

log = structlog.get_logger(__name__)

ETL_SOURCE = "posthog"
COLUMNS = ["uuid", "timestamp", "properties"]
BATCH_ROWS = 1000


class PosthogSettings(SourceSettings):
    """MIT Learn's POSTHOG_EVENT_S3_* settings."""

    posthog_event_s3_bucket: str = ""
    posthog_event_s3_prefix: str = ""
    posthog_event_s3_endpoint_url: str = ""
    posthog_max_object_bytes: int = 512 * 1024 * 1024


def settings_for(settings: Any = None, options: dict[str, Any] | None = None) -> PosthogSettings:
    return source_settings(PosthogSettings, settings, options)


def unavailable(settings: Any) -> str | None:
    if not settings_for(settings).posthog_event_s3_bucket:
        return "POSTHOG_EVENT_S3_BUCKET is not set"
    return None


def _parquet(payload: Any) -> pq.ParquetFile:
    if isinstance(payload, str | Path) and not isinstance(payload, bytes):
        payload = Path(payload).read_bytes()
    if not isinstance(payload, bytes | bytearray):
        raise ValueError("a PostHog page is a Parquet file (bytes or a path)")
    try:
        return pq.ParquetFile(io.BytesIO(bytes(payload)))
    except (pa.ArrowException, OSError) as exc:
        raise ValueError(f"not a Parquet file: {exc}") from exc


def rows(payload: Any) -> Iterator[dict]:
    """The rows of the file's `uuid, timestamp, properties` columns, 1000 at a time."""
    pf = _parquet(payload)
    missing = [c for c in COLUMNS if c not in pf.schema_arrow.names]
    if missing:
        raise ValueError(f"PostHog export lacks columns {missing}")
    try:
        for batch in pf.iter_batches(batch_size=BATCH_ROWS, columns=COLUMNS):
            yield from batch.to_pylist()
    # OverflowError: a damaged timestamp ("date value out of range") found by fuzzing
    except (pa.ArrowException, OSError, OverflowError) as exc:
        raise ValueError(f"unreadable Parquet data: {exc}") from exc


def resource_id_of(properties: Any) -> Any:
    """`resource.id`, else `learning_resource_id` (MIT Learn's rule); None when neither."""
    if isinstance(properties, str):
        properties = json.loads(properties)
    if properties is None:
        return None
    if not isinstance(properties, dict):
        raise ValueError("properties is not a JSON object")
    resource = properties.get("resource")
    if isinstance(resource, dict) and resource.get("id") not in (None, ""):
        return resource["id"]
    return properties.get("learning_resource_id")


def view_event(row: dict) -> ViewEvent | None:
    """One row → a ViewEvent, None for rows that are not resource views; raises on bad data."""
    uuid = row.get("uuid")
    resource_id = resource_id_of(row.get("properties"))
    if resource_id in (None, "") or not uuid:
        return None
    if isinstance(resource_id, bool) or not str(resource_id).strip().isdigit():
        raise ValueError(f"resource id {resource_id!r} is not an integer")
    when = row.get("timestamp")
    event_date = when if isinstance(when, datetime) else parse_datetime(when)
    if event_date is None:
        raise ValueError("event has no timestamp")
    if event_date.tzinfo is None:
        event_date = event_date.replace(tzinfo=UTC)
    return ViewEvent(event_uuid=str(uuid), resource_id=int(resource_id), event_date=event_date)


def transform(kind: str, payload: Any, context: Sequence[Any] = ()) -> TransformOutput:
    """Pure: one Parquet export → view events (bad rows quarantined, other events skipped)."""
    if kind != "events":
        raise ValueError(f"unknown PostHog kind {kind!r}")
    out = TransformOutput()
    seen: set[str] = set()
    for row in rows(payload):
        try:
            event = view_event(row)
        except Exception as exc:
            out.quarantined.append(
                Quarantined(
                    source=ETL_SOURCE,
                    item_key=str(row.get("uuid")) if row.get("uuid") else None,
                    reason=f"{type(exc).__name__}: {exc}",
                    raw=json.dumps(row, default=str)[:1_000_000],
                )
            )
            continue
        if event is not None and event.event_uuid not in seen:
            seen.add(event.event_uuid)
            out.view_events.append(event)
    return out


async def extract(ctx: ExtractContext) -> AsyncIterator[RawPage]:
    """Every export object modified after `options["since"]`, oldest first."""
    import aioboto3

    cfg = settings_for(ctx.settings, ctx.options)
    if not cfg.posthog_event_s3_bucket:
        raise ValueError("POSTHOG_EVENT_S3_BUCKET is not set")
    since = parse_datetime(ctx.options.get("since")) if ctx.options.get("since") else None
    s = ctx.settings
    session = aioboto3.Session()
    async with session.client(
        "s3",
        endpoint_url=ctx.options.get("s3_endpoint_url")
        or cfg.posthog_event_s3_endpoint_url
        or s.s3_endpoint_url,
        aws_access_key_id=s.aws_access_key_id,
        aws_secret_access_key=s.aws_secret_access_key.get_secret_value(),
        region_name=s.aws_region,
    ) as s3:
        objects: list[dict] = []
        paginator = s3.get_paginator("list_objects_v2")
        async for page in paginator.paginate(
            Bucket=cfg.posthog_event_s3_bucket, Prefix=cfg.posthog_event_s3_prefix
        ):
            objects.extend(page.get("Contents") or [])
        objects = [o for o in objects if since is None or o["LastModified"] > since]
        objects.sort(key=lambda o: (o["LastModified"], o["Key"]))
        for obj in objects:
            if obj.get("Size", 0) > cfg.posthog_max_object_bytes:
                raise ValueError(f"PostHog export {obj['Key']} is over the size cap")
            response = await s3.get_object(Bucket=cfg.posthog_event_s3_bucket, Key=obj["Key"])
            async with response["Body"] as stream:
                body = await stream.read()
            count = _parquet(body).metadata.num_rows
            yield RawPage(
                kind="events",
                body=body,
                item_count=count,
                url=f"s3://{cfg.posthog_event_s3_bucket}/{obj['Key']}",
            )


SOURCE = Source(
    name="posthog_views",
    etl_source=ETL_SOURCE,
    kinds=("events",),
    transform=transform,
    extract=extract,
    unavailable=unavailable,
    description="PostHog learning-resource view events (Parquet exports in S3)",
)

# When it runs (`learn schedules sync` creates these; cron in UTC).
SCHEDULES = (ingest_schedule("posthog_views", "0 */3 * * *", H3),)

"""PostHog views (Parquet exports in an S3 bucket): demo payloads for `learn up --demo` and the tests (see sources/_demo.py)."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

from sources._demo import (
    FUTURE,
    DemoServer,
    Response,
)
from sources.archives.demo import ARCHIVE_BUCKETS


def posthog_parquet(resource_ids: list[int], seed: int = 3) -> bytes:
    """One PostHog export: `uuid, timestamp, properties` (JSON text), zstd-compressed Parquet."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = random.Random(seed)
    rows = [
        {
            "uuid": f"50000000-0000-4000-8000-{n:012d}",
            "event": "lrd_view",
            "timestamp": FUTURE - timedelta(minutes=n),
            "properties": json.dumps({"resource": {"id": rng.choice(resource_ids)}}),
        }
        for n in range(40)
    ]
    table = pa.Table.from_pylist(rows)
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def s3_listing(bucket: str, objects: list[tuple[str, int, datetime]]) -> bytes:
    """An S3 ListObjectsV2 answer (one page) for (key, size, last modified) objects."""
    contents = "".join(
        f"<Contents><Key>{key}</Key><LastModified>{when:%Y-%m-%dT%H:%M:%S.000Z}</LastModified>"
        f'<ETag>"demo"</ETag><Size>{size}</Size><StorageClass>STANDARD</StorageClass></Contents>'
        for key, size, when in objects
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        f"<Name>{bucket}</Name><Prefix></Prefix><KeyCount>{len(objects)}</KeyCount>"
        f"<MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>{contents}</ListBucketResult>"
    ).encode()


def install_posthog_views(server: DemoServer, bucket: str = "demo-posthog") -> dict[str, str]:
    """A tiny S3 (ListObjectsV2 + GetObject, path style) answering one export object. The
    archive buckets answer empty listings too, for a stack whose S3_ENDPOINT_URL points here."""
    from email.utils import format_datetime

    key = "exports/2031/03/01/events.parquet.zst"
    body = posthog_parquet(list(range(1, 40)))
    modified = datetime(2031, 3, 1, tzinfo=UTC)
    xml = {"Content-Type": "application/xml"}
    server.route(f"/{bucket}", Response(200, s3_listing(bucket, [(key, len(body), modified)]), xml))
    for empty in ARCHIVE_BUCKETS:
        server.route(f"/{empty}", Response(200, s3_listing(empty, []), xml))
    server.route(
        f"/{bucket}/{key}",
        Response(
            200,
            body,
            {
                "Content-Type": "application/octet-stream",
                "Last-Modified": format_datetime(modified, usegmt=True),
                "ETag": '"demo"',
            },
        ),
    )
    return {"POSTHOG_EVENT_S3_BUCKET": bucket, "POSTHOG_EVENT_S3_ENDPOINT_URL": server.base_url}


install = install_posthog_views

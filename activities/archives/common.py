"""Plumbing the archive activities share: the S3 client, listing and bounded downloads, a work
directory that is always removed, the text extractor, and the quarantine of rejected archives."""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from learnflow.contracts.archives import FileFailureOut
from learnflow.errors import MissingBucket
from learnflow.models import Quarantined
from learnflow.settings import Settings, get_settings
from learnflow.stores import Stores
from learnflow.textextract import EmbeddedTikaExtractor, TextExtractor, TikaServerExtractor
from sources.archives.olx import FileFailure


def s3_client():
    import boto3
    from botocore.config import Config

    s = get_settings()
    return boto3.client(
        "s3",
        endpoint_url=s.s3_endpoint_url,
        aws_access_key_id=s.aws_access_key_id,
        aws_secret_access_key=s.aws_secret_access_key.get_secret_value(),
        region_name=s.aws_region,
        config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=10),
    )


def _client_error_code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def list_objects(
    s3, bucket: str, prefix: str, delimiter: str | None = None
) -> Iterator[dict[str, Any]]:
    from botocore.exceptions import ClientError

    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    if delimiter:
        kwargs["Delimiter"] = delimiter
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(**kwargs):
            if delimiter:
                for cp in page.get("CommonPrefixes", []):
                    yield {"Prefix": cp["Prefix"]}
            yield from page.get("Contents", [])
    except ClientError as exc:
        if _client_error_code(exc) == "NoSuchBucket":
            raise MissingBucket(f"bucket {bucket!r} does not exist") from exc
        raise


class Missing(Exception):
    pass


class TooLarge(Exception):
    pass


def download(s3, bucket: str, key: str, dest: Path, max_bytes: int) -> int:
    from botocore.exceptions import ClientError

    try:
        size = int(s3.head_object(Bucket=bucket, Key=key)["ContentLength"])
    except ClientError as exc:
        if _client_error_code(exc) in ("404", "NoSuchKey", "NotFound"):
            raise Missing(key) from exc
        raise
    if size > max_bytes:
        raise TooLarge(f"{size} bytes > {max_bytes}")
    s3.download_file(bucket, key, str(dest))
    return size


@lru_cache(maxsize=4)
def _extractor(endpoint: str, timeout_s: float, ocr_strategy: str, token: str | None, workers: int):
    """One extractor per configuration per process (the embedded one owns a thread pool)."""
    if endpoint:
        return TikaServerExtractor(
            endpoint, timeout_s=timeout_s, ocr_strategy=ocr_strategy, access_token=token
        )
    return EmbeddedTikaExtractor(timeout_s=timeout_s, max_workers=max(2, workers))


def text_extractor(s: Settings) -> TextExtractor:
    return _extractor(
        s.tika_server_endpoint,
        s.tika_timeout,
        s.tika_ocr_strategy,
        s.tika_access_token.get_secret_value() if s.tika_access_token else None,
        s.archive_extract_workers,
    )


@contextlib.contextmanager
def work_dir(s: Settings) -> Iterator[Path]:
    """A fresh directory for one archive (download + unpacked tree), always removed."""
    parent = s.archive_work_dir
    if parent is not None:
        Path(parent).mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix="learnflow-archive-", dir=parent))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def failures_out(items: Iterable[FileFailure], limit: int = 20) -> list[FileFailureOut]:
    return [FileFailureOut(key=f.key, reason=f.reason[:500]) for f in list(items)[:limit]]


async def quarantine(stores: Stores, source: str, key: str, reason: str) -> None:
    """A rejected archive leaves a row operators can list (`learn quarantine`), nothing else."""
    await stores.catalog.quarantine(
        f"archives/{source}",
        [
            Quarantined(
                source=source,
                item_key=key[:1000],
                reason=reason[:2000],
                raw=json.dumps({"key": key}),
            )
        ],
    )


async def deindex_content_files(stores: Stores, ids: list[int]) -> None:
    """Rows deleted outright (Canvas, the purge) are invisible to the watermark pass of
    `index_content_files`, so they leave the content-file index and vector store here, first."""
    if not ids:
        return
    from learnflow.stores.content_search import content_stores

    content = content_stores(stores.settings)
    await content.keyword.delete(ids)
    await content.vector.delete_where("content_file_id", ids)

"""Where raw pages and transformed batches live between activities: a directory or an S3 prefix.

Activities pass each other keys from here, never the bytes (Temporal payloads stay small).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit


class BlobStore(Protocol):
    async def put(self, key: str, data: bytes) -> str: ...
    async def get(self, key: str) -> bytes: ...
    async def delete_prefix(self, prefix: str) -> None:
        """Every blob under the folder `prefix`: `raw/x/run-1` never reaches `raw/x/run-10`."""
        ...


class DirectoryBlobStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"blob key escapes the store: {key!r}")
        return path

    async def put(self, key: str, data: bytes) -> str:
        path = self._path(key)

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_bytes(data)
            tmp.replace(path)

        await asyncio.to_thread(write)
        return key

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self._path(key).read_bytes)

    async def delete_prefix(self, prefix: str) -> None:
        import shutil

        path = self._path(prefix)
        await asyncio.to_thread(shutil.rmtree, path, True)


class S3BlobStore:
    def __init__(self, url: str, endpoint_url: str | None, key_id: str, secret: str, region: str):
        parts = urlsplit(url)
        self.bucket = parts.netloc
        self.prefix = parts.path.strip("/")
        self._kwargs = {
            "endpoint_url": endpoint_url,
            "aws_access_key_id": key_id,
            "aws_secret_access_key": secret,
            "region_name": region,
        }
        import aioboto3

        self._session = aioboto3.Session()

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    async def put(self, key: str, data: bytes) -> str:
        async with self._session.client("s3", **self._kwargs) as s3:
            await s3.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)
        return key

    async def get(self, key: str) -> bytes:
        async with self._session.client("s3", **self._kwargs) as s3:
            obj = await s3.get_object(Bucket=self.bucket, Key=self._key(key))
            return await obj["Body"].read()

    async def delete_prefix(self, prefix: str) -> None:
        async with self._session.client("s3", **self._kwargs) as s3:
            paginator = s3.get_paginator("list_objects_v2")
            # a folder, as on disk: a bare key prefix would also take runs whose ids extend it
            folder = self._key(prefix.rstrip("/") + "/")
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=folder):
                keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
                if keys:
                    await s3.delete_objects(Bucket=self.bucket, Delete={"Objects": keys})

"""Archive tests: the real archives in the shared fixtures, uploaded to moto S3, ingested by the
running app (Temporal + Postgres) with text from a REAL Tika server.

The Tika server sits behind a small counting proxy: the proxy counts every extraction request
(so a test can assert that an unchanged re-run calls Tika zero times without trusting the
code under test) and fails any request whose body carries `FAIL_MARKER` (a file Tika chokes on).
"""

from __future__ import annotations

import asyncio
import http.client
import io
import os
import tarfile
import threading
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from devstack.harness.tika import TikaServer
from learnflow.db.content_files import ContentFileStore
from learnflow.models import Resource, Run
from tests.conftest import TEST_JSON

CANVAS_DIR = TEST_JSON.parents[1] / "canvas-export" / "du-spcs-302-earth-and-its-processes"
OCW_SLUG = "16-01-unified-engineering-i-ii-iii-iv-fall-2005-spring-2006"
RUN_3X = "course-v1:MITxT+8.01.3x+3T2022"
ARCHIVE_3X = TEST_JSON / f"{RUN_3X}.tar.gz"
ARCHIVE_3X_NO_CHANGE = TEST_JSON / f"{RUN_3X}_no_change.tar.gz"
ARCHIVE_4X = TEST_JSON / "course-v1:MITxT+8.01.4x+3T2022.tar.gz"
ARCHIVE_EMPTY = TEST_JSON / "empty.tar.gz"
FAIL_MARKER = b"LEARNFLOW-TIKA-FAIL"

PREFIXES = {
    "mit_edx": "edxorg-raw-data/edxorg/raw_data/course_xml/",
    "mitxonline": "mitxonline/openedx/raw_data/course_xml/",
    "xpro": "xpro/openedx/raw_data/course_xml/",
    "oll": "open-learning-library/courses/",
    "canvas": "canvas/course_content/",
}
PLATFORMS = {"mit_edx": "edx", "mitxonline": "mitxonline", "xpro": "xpro", "oll": "oll"}


class CountingTikaProxy:
    """HTTP pass-through to the Tika server that counts extraction requests."""

    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream)
        self.calls = 0
        self.failed = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> CountingTikaProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                extraction = self.command == "PUT"
                if extraction:
                    with proxy._lock:
                        proxy.calls += 1
                if extraction and FAIL_MARKER in body:
                    with proxy._lock:
                        proxy.failed += 1
                    self.send_response(500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                conn = http.client.HTTPConnection(
                    proxy.upstream.hostname, proxy.upstream.port, timeout=120
                )
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                conn.request(self.command, self.path, body=body or None, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = _forward

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


@pytest.fixture(scope="session")
def tika_proxy() -> Iterator[CountingTikaProxy]:
    """A REAL Tika server (devstack.harness.tika) behind the counting proxy."""
    server = TikaServer()
    try:
        server.start()
    except Exception as exc:
        ci = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
        pytest.fail(f"could not start Tika (CI={ci}): {exc}", pytrace=False)
    assert server.url
    proxy = CountingTikaProxy(server.url).start()
    yield proxy
    proxy.stop()
    server.stop()


@dataclass
class ArchiveEnv:
    """One test's buckets and helpers; the app reads the settings from the environment."""

    app: Any
    s3: Any
    bucket: str
    ocw_bucket: str
    work_dir: Path
    tika: CountingTikaProxy
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    @property
    def store(self) -> ContentFileStore:
        return ContentFileStore(self.app.stores.pool)

    def put(self, key: str, data: bytes | Path, bucket: str | None = None) -> str:
        body = data.read_bytes() if isinstance(data, Path) else data
        self.s3.put_object(Bucket=bucket or self.bucket, Key=key, Body=body)
        return key

    async def course(
        self, source: str, run_id: str, readable_id: str | None = None, **fields: Any
    ) -> str:
        """A catalog course with one run (what the course catalogs create before archives)."""
        readable_id = readable_id or f"{run_id}-course"
        resource = Resource(
            readable_id=readable_id,
            platform=PLATFORMS[source],
            resource_type="course",
            etl_source=source,
            title=fields.pop("title", f"Course {run_id}"),
            runs=[Run(run_id=run_id)],
            **fields,
        )
        tag = f"test-archives-{self.tag}"
        await self.app.stores.catalog.upsert_resources(tag, [resource])
        await self.store.forget_etl_seen(tag)
        return readable_id

    async def run_of(self, source: str, run_id: str):
        runs = [r for r in await self.store.course_runs(source) if r.run_id == run_id]
        assert len(runs) == 1, runs
        return runs[0]

    async def execute(self, workflow: str, arg: Any, result_type: type, *, queue: str, **kw: Any):
        """Run a workflow on the app's workers and wait for it (bounded)."""
        handle = await self.app.client.start_workflow(
            workflow,
            arg,
            id=f"test-{workflow}-{uuid.uuid4().hex[:10]}",
            task_queue=queue,
            result_type=result_type,
            execution_timeout=timedelta(minutes=5),
            **kw,
        )
        return await asyncio.wait_for(handle.result(), 300)

    async def fetch(self, sql: str, *args: Any) -> list[dict]:
        async with self.app.stores.pool.acquire() as conn:
            return [dict(r) for r in await conn.fetch(sql, *args)]


@pytest.fixture
async def archive_env(app, s3_server, tika_proxy, monkeypatch, tmp_path) -> ArchiveEnv:
    tag = uuid.uuid4().hex[:8]
    bucket, ocw_bucket = f"archives-{tag}", f"ocw-{tag}"
    s3 = s3_server.client()
    s3.create_bucket(Bucket=bucket)
    s3.create_bucket(Bucket=ocw_bucket)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.setenv("COURSE_ARCHIVE_BUCKET_NAME", bucket)
    monkeypatch.setenv("OCW_LIVE_BUCKET", ocw_bucket)
    monkeypatch.setenv("ARCHIVE_WORK_DIR", str(work))
    monkeypatch.setenv("TIKA_SERVER_ENDPOINT", tika_proxy.url)
    monkeypatch.setenv("TIKA_TIMEOUT", "60")
    return ArchiveEnv(app, s3, bucket, ocw_bucket, work, tika_proxy, tag)


# -- archive builders (variants of the real fixtures) ---------------------------------------------


def tar_members(path: Path) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    with tarfile.open(path) as tar:
        return [
            (m, tar.extractfile(m).read() if m.isfile() else None)  # type: ignore[union-attr]
            for m in tar.getmembers()
        ]


def rebuild_tar(
    path: Path,
    *,
    drop: set[str] = frozenset(),  # type: ignore[assignment]
    replace: dict[str, bytes] | None = None,
    add: dict[str, bytes] | None = None,
) -> bytes:
    """The real archive with members dropped, replaced or added (headers otherwise kept)."""
    replace = dict(replace or {})
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as dst:
        for member, data in tar_members(path):
            if member.name in drop:
                continue
            if member.name in replace:
                data = replace.pop(member.name)
                member.size = len(data)
            dst.addfile(member, io.BytesIO(data) if data is not None else None)
        for name, data in (add or {}).items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1_700_000_000
            dst.addfile(info, io.BytesIO(data))
    return out.getvalue()


def build_imscc(edits: dict[str, bytes] | None = None) -> bytes:
    """The real Canvas export zipped as an `.imscc`, with members replaced or added."""
    edits = dict(edits or {})
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(p for p in CANVAS_DIR.rglob("*") if p.is_file()):
            rel = path.relative_to(CANVAS_DIR).as_posix()
            zf.writestr(rel, edits.pop(rel, path.read_bytes()))
        for rel, data in edits.items():
            zf.writestr(rel, data)
    return out.getvalue()

"""A stand-in for the Qdrant server: Qdrant's REST API (the part learnflow's `QDRANT_URL` path uses)
in its own process, over qdrant-client's local engine.

Why it exists: no Qdrant server can run on this machine (no binary on PyPI, npm or Debian, no
container engine; see shared/reference/local-infrastructure.md §5), and qdrant-client's local mode
and qdrant-edge are in-process only, so two processes (the embeddings worker writing, the search
service reading) cannot share one. This server is one process that both reach by URL, exactly as
they reach `qdrant:6333` under docker-compose, so the production code path
(`QdrantClientVectorStore(url=...)`: qdrant-client's REST client, JSON on the wire, collection and
payload-index creation, upsert, delete by ids and by filter, filtered query, count, facets) runs
across processes. What it does not give is the Qdrant server's engine (HNSW, on-disk segments,
its exact scoring under approximate search): search here is qdrant-client's exact local search.

    python -m devstack.harness.qdrant_rest --port 6333

Data is kept in memory (the process is a test's).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import re
import threading
import time
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel


def _dump(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, list):
        return [_dump(v) for v in value]
    return value


class QdrantRest:
    """Routes Qdrant REST calls to one in-memory `QdrantLocal` (serialised by a lock)."""

    def __init__(self) -> None:
        from qdrant_client import QdrantClient

        self.client = QdrantClient(location=":memory:")
        self.lock = threading.Lock()

    def handle(self, method: str, path: str, body: dict[str, Any]) -> Any:
        from qdrant_client.http import models as m

        c = self.client
        if method == "GET" and path == "/collections":
            return c.get_collections()
        match = re.fullmatch(r"/collections/([^/]+)(/.*)?", path)
        if match is None:
            raise LookupError(path)
        name, rest = match.group(1), match.group(2) or ""
        route = (method, rest)
        if route == ("GET", "/exists"):
            return {"exists": c.collection_exists(name)}
        if route == ("PUT", ""):
            req = m.CreateCollection.model_validate(body)
            return c.create_collection(name, vectors_config=req.vectors, metadata=req.metadata)
        if route == ("GET", ""):
            return c.get_collection(name)
        if route == ("DELETE", ""):
            return c.delete_collection(name)
        if route == ("PUT", "/index"):
            req = m.CreateFieldIndex.model_validate(body)
            return c.create_payload_index(name, req.field_name, req.field_schema)
        if route == ("PUT", "/points"):
            return c.upsert(name, m.PointsList.model_validate(body).points)
        if route == ("POST", "/points/delete"):
            selector = (
                m.FilterSelector.model_validate(body)
                if "filter" in body
                else m.PointIdsList.model_validate(body)
            )
            return c.delete(name, selector)
        if route == ("POST", "/points/query"):
            q = m.QueryRequest.model_validate(body)
            query = q.query.nearest if isinstance(q.query, m.NearestQuery) else q.query
            return c.query_points(
                name,
                query=query,
                query_filter=q.filter,
                limit=q.limit or 10,
                offset=q.offset,
                with_payload=q.with_payload if q.with_payload is not None else False,
                search_params=q.params,
            )
        if route == ("POST", "/points/count"):
            q = m.CountRequest.model_validate(body)
            return c.count(name, count_filter=q.filter, exact=True)
        if route == ("POST", "/facet"):
            q = m.FacetRequest.model_validate(body)
            return c.facet(name, key=q.key, facet_filter=q.filter, limit=q.limit or 10, exact=True)
        raise LookupError(path)


def serve(port: int, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    engine = QdrantRest()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _reply(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _handle(self) -> None:
            started = time.perf_counter()
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if self.command == "GET" and self.path == "/":  # Qdrant answers `/` unwrapped
                version = importlib.metadata.version("qdrant-client")
                self._reply(200, {"title": "qdrant - learnflow stand-in", "version": version})
                return
            try:
                body = json.loads(raw) if raw else {}
                with engine.lock:
                    result = engine.handle(self.command, urlsplit(self.path).path, body)
            except LookupError as exc:
                self._reply(404, {"status": {"error": f"Not found: {exc}"}, "time": 0})
                return
            except Exception as exc:  # a bad request, as Qdrant answers it
                self._reply(400, {"status": {"error": f"{type(exc).__name__}: {exc}"}, "time": 0})
                return
            took = time.perf_counter() - started
            self._reply(200, {"result": _dump(result), "status": "ok", "time": took})

        do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _handle

    httpd = ThreadingHTTPServer((host, port), Handler)
    httpd.daemon_threads = True
    return httpd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=6333)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    # Local mode warns that payload indexes and HNSW parameters do nothing there: known, above.
    warnings.filterwarnings("ignore", module="qdrant_client")
    warnings.filterwarnings("ignore", category=UserWarning)
    serve(args.port, args.host).serve_forever()


if __name__ == "__main__":
    main()

"""A local HTTP server that answers at the paths the real source APIs use.

Tests serve recorded payloads from ../shared/fixtures through it; `learn up --demo` serves generated
payloads. Routes map (method, path) to a handler; a handler may return a queue of responses so a
test can script faults (500, 429 with Retry-After, truncated bodies) before the good answer.
"""

from __future__ import annotations

import multiprocessing
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

# The request/response types are the demo generators' (sources/_demo.py), re-exported here.
from sources._demo import Handler as Handler
from sources._demo import Request as Request
from sources._demo import Response as Response


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """No traceback for a client that went away mid-answer: the fetch drops pages it
        requested ahead and no longer needs (HTTP_PAGE_PREFETCH). Any other error prints."""
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


class FixtureServer:
    """ThreadingHTTPServer on 127.0.0.1 with a route table; `base_url` once started."""

    def __init__(self, port: int = 0):
        self.routes: dict[tuple[str, str], Handler] = {}
        self.faults: dict[tuple[str, str], list[Response]] = {}
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        server = self

        class _H(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                req = Request(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length) if length else b"",
                )
                resp = server.dispatch(req)
                self.send_response(resp.status)
                for k, v in resp.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(resp.body)))
                self.end_headers()
                self.wfile.write(resp.body)

            do_GET = _handle
            do_POST = _handle
            do_PUT = _handle
            do_DELETE = _handle

        self._httpd = _Server(("127.0.0.1", port), _H)
        self._thread: threading.Thread | None = None
        self._process: multiprocessing.process.BaseProcess | None = None

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def route(self, path: str, handler: Handler | Response, method: str = "GET") -> None:
        if isinstance(handler, Response):
            fixed = handler
            self.routes[(method, path)] = lambda _req: fixed
        else:
            self.routes[(method, path)] = handler

    def inject(self, path: str, *responses: Response, method: str = "GET") -> None:
        """Answer the next requests to `path` with these responses, then the route again."""
        with self._lock:
            self.faults.setdefault((method, path), []).extend(responses)

    def dispatch(self, req: Request) -> Response:
        with self._lock:
            self.requests.append(req)
            queued = self.faults.get((req.method, req.path))
            if queued:
                return queued.pop(0)
        handler = self.routes.get((req.method, req.path))
        if handler is None:
            return Response.json({"detail": "Not found."}, status=404)
        try:
            return handler(req)
        except Exception as exc:
            return Response.json({"detail": f"fixture handler failed: {exc}"}, status=500)

    def answer_once(self) -> None:
        """Static upstream: each route answers a distinct request (path, query, authorization)
        by calling its handler once, then repeats that response. A benchmark's upstream then
        spends no CPU encoding a page again (the real APIs are other machines and caches)."""

        def remembered(handler: Handler) -> Handler:
            answers: dict[tuple, Response] = {}

            def answer(req: Request) -> Response:
                query = tuple(sorted((k, tuple(v)) for k, v in req.query.items()))
                key = (req.path, query, req.headers.get("authorization"), req.body)
                if key not in answers:
                    answers[key] = handler(req)
                return answers[key]

            return answer

        self.routes = {route: remembered(h) for route, h in self.routes.items()}

    def hits(self, path: str) -> int:
        with self._lock:
            return sum(1 for r in self.requests if r.path == path)

    def start(self) -> FixtureServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def start_process(self) -> FixtureServer:
        """Serve from a forked child process, with the routes installed so far (hits, faults and
        later routes stay in this process, unseen by it): a benchmark's upstream then takes
        another core, not the measured process's GIL."""
        self._process = multiprocessing.get_context("fork").Process(
            target=self._httpd.serve_forever, name="fixture-server", daemon=True
        )
        self._process.start()
        self._httpd.socket.close()  # the child's copy listens
        return self

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.join(timeout=10)
            return
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> FixtureServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

"""A tiny OpenAI-compatible HTTP server on 127.0.0.1 for tests: `/v1/embeddings` (deterministic
hashed vectors) and `/v1/chat/completions` with real SSE streaming (each chunk flushed)."""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

EMBED_DIM = 32


def fake_embedding(text: str) -> list[float]:
    """Bag of hashed words: texts sharing words get close vectors (enough to test retrieval)."""
    vec = [0.0] * EMBED_DIM
    for word in re.findall(r"\w+", text.lower()):
        vec[int(hashlib.md5(word.encode()).hexdigest(), 16) % EMBED_DIM] += 1.0
    return vec


class OpenAIServer:
    def __init__(self, answer_words: list[str] | None = None, cite_first: bool = True):
        self.requests: list[dict[str, Any]] = []
        self.answer_words = answer_words or ["Try", " course", " one", "."]
        self.cite_first = cite_first
        self.chunk_delay = 0.01
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                outer.requests.append({"path": self.path, "body": body})
                if self.path.endswith("/embeddings"):
                    inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
                    data = [
                        {"object": "embedding", "index": i, "embedding": fake_embedding(t)}
                        for i, t in enumerate(inputs)
                    ]
                    self._json(
                        {
                            "object": "list",
                            "data": data,
                            "model": body.get("model"),
                            "usage": {"prompt_tokens": 1, "total_tokens": 1},
                        }
                    )
                elif self.path.endswith("/chat/completions"):
                    self._chat(body)
                else:
                    self._json({"error": "not found"}, 404)

            def _json(self, data: Any, status: int = 200) -> None:
                raw = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _chat(self, body: dict) -> None:
                words = list(outer.answer_words)
                if outer.cite_first:
                    system = body["messages"][0]["content"]
                    ids = re.findall(r"^\[(\d+)\]", system, flags=re.M)
                    if ids:
                        words.append(f" See [{ids[0]}].")
                if not body.get("stream"):
                    self._json(
                        {
                            "id": "c1",
                            "object": "chat.completion",
                            "created": 0,
                            "model": body["model"],
                            "choices": [
                                {
                                    "index": 0,
                                    "finish_reason": "stop",
                                    "message": {"role": "assistant", "content": "".join(words)},
                                }
                            ],
                        }
                    )
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for i, word in enumerate([*words, None]):
                    delta = {"content": word} if word is not None else {}
                    if i == 0:
                        delta["role"] = "assistant"
                    chunk = {
                        "id": "c1",
                        "object": "chat.completion.chunk",
                        "created": 0,
                        "model": body["model"],
                        "choices": [
                            {
                                "index": 0,
                                "delta": delta,
                                "finish_reason": None if word is not None else "stop",
                            }
                        ],
                    }
                    self._chunk(f"data: {json.dumps(chunk)}\n\n".encode())
                    time.sleep(outer.chunk_delay)
                self._chunk(b"data: [DONE]\n\n")
                self._chunk(b"")

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> OpenAIServer:
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

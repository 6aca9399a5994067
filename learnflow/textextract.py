"""Text extraction behind one interface: embedded Tika (iscc-tika, native, no JVM) or a server.

MIT Learn sends every archive file to a Tika server (`tika.parser.from_buffer`). learnflow keeps
that path (`TikaServerExtractor`) and adds an embedded default (`EmbeddedTikaExtractor`) so tests,
the CLI and small deployments need no server. Both enforce a timeout and return `ExtractedText`.
"""

from __future__ import annotations

import mimetypes
import multiprocessing
import os
import re
import shutil
import signal
import tempfile
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

DEFAULT_TIMEOUT_S = 60.0  # MIT Learn's TIKA_TIMEOUT
DEFAULT_MAX_CHARS = 20_000_000  # Tika's own default write limit (100k chars) truncates long PDFs


class TextExtractionError(Exception):
    """The file could not be turned into text (corrupt, unsupported, server error)."""


class TextExtractionTimeout(TextExtractionError):
    """Extraction took longer than the extractor's timeout."""


@dataclass(frozen=True)
class ExtractedText:
    text: str
    title: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    ocr_used: bool = False


class TextExtractor(ABC):
    """Turn the bytes of one file into text plus a title and Tika's metadata."""

    @abstractmethod
    def extract(self, data: bytes, filename: str, content_type: str | None = None) -> ExtractedText:
        """Extract text; raise `TextExtractionError` (or its timeout subclass) on failure."""

    def close(self) -> None:  # noqa: B027 - optional hook, most extractors hold nothing
        """Release resources (threads, sessions)."""


def guess_content_type(filename: str) -> str | None:
    """The mimetype MIT Learn sends as Content-Type (`mimetypes` by extension)."""
    return mimetypes.guess_type(filename, strict=False)[0]


def _first(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def _title_from_metadata(metadata: dict[str, Any]) -> str | None:
    return _first(metadata.get("dc:title")) or _first(metadata.get("title"))


def _suffix_for(filename: str, content_type: str | None) -> str:
    suffix = os.path.splitext(os.path.basename(filename))[1].lower()
    if re.fullmatch(r"\.[a-z0-9]{1,8}", suffix):
        return suffix
    guessed = mimetypes.guess_extension(content_type.split(";")[0]) if content_type else None
    return guessed or ""


def _is_pdf(data: bytes, filename: str, content_type: str | None) -> bool:
    return (
        data[:5] == b"%PDF-"
        or filename.lower().endswith(".pdf")
        or (content_type or "").startswith("application/pdf")
    )


_PER_PROCESS: dict[tuple[int, str], tuple[Any, Any]] = {}


def parse_path(path: str, use_ocr: bool, max_chars: int, ocr_language: str) -> tuple[str, dict]:
    """iscc-tika on one file, in the calling process (the parse child's default parse).

    From a file named with the real suffix: iscc-tika's byte API cannot take a Content-Type, and
    without a name an HTML fragment is detected as text/plain (tags kept). One plain and one OCR
    Extractor per process (the setters return new objects)."""
    pair = _PER_PROCESS.get((max_chars, ocr_language))
    if pair is None:
        from iscc_tika import Extractor, PdfOcrStrategy, PdfParserConfig, TesseractOcrConfig

        plain = Extractor().set_extract_string_max_length(max_chars)
        ocr = plain.set_ocr_config(
            TesseractOcrConfig().set_skip_ocr(False).set_language(ocr_language)
        ).set_pdf_config(PdfParserConfig().set_ocr_strategy(PdfOcrStrategy.OCR_AND_TEXT_EXTRACTION))
        pair = _PER_PROCESS[(max_chars, ocr_language)] = (plain, ocr)
    text, metadata = (pair[1] if use_ocr else pair[0]).extract_file_to_string(path)
    return text or "", dict(metadata or {})


ParseFn = Callable[[str, bool, int, str], tuple[str, dict]]


def _parse_child(conn: Connection, parse: ParseFn, max_chars: int, ocr_language: str) -> None:
    """A parse process: parses the files its parent names, one at a time, until the pipe closes."""
    # A terminal's Ctrl-C reaches the whole foreground group; stopping is the parent's to do
    # (it closes the pipe, or kills a parse that overran), so the child would only print a
    # KeyboardInterrupt traceback into `learn up`'s output.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            path, use_ocr = conn.recv()
        except (EOFError, OSError):
            return
        try:
            conn.send(("ok", *parse(path, use_ocr, max_chars, ocr_language)))
        except Exception as exc:  # iscc-tika raises TypeError/RuntimeError wrapping Java errors
            conn.send(("error", f"{type(exc).__name__}: {exc}", {}))


@dataclass
class _Child:
    process: BaseProcess
    conn: Connection

    def kill(self) -> None:
        self.process.kill()
        self.process.join(5)
        self.conn.close()


class EmbeddedTikaExtractor(TextExtractor):
    """Tika compiled to native code (`iscc-tika`), each parse in a child process with a timeout.

    OCR: image-only PDFs (no text layer) are re-parsed with Tesseract when `ocr` is true, or when
    `ocr` is None (default) and a `tesseract` binary is on PATH; otherwise they come back textless.
    A native parse holds the GIL, so a thread running it could not be timed out (the caller
    cannot even wake up) nor stopped: parses run in up to `max_workers` spawned child processes
    (reused), and one that overruns `timeout_s` is killed and raises `TextExtractionTimeout`.
    `parse` replaces the child's parse function (module-level, so it pickles by name).
    """

    def __init__(
        self,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        ocr: bool | None = None,
        ocr_language: str = "eng",
        max_chars: int = DEFAULT_MAX_CHARS,
        max_workers: int = 4,
        parse: ParseFn = parse_path,
    ) -> None:
        import iscc_tika  # noqa: F401 - fail early (at construction) when the wheel is missing

        self.timeout_s = timeout_s
        self.ocr_enabled = shutil.which("tesseract") is not None if ocr is None else ocr
        self.ocr_language = ocr_language
        self.max_chars = max_chars
        self._parse = parse
        # spawn, not fork: the parent runs gRPC/Temporal threads that a fork would copy mid-state.
        self._ctx = multiprocessing.get_context("spawn")
        self._slots = threading.BoundedSemaphore(max_workers)
        self._lock = threading.Lock()
        self._idle: list[_Child] = []

    def _checkout(self) -> _Child:
        with self._lock:
            while self._idle:
                child = self._idle.pop()
                if child.process.is_alive():
                    return child
                child.kill()
        parent, theirs = self._ctx.Pipe()
        args = (theirs, self._parse, self.max_chars, self.ocr_language)
        process = self._ctx.Process(target=_parse_child, args=args, name="tika", daemon=True)
        process.start()
        theirs.close()
        return _Child(process, parent)

    def _run(self, data: bytes, suffix: str, use_ocr: bool) -> tuple[str, dict[str, Any]]:
        with (
            self._slots,
            tempfile.NamedTemporaryFile(prefix="learnflow-tika-", suffix=suffix) as tmp,
        ):
            tmp.write(data)
            tmp.flush()
            child = self._checkout()
            try:
                child.conn.send((tmp.name, use_ocr))
                if not child.conn.poll(self.timeout_s):
                    child.kill()
                    raise TextExtractionTimeout(
                        f"tika parse exceeded {self.timeout_s}s (TIKA_TIMEOUT): parse process killed"
                    )
                status, text, metadata = child.conn.recv()
            except (EOFError, OSError) as exc:
                child.kill()
                raise TextExtractionError(
                    f"tika parse process died (exit code {child.process.exitcode})"
                ) from exc
            with self._lock:
                self._idle.append(child)
        if status != "ok":
            raise TextExtractionError(f"tika parse failed: {text}")
        return text, metadata

    def extract(self, data: bytes, filename: str, content_type: str | None = None) -> ExtractedText:
        if not data:
            return ExtractedText(text="")
        suffix = _suffix_for(filename, content_type)
        text, metadata = self._run(data, suffix, use_ocr=False)
        ocr_used = False
        if not text.strip() and self.ocr_enabled and _is_pdf(data, filename, content_type):
            text, metadata = self._run(data, suffix, use_ocr=True)
            ocr_used = True
        return ExtractedText(
            text=text, title=_title_from_metadata(metadata), metadata=metadata, ocr_used=ocr_used
        )

    def close(self) -> None:
        """Stop the idle parse processes (closing the pipe ends their loop)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for child in idle:
            child.conn.close()
            child.process.join(5)
            if child.process.is_alive():
                child.kill()


class TikaServerExtractor(TextExtractor):
    """MIT Learn's path: the `tika` REST client against a running Tika server (`PUT /rmeta/text`).

    The client reads `TIKA_CLIENT_ONLY` and `TIKA_SERVER_ENDPOINT` from the environment when
    `tika` is first imported and otherwise tries to download and start a server jar. The
    constructor therefore sets both variables *before* importing it, and also sets the module
    attribute `tika.tika.TikaClientOnly` in case `tika` was imported earlier. This is the one
    place learnflow writes the environment, on purpose: it is the client's only switch.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        ocr_strategy: str = "no_ocr",
        access_token: str | None = None,
    ) -> None:
        if not endpoint:
            raise ValueError("TikaServerExtractor needs a server endpoint")
        self.endpoint = endpoint.rstrip("/")
        self.timeout_s = timeout_s
        self.ocr_strategy = ocr_strategy
        self.access_token = access_token
        os.environ["TIKA_CLIENT_ONLY"] = "1"
        os.environ["TIKA_SERVER_ENDPOINT"] = self.endpoint
        import tika.tika
        from tika import parser

        tika.tika.TikaClientOnly = True
        self._parser = parser

    def extract(self, data: bytes, filename: str, content_type: str | None = None) -> ExtractedText:
        if not data:
            return ExtractedText(text="")
        headers = {"X-Tika-PDFOcrStrategy": self.ocr_strategy}
        content_type = content_type or guess_content_type(filename)
        if content_type:
            headers["Content-Type"] = content_type
        if self.access_token:
            headers["X-Access-Token"] = self.access_token
        try:
            parsed = self._parser.from_buffer(
                data,
                serverEndpoint=self.endpoint,
                headers=headers,
                requestOptions={"timeout": self.timeout_s, "verify": True},
            )
        except Exception as exc:
            name = type(exc).__name__
            if "Timeout" in name:
                raise TextExtractionTimeout(f"tika server timed out: {exc}") from exc
            raise TextExtractionError(f"tika server call failed: {name}: {exc}") from exc
        status = parsed.get("status")
        if status != 200:
            raise TextExtractionError(f"tika server answered {status}")
        metadata = parsed.get("metadata") or {}
        ocr_pages = _first(metadata.get("pdf:ocrPageCount"))
        return ExtractedText(
            text=parsed.get("content") or "",
            title=_title_from_metadata(metadata),
            metadata=metadata,
            ocr_used=bool(ocr_pages and ocr_pages != "0"),
        )


def make_text_extractor(kind: str = "embedded", endpoint: str | None = None) -> TextExtractor:
    """`embedded` (iscc-tika, default) or `server` (needs `endpoint`, e.g. http://tika:9998/)."""
    if kind == "embedded":
        return EmbeddedTikaExtractor()
    if kind == "server":
        if not endpoint:
            raise ValueError("a tika server extractor needs an endpoint")
        return TikaServerExtractor(endpoint)
    raise ValueError(f"unknown text extractor kind {kind!r} (embedded|server)")

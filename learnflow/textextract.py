"""Text extraction behind one interface: embedded Tika (iscc-tika, native, no JVM) or a server.

MIT Learn sends every archive file to a Tika server (`tika.parser.from_buffer`). learnflow keeps
that path (`TikaServerExtractor`) and adds an embedded default (`EmbeddedTikaExtractor`) so tests,
the CLI and small deployments need no server. Both enforce a timeout and return `ExtractedText`.
"""

from __future__ import annotations

import concurrent.futures
import mimetypes
import os
import re
import shutil
import tempfile
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
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


class EmbeddedTikaExtractor(TextExtractor):
    """Tika compiled to native code (`iscc-tika`), run in worker threads with a timeout.

    OCR: image-only PDFs (no text layer) are re-parsed with Tesseract when `ocr` is true, or when
    `ocr` is None (default) and a `tesseract` binary is on PATH; otherwise they come back textless.
    A parse that overruns `timeout_s` raises `TextExtractionTimeout`; its thread cannot be killed,
    so the pool is replaced and the stuck thread is abandoned (it ends when the parse ends).
    """

    def __init__(
        self,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        ocr: bool | None = None,
        ocr_language: str = "eng",
        max_chars: int = DEFAULT_MAX_CHARS,
        max_workers: int = 4,
    ) -> None:
        import iscc_tika  # noqa: F401 - fail early (at construction) when the wheel is missing

        self.timeout_s = timeout_s
        self.ocr_enabled = shutil.which("tesseract") is not None if ocr is None else ocr
        self.ocr_language = ocr_language
        self.max_chars = max_chars
        self._max_workers = max_workers
        self._local = threading.local()
        self._lock = threading.Lock()
        self._pool = self._new_pool()

    def _new_pool(self) -> concurrent.futures.ThreadPoolExecutor:
        return concurrent.futures.ThreadPoolExecutor(
            max_workers=self._max_workers, thread_name_prefix="tika"
        )

    def _extractors(self) -> tuple[Any, Any]:
        """One plain and one OCR Extractor per thread (the setters return new objects)."""
        pair = getattr(self._local, "pair", None)
        if pair is None:
            from iscc_tika import (
                Extractor,
                PdfOcrStrategy,
                PdfParserConfig,
                TesseractOcrConfig,
            )

            plain = Extractor().set_extract_string_max_length(self.max_chars)
            ocr = plain.set_ocr_config(
                TesseractOcrConfig().set_skip_ocr(False).set_language(self.ocr_language)
            ).set_pdf_config(
                PdfParserConfig().set_ocr_strategy(PdfOcrStrategy.OCR_AND_TEXT_EXTRACTION)
            )
            pair = (plain, ocr)
            self._local.pair = pair
        return pair

    def _parse(self, data: bytes, suffix: str, use_ocr: bool) -> tuple[str, dict[str, Any]]:
        """Parse from a temp file named with the real suffix: iscc-tika's byte API cannot take a
        Content-Type, and without a name an HTML fragment is detected as text/plain (tags kept)."""
        plain, ocr = self._extractors()
        extractor = ocr if use_ocr else plain
        try:
            with tempfile.NamedTemporaryFile(prefix="learnflow-tika-", suffix=suffix) as tmp:
                tmp.write(data)
                tmp.flush()
                text, metadata = extractor.extract_file_to_string(tmp.name)
        except Exception as exc:  # iscc-tika raises TypeError/RuntimeError wrapping Java errors
            raise TextExtractionError(f"tika parse failed: {exc}") from exc
        return text or "", dict(metadata or {})

    def _run(self, data: bytes, suffix: str, use_ocr: bool) -> tuple[str, dict[str, Any]]:
        with self._lock:
            future = self._pool.submit(self._parse, data, suffix, use_ocr)
        try:
            return future.result(timeout=self.timeout_s)
        except concurrent.futures.TimeoutError as exc:
            with self._lock:  # abandon the stuck worker; later calls get fresh threads
                self._pool.shutdown(wait=False)
                self._pool = self._new_pool()
            raise TextExtractionTimeout(f"tika parse exceeded {self.timeout_s}s") from exc
        except concurrent.futures.CancelledError as exc:
            raise TextExtractionError("tika parse was cancelled") from exc

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
        self._pool.shutdown(wait=False, cancel_futures=True)


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

"""Text extraction: embedded iscc-tika (real engine) and the Tika REST client (fake server)."""

from __future__ import annotations

import concurrent.futures
import io
import json
import os
import shutil
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psutil
import pytest

from learnflow.textextract import (
    EmbeddedTikaExtractor,
    ExtractedText,
    TextExtractionError,
    TextExtractionTimeout,
    TextExtractor,
    TikaServerExtractor,
    make_text_extractor,
)
from tests.helpers.fixtures import MITLEARN
from tests.helpers.stuck_parse import MARKER, PID_DIR_ENV, stuck_on_marker

NOTES_PDF = MITLEARN / "test_pdfs" / "notes.pdf"
HAS_TESSERACT = shutil.which("tesseract") is not None


def make_pdf(lines: list[str], title: str | None = None) -> bytes:
    """A minimal valid one-page PDF with a text layer and an Info title."""
    stream = (
        "BT /F1 12 Tf 72 720 Td " + " ".join(f"({line}) Tj 0 -16 Td" for line in lines) + " ET"
    ).encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 5 0 R "
        b"/Resources << /Font << /F1 4 0 R >> >> >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        f"<< /Title ({title or ''}) /Author (A. Author) >>".encode(),
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % i + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for off in offsets:
        out.write(b"%010d 00000 n \n" % off)
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R /Info 6 0 R >>\nstartxref\n%d\n%%%%EOF\n"
        % (len(objects) + 1, xref)
    )
    return out.getvalue()


@pytest.fixture(scope="module")
def tika():
    extractor = EmbeddedTikaExtractor(ocr=False)
    yield extractor
    extractor.close()


def test_is_one_interface(tika):
    assert isinstance(tika, TextExtractor)
    assert isinstance(make_text_extractor("embedded"), EmbeddedTikaExtractor)
    with pytest.raises(ValueError):
        make_text_extractor("server")
    with pytest.raises(ValueError):
        make_text_extractor("nope")


def test_pdf_built_in_test(tika):
    pdf = make_pdf(["Rotational dynamics lecture notes", "Torque and angular momentum"], "Notes 7")
    result = tika.extract(pdf, "notes7.pdf", "application/pdf")
    assert "Rotational dynamics lecture notes" in result.text
    assert "Torque and angular momentum" in result.text
    assert result.title == "Notes 7"
    assert result.ocr_used is False
    assert result.metadata["xmpTPg:NPages"] == ["1"]


def test_html_built_in_test(tika):
    html = (
        b"<html><head><title>Week 3: Torque</title><meta name='author' content='Prof X'>"
        b"</head><body><h1>Torque</h1><p>Torque is r cross F.</p>"
        b"<script>var secret = 1;</script></body></html>"
    )
    result = tika.extract(html, "week3.html", "text/html")
    assert result.title == "Week 3: Torque"
    assert "Torque is r cross F." in result.text
    assert "secret" not in result.text


def test_html_fragment_is_parsed_as_html_by_its_name(tika):
    fragment = b"<section><h2>About</h2><p>Course description.</p></section>"
    result = tika.extract(fragment, "overview.html")
    assert "Course description." in result.text
    assert "<section>" not in result.text


def test_image_only_pdf_is_textless_without_ocr(tika):
    result = tika.extract(NOTES_PDF.read_bytes(), "notes.pdf", "application/pdf")
    assert result.text.strip() == ""
    assert result.ocr_used is False


@pytest.mark.skipif(not HAS_TESSERACT, reason="tesseract not on PATH")
def test_image_only_pdf_with_ocr():
    extractor = EmbeddedTikaExtractor(ocr=True)
    try:
        result = extractor.extract(NOTES_PDF.read_bytes(), "notes.pdf", "application/pdf")
    finally:
        extractor.close()
    assert result.ocr_used is True
    assert "Learn" in result.text


def test_ocr_is_not_used_for_pdfs_with_text():
    extractor = EmbeddedTikaExtractor(ocr=True)
    try:
        result = extractor.extract(make_pdf(["Has a text layer"]), "t.pdf")
    finally:
        extractor.close()
    assert "Has a text layer" in result.text and result.ocr_used is False


def test_empty_and_corrupt(tika):
    assert tika.extract(b"", "empty.pdf") == ExtractedText(text="")
    with pytest.raises(TextExtractionError):
        tika.extract(b"%PDF-1.7\n this is not really a pdf \x00\x01", "broken.pdf")


def test_srt_keeps_cues_for_the_walker_to_strip(tika):
    srt = b"1\n00:00:01,000 --> 00:00:02,000\nHello there\n"
    assert "Hello there" in tika.extract(srt, "a.srt", "application/x-subrip").text


def test_threads(tika):
    pdfs = [make_pdf([f"document number {i}"]) for i in range(8)]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        texts = list(pool.map(lambda b: tika.extract(b, "d.pdf").text, pdfs))
    assert all(f"document number {i}" in t for i, t in enumerate(texts))


def test_embedded_timeout_kills_a_parse_holding_the_gil(tmp_path, monkeypatch):
    """A parse stuck in native code holding the GIL: the caller still gets its timeout on time,
    the parse process is killed (no abandoned thread burning a core), and the next parse works."""
    monkeypatch.setenv(PID_DIR_ENV, str(tmp_path))
    extractor = EmbeddedTikaExtractor(ocr=False, timeout_s=2.0, parse=stuck_on_marker)
    try:
        assert extractor.extract(b"warm up", "w.txt").text.strip() == "warm up"
        start = time.monotonic()
        with pytest.raises(TextExtractionTimeout, match="killed"):
            extractor.extract(MARKER + b" never parsed", "stuck.txt")
        assert time.monotonic() - start < 8
        pids = [int(p.read_text()) for p in tmp_path.glob("*.pid")]
        assert len(pids) == 1 and not any(psutil.pid_exists(pid) for pid in pids)
        assert extractor.extract(b"plain words", "ok.txt").text.strip() == "plain words"
    finally:
        extractor.close()


def test_a_terminal_ctrl_c_does_not_reach_the_parse_processes():
    """Ctrl-C signals the whole foreground group, parse processes included: stopping them is the
    extractor's job, so a parse process ignores SIGINT (it printed a KeyboardInterrupt traceback
    into `learn up`'s output and died) and keeps serving until its pipe closes."""

    def parse_processes() -> list[psutil.Process]:  # not multiprocessing's resource tracker
        return [c for c in psutil.Process().children() if "spawn_main" in " ".join(c.cmdline())]

    extractor = EmbeddedTikaExtractor(ocr=False, timeout_s=30.0)
    before = {c.pid for c in parse_processes()}
    try:
        assert extractor.extract(b"first words", "a.txt").text.strip() == "first words"
        (child,) = [c for c in parse_processes() if c.pid not in before]
        os.kill(child.pid, signal.SIGINT)
        # The answer comes from the same process: it was signalled before it read this request.
        assert extractor.extract(b"second words", "b.txt").text.strip() == "second words"
        assert child.is_running() and child.status() != psutil.STATUS_ZOMBIE
        assert [c for c in parse_processes() if c.pid not in before] == [child]
    finally:
        extractor.close()


# -- Tika server client against a fake server ------------------------------------------------


class _FakeTika(BaseHTTPRequestHandler):
    requests: list[dict] = []
    mode = "ok"

    def do_PUT(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
        if type(self).mode == "slow":
            time.sleep(1.5)
        if type(self).mode == "error":
            self.send_response(422)
            self.end_headers()
            return
        payload = json.dumps(
            [
                {
                    "X-TIKA:content": "server text",
                    "dc:title": "Server Title",
                    "Content-Type": "application/pdf",
                    "pdf:ocrPageCount": "0",
                }
            ]
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_tika(monkeypatch):
    monkeypatch.delenv("TIKA_CLIENT_ONLY", raising=False)
    monkeypatch.delenv("TIKA_SERVER_ENDPOINT", raising=False)
    _FakeTika.requests = []
    _FakeTika.mode = "ok"
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeTika)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_server_extractor(fake_tika, monkeypatch):
    import os

    extractor = TikaServerExtractor(fake_tika, timeout_s=5, access_token="tok")
    assert os.environ["TIKA_CLIENT_ONLY"] == "1"
    assert os.environ["TIKA_SERVER_ENDPOINT"] == fake_tika
    import tika.tika

    def no_jar(*args, **kwargs):
        raise AssertionError("tried to fetch or start a Tika server jar")

    monkeypatch.setattr(tika.tika, "getRemoteJar", no_jar)
    monkeypatch.setattr(tika.tika, "startServer", no_jar)
    result = extractor.extract(b"%PDF-1.4 bytes", "a.pdf")
    assert result == ExtractedText(
        text="server text",
        title="Server Title",
        metadata={
            "dc:title": "Server Title",
            "Content-Type": "application/pdf",
            "pdf:ocrPageCount": "0",
        },
        ocr_used=False,
    )
    (req,) = _FakeTika.requests
    assert req["path"] == "/rmeta/text"
    assert req["headers"]["Content-Type"] == "application/pdf"
    assert req["headers"]["X-Tika-PDFOcrStrategy"] == "no_ocr"
    assert req["headers"]["X-Access-Token"] == "tok"
    assert req["body"] == b"%PDF-1.4 bytes"
    assert isinstance(make_text_extractor("server", fake_tika), TikaServerExtractor)


def test_server_errors_and_timeout(fake_tika):
    extractor = TikaServerExtractor(fake_tika, timeout_s=0.5)
    _FakeTika.mode = "error"
    with pytest.raises(TextExtractionError, match="422"):
        extractor.extract(b"x", "a.txt")
    _FakeTika.mode = "slow"
    with pytest.raises(TextExtractionTimeout):
        extractor.extract(b"x", "a.txt")
    assert extractor.extract(b"", "a.txt").text == ""

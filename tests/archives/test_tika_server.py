"""The Python `tika` client extracts text through a real Tika 3.3.1 server."""

from __future__ import annotations

import json
import urllib.request

import pytest

from devstack.harness.tika import TIKA_VERSION, TikaServer, tika_client_env
from learnflow.settings import get_settings

pytestmark = pytest.mark.tika


def make_pdf(lines: list[str], title: str = "Learnflow test") -> bytes:
    """A minimal valid one-page PDF with Helvetica text (offsets computed, so xref is exact)."""
    text_ops = ["BT", "/F1 14 Tf", "72 720 Td", "16 TL"]
    for line in lines:
        escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        text_ops.append(f"({escaped}) Tj T*")
    text_ops.append("ET")
    stream = "\n".join(text_ops).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Title (" + title.encode("latin-1") + b") /Author (learnflow) >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 6 0 R >>\n" % (len(objects) + 1)
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def test_server_answers_get_tika(tika_server: TikaServer, tika_url: str) -> None:
    with urllib.request.urlopen(f"{tika_url}/tika", timeout=10) as resp:
        assert resp.status == 200
        body = resp.read().decode()
    assert body.startswith("This is Tika Server")
    assert TIKA_VERSION in body
    assert tika_url.startswith("http://127.0.0.1:")


def test_client_env_helper() -> None:
    assert tika_client_env("http://127.0.0.1:9998/") == {
        "TIKA_CLIENT_ONLY": "1",
        "TIKA_SERVER_ENDPOINT": "http://127.0.0.1:9998",
    }


def test_client_is_in_client_only_mode(tika_url: str) -> None:
    import tika.tika

    assert tika.tika.TikaClientOnly
    assert tika.tika.ServerEndpoint == tika_url


def test_client_extracts_html(tika_url: str) -> None:
    from tika import parser

    html = (
        "<html><head><title>Intro to ML</title><meta name='author' content='MIT OCW'></head>"
        "<body><h1>Machine learning</h1><p>Gradient descent &amp; friends.</p>"
        "<script>var x = 'not text';</script></body></html>"
    )
    parsed = parser.from_buffer(html.encode(), serverEndpoint=tika_url)
    assert parsed["status"] == 200
    content = parsed["content"]
    assert "Machine learning" in content
    assert "Gradient descent & friends." in content
    assert "not text" not in content
    assert parsed["metadata"]["dc:title"] == "Intro to ML"
    assert parsed["metadata"]["dc:creator"] == "MIT OCW"
    assert parsed["metadata"]["Content-Type"].startswith("text/html")


def test_client_extracts_generated_pdf(tika_url: str) -> None:
    from tika import parser

    pdf = make_pdf(["Unified Engineering I", "Thermodynamics (16.01)"], title="UE notes")
    parsed = parser.from_buffer(pdf, serverEndpoint=tika_url)
    assert parsed["status"] == 200
    assert "Unified Engineering I" in parsed["content"]
    assert "Thermodynamics (16.01)" in parsed["content"]
    assert parsed["metadata"]["Content-Type"] == "application/pdf"
    assert parsed["metadata"]["dc:title"] == "UE notes"
    assert parsed["metadata"]["xmpTPg:NPages"] == "1"


def test_client_image_only_pdf_has_no_text(tika_url: str) -> None:
    """MIT Learn's test_pdfs/notes.pdf is scanned handwriting: no text layer (OCR is off)."""
    from tika import parser

    path = get_settings().reference_data_dir / "test_pdfs" / "notes.pdf"
    assert path.is_file(), f"fixture missing: {path}"
    parsed = parser.from_file(str(path), serverEndpoint=tika_url)
    assert parsed["status"] == 200
    assert parsed["metadata"]["Content-Type"] == "application/pdf"
    assert not (parsed["content"] or "").strip()


def test_rmeta_json_shape(tika_url: str) -> None:
    """The raw /rmeta/text answer has tika-server's shape: a list of metadata maps."""
    req = urllib.request.Request(
        f"{tika_url}/rmeta/text",
        data=make_pdf(["hello rmeta"]),
        method="PUT",
        headers={"Accept": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        docs = json.loads(resp.read())
    assert isinstance(docs, list) and len(docs) == 1
    assert "hello rmeta" in docs[0]["X-TIKA:content"]
    assert "org.apache.tika.parser.pdf.PDFParser" in docs[0]["X-TIKA:Parsed-By"]

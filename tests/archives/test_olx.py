"""The OLX walker on the real 8.01.3x export and on a richer course built from its shape."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import psutil
import pytest

from learnflow.textextract import (
    EmbeddedTikaExtractor,
    ExtractedText,
    TextExtractionError,
    TextExtractor,
)
from sources.archives.olx import (
    VALID_TEXT_FILE_TYPES,
    edx_module_id,
    extract_olx_archive,
    prettify_filename,
    resolve_title,
    text_from_sjson,
    text_from_srt,
    url_for_module,
    walk_olx,
)
from tests.helpers.fixtures import TEST_JSON
from tests.helpers.stuck_parse import MARKER, PID_DIR_ENV, stuck_on_marker

FIXTURES = TEST_JSON
OLX = FIXTURES / "course-v1:MITxT+8.01.3x+3T2022.tar.gz"
OLX_NO_CHANGE = FIXTURES / "course-v1:MITxT+8.01.3x+3T2022_no_change.tar.gz"
RUN = "course-v1:MITxT+8.01.3x+3T2022"
BASE = "https://courses.example.edu"
HTML_ID = "0d0c4f7e-3f5b-4a8b-9d55-2f5d6f3b1a10"
PROBLEM_ID = "7a1c2b3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


class CountingExtractor(TextExtractor):
    """Wraps a real extractor and counts calls (and can be told to fail on a filename)."""

    def __init__(self, inner: TextExtractor, fail_on: str | None = None) -> None:
        self.inner = inner
        self.calls: list[str] = []
        self.fail_on = fail_on

    def extract(self, data, filename, content_type=None) -> ExtractedText:
        self.calls.append(filename)
        if self.fail_on and filename == self.fail_on:
            raise TextExtractionError("corrupt file")
        return self.inner.extract(data, filename, content_type)


@pytest.fixture(scope="module")
def tika():
    extractor = EmbeddedTikaExtractor(ocr=False)
    yield extractor
    extractor.close()


def make_pdf(lines: list[str], title: str | None = None) -> bytes:
    """A minimal valid one-page PDF with a text layer (and an Info title)."""
    text_ops = (
        "BT /F1 12 Tf 72 720 Td " + " ".join(f"({line}) Tj 0 -16 Td" for line in lines) + " ET"
    )
    stream = text_ops.encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 5 0 R "
        b"/Resources << /Font << /F1 4 0 R >> >> >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        f"<< /Title ({title or ''}) /Producer (learnflow tests) >>".encode(),
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


SRT = (
    "1\n00:00:01,000 --> 00:00:03,500\nWelcome to rotational dynamics.\n\n"
    "2\n00:00:04,000 --> 00:00:06,000\nNewton wrote this in 1687\nand it still holds.\n\n"
    "3\n00:00:06,500 --> 00:00:08,000\nTorque equals r cross F.\n"
)


def rich_course(path: Path, replace: dict[str, bytes] | None = None) -> Path:
    """The real 8.01.3x members plus the block types a real course has (`replace`: other bytes
    for some of the added members)."""
    extra = {
        f"course/html/{HTML_ID}.xml": (
            f'<html filename="{HTML_ID}" display_name="Angular Momentum"/>'
        ).encode(),
        f"course/html/{HTML_ID}.html": (
            b"<h2>Angular momentum</h2><p>Angular momentum is conserved.</p>"
        ),
        f"course/problem/{PROBLEM_ID}.xml": (
            b'<problem display_name="Torque Quiz"><p>What is the torque on the wheel?</p></problem>'
        ),
        "course/video/lecture1.xml": (
            b'<video url_name="lecture1" display_name="Lecture 1">'
            b'<transcript language="en" src="lecture1-en.srt"/></video>'
        ),
        "course/static/lecture1-en.srt": SRT.encode(),
        "course/static/subs_lecture1.srt.sjson": json.dumps(
            {"start": [0, 1000], "end": [900, 2000], "text": ["Hello", "rotating world"]}
        ).encode(),
        "course/static/handout.pdf": make_pdf(
            ["Moment of inertia handout", "I equals sum of m r squared"], title="Inertia Handout"
        ),
        "course/static/my notes.txt": b"Remember the parallel axis theorem.",
        "course/static/._handout.pdf": b"\x00\x05\x16\x07AppleDouble junk",
        "course/static/diagram.png": b"\x89PNG\r\n\x1a\n",
        "course/drafts/html/unfinished.html": b"<p>not published yet</p>",
    }
    extra.update(replace or {})
    with tarfile.open(OLX) as src, tarfile.open(path, "w:gz") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read() if member.isfile() else None
            dst.addfile(member, io.BytesIO(data) if data is not None else None)
        for name, data in extra.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_700_000_000
            dst.addfile(info, io.BytesIO(data))
    return path


# -- pure helpers ---------------------------------------------------------------------------


def test_valid_extensions_are_mit_learns_16():
    assert len(VALID_TEXT_FILE_TYPES) == 16
    assert {".srt", ".sjson", ".pdf", ".xml", ".tex", ".vtt"} <= VALID_TEXT_FILE_TYPES


def test_keys():
    assert edx_module_id("course/static/my notes.txt", RUN) == (
        "asset-v1:MITxT+8.01.3x+3T2022+type@asset+block@my_notes.txt"
    )
    assert edx_module_id(f"course/html/{HTML_ID}.html", RUN) == (
        f"block-v1:MITxT+8.01.3x+3T2022+type@html+block@{HTML_ID}"
    )


def test_urls():
    asset = "asset-v1:MITxT+8.01.3x+3T2022+type@asset+block@x.pdf"
    assert url_for_module(asset, base_url=BASE, url_run_id=RUN) == f"{BASE}/{asset}"
    block = f"block-v1:MITxT+8.01.3x+3T2022+type@html+block@{HTML_ID}"
    assert url_for_module(block, base_url=BASE, url_run_id=RUN) == (
        f"{BASE}/courses/{RUN}/jump_to_id/{HTML_ID}"
    )
    named = "block-v1:MITxT+8.01.3x+3T2022+type@about+block@overview"
    assert url_for_module(named, base_url=BASE, url_run_id=RUN) is None
    assert url_for_module(asset, base_url=None, url_run_id=RUN) is None


def test_srt_and_sjson_helpers():
    text = text_from_srt(SRT)
    assert text == (
        "Welcome to rotational dynamics. Newton wrote this in 1687 and it still holds. "
        "Torque equals r cross F."
    )
    vtt = "WEBVTT\n\n00:00.000 --> 00:01.000\nHi there\n"
    assert text_from_srt(vtt) == "Hi there"
    assert text_from_sjson('{"text": ["a", "b"]}') == "a b"


def test_title_priority():
    assert resolve_title("Meta", "Tika", "Display", "x.html") == "Meta"
    assert resolve_title(None, "Tika", "Display", "x.html") == "Tika"
    assert resolve_title(None, " ", "Display", "x.html") == "Display"
    assert resolve_title(None, None, None, "grading_policy.json") == "Grading Policy"
    assert prettify_filename("lecture-1_notes.pdf") == "Lecture 1 Notes"


# -- the real archive -----------------------------------------------------------------------


def test_real_archive(tika):
    counting = CountingExtractor(tika)
    result = extract_olx_archive(OLX, RUN, extractor=counting, base_url=BASE)
    assert result.failures == []
    assert len(counting.calls) == result.extractor_calls == 17
    by_key = {cf.key: cf for cf in result.files}
    assert sorted(by_key) == [
        "block-v1:MITxT+8.01.3x+3T2022+type@3T2022+block@grading_policy",
        "block-v1:MITxT+8.01.3x+3T2022+type@3T2022+block@policy",
        "block-v1:MITxT+8.01.3x+3T2022+type@about+block@entrance_exam_minimum_score_pct",
        "block-v1:MITxT+8.01.3x+3T2022+type@about+block@overview",
        "block-v1:MITxT+8.01.3x+3T2022+type@policies+block@assets",
    ]
    assert result.skipped_empty == 12  # empty about/*.html and attribute-only XML
    overview = by_key["block-v1:MITxT+8.01.3x+3T2022+type@about+block@overview"]
    assert overview.title == overview.content_title == "Overview"
    assert overview.source_path == "course/about/overview.html"
    assert overview.file_extension == ".html"
    assert overview.content_type == "file"
    assert overview.file_type == "text/html"
    assert overview.run_id == RUN
    assert overview.url is None  # not a uuid-like block
    assert overview.content.startswith("About This Course")
    assert "<section" not in overview.content
    assert len(overview.archive_checksum) == 32
    policy = by_key["block-v1:MITxT+8.01.3x+3T2022+type@3T2022+block@policy"]
    assert '"display_name": "Mechanics: Rotational Dynamics"' in policy.content
    assert policy.title == "Policy"


def test_unchanged_rerun_calls_extractor_zero_times(tika):
    first = extract_olx_archive(OLX, RUN, extractor=tika, base_url=BASE)
    counting = CountingExtractor(tika)
    again = extract_olx_archive(
        OLX_NO_CHANGE, RUN, extractor=counting, base_url=BASE, previous=first.previous()
    )
    assert counting.calls == []
    assert again.extractor_calls == 0
    assert again.reused == 17
    assert [cf.model_dump() for cf in again.files] == [cf.model_dump() for cf in first.files]
    # overwrite forces extraction again
    forced = CountingExtractor(tika)
    extract_olx_archive(OLX, RUN, extractor=forced, previous=first.previous(), overwrite=True)
    assert len(forced.calls) == 17


def test_empty_archive(tika):
    counting = CountingExtractor(tika)
    result = extract_olx_archive(FIXTURES / "empty.tar.gz", RUN, extractor=counting)
    assert result.files == [] and result.failures == [] and counting.calls == []


# -- a richer course ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rich(tmp_path_factory, tika):
    archive = rich_course(tmp_path_factory.mktemp("olx") / f"{RUN}.tar.gz")
    counting = CountingExtractor(tika)
    result = extract_olx_archive(archive, RUN, extractor=counting, base_url=BASE)
    return archive, result, counting


def test_rich_course_keys_titles_urls(rich):
    _, result, counting = rich
    by_path = {cf.source_path: cf for cf in result.files}
    assert result.failures == []
    assert "course/drafts/html/unfinished.html" not in by_path
    assert "handout.pdf" in counting.calls and "._handout.pdf" not in counting.calls
    assert not any(p.endswith(".png") for p in by_path)

    html = by_path[f"course/html/{HTML_ID}.html"]
    assert html.key == f"block-v1:MITxT+8.01.3x+3T2022+type@html+block@{HTML_ID}"
    assert html.title == "Angular Momentum"  # display_name of the block's XML pointer
    assert html.url == f"{BASE}/courses/{RUN}/jump_to_id/{HTML_ID}"
    assert "Angular momentum is conserved." in html.content
    assert f"course/html/{HTML_ID}.xml" not in by_path
    assert result.duplicates == 1

    problem = by_path[f"course/problem/{PROBLEM_ID}.xml"]
    assert problem.title == "Torque Quiz"
    assert problem.url == f"{BASE}/courses/{RUN}/jump_to_id/{PROBLEM_ID}"
    assert "What is the torque on the wheel?" in problem.content

    pdf = by_path["course/static/handout.pdf"]
    assert pdf.key == "asset-v1:MITxT+8.01.3x+3T2022+type@asset+block@handout.pdf"
    assert pdf.title == "Inertia Handout"  # Tika's title from the PDF Info dict
    assert pdf.url == f"{BASE}/{pdf.key}"
    assert "Moment of inertia handout" in pdf.content
    assert pdf.file_type == "application/pdf"

    notes = by_path["course/static/my notes.txt"]
    assert notes.key.endswith("+block@my_notes.txt")
    assert notes.title == "My Notes"


def test_rich_course_transcripts(rich):
    _, result, counting = rich
    by_path = {cf.source_path: cf for cf in result.files}
    srt = by_path["course/static/lecture1-en.srt"]
    assert srt.content == (
        "Welcome to rotational dynamics. Newton wrote this in 1687 and it still holds. "
        "Torque equals r cross F."
    )
    assert "-->" not in srt.content
    # a static transcript links to its parent video
    assert srt.url == f"{BASE}/courses/{RUN}/jump_to_id/lecture1"
    sjson = by_path["course/static/subs_lecture1.srt.sjson"]
    assert sjson.content == "Hello rotating world"
    assert "subs_lecture1.srt.sjson" not in counting.calls  # parsed without Tika


def test_rich_course_rerun_and_one_changed_file(rich, tika, tmp_path):
    archive, first, _ = rich
    previous = first.previous()
    counting = CountingExtractor(tika)
    again = extract_olx_archive(archive, RUN, extractor=counting, base_url=BASE, previous=previous)
    assert counting.calls == []
    assert [c.key for c in again.files] == [c.key for c in first.files]
    # change one stored checksum: exactly that file is extracted again
    pdf_key = "asset-v1:MITxT+8.01.3x+3T2022+type@asset+block@handout.pdf"
    stale = {**previous, pdf_key: ("0" * 32, "old text", "Old")}
    counting = CountingExtractor(tika)
    third = extract_olx_archive(archive, RUN, extractor=counting, base_url=BASE, previous=stale)
    assert counting.calls == ["handout.pdf"]
    assert {c.key: c for c in third.files}[pdf_key].title == "Inertia Handout"


def test_failing_file_is_reported_not_fatal(rich, tika):
    archive, first, _ = rich
    counting = CountingExtractor(tika, fail_on="handout.pdf")
    result = extract_olx_archive(archive, RUN, extractor=counting, base_url=BASE, max_workers=3)
    assert [f.key for f in result.failures] == [
        "asset-v1:MITxT+8.01.3x+3T2022+type@asset+block@handout.pdf"
    ]
    assert "corrupt file" in result.failures[0].reason
    assert len(result.files) == len(first.files) - 1


def test_stuck_parse_is_killed_and_reported_the_rest_loads(rich, tmp_path, monkeypatch):
    """One file whose parse hangs holding the GIL: it times out as a clear failure (quarantined by
    the activity), its parse process is killed, and every other file of the archive loads."""
    _, first, _ = rich
    stuck = rich_course(tmp_path / "stuck.tar.gz", {"course/static/handout.pdf": MARKER})
    monkeypatch.setenv(PID_DIR_ENV, str(tmp_path))
    extractor = EmbeddedTikaExtractor(ocr=False, timeout_s=3.0, parse=stuck_on_marker)
    try:
        result = extract_olx_archive(stuck, RUN, extractor=extractor, base_url=BASE, max_workers=3)
    finally:
        extractor.close()
    assert [f.key for f in result.failures] == [
        "asset-v1:MITxT+8.01.3x+3T2022+type@asset+block@handout.pdf"
    ]
    assert result.failures[0].reason.startswith("TextExtractionTimeout: tika parse exceeded 3.0s")
    assert "killed" in result.failures[0].reason
    assert len(result.files) == len(first.files) - 1
    pids = [int(p.read_text()) for p in tmp_path.glob("*.pid")]
    assert len(pids) == 1 and not psutil.pid_exists(pids[0])


def test_walk_with_metadata_titles_and_filter(tika, tmp_path):
    root = tmp_path / "course"
    (root / "static").mkdir(parents=True)
    (root / "static" / "a.txt").write_text("alpha text")
    (root / "static" / "b.txt").write_text("beta text")
    result = walk_olx(
        root,
        RUN,
        extractor=tika,
        include=lambda p: p.endswith("a.txt"),
        titles={"course/static/a.txt": "Alpha (from metadata)"},
    )
    assert [(c.source_path, c.title) for c in result.files] == [
        ("course/static/a.txt", "Alpha (from metadata)")
    ]


# -- the CLI command ------------------------------------------------------------------------


def test_extract_archive_command(tmp_path):
    import typer
    from typer.testing import CliRunner

    from learn_cli.commands.archives import register

    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, ["extract-archive", str(OLX), "--base-url", BASE])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert len(rows) == 5
    overview = next(r for r in rows if r["key"].endswith("+block@overview"))
    assert overview["title"] == "Overview"
    assert overview["file_extension"] == ".html"
    assert overview["content_type"] == "file"
    assert overview["text_length"] > 500
    assert len(overview["checksum"]) == 32
    assert overview["key"].startswith("block-v1:MITxT+8.01.3x+3T2022+")  # run id from file name

    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        info = tarfile.TarInfo("../evil.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    bad = CliRunner().invoke(app, ["extract-archive", str(evil)])
    assert bad.exit_code == 2
    assert "PathTraversalError" in bad.output

"""Canvas `.imscc`: course metadata and published-item rules on a real export (and variants)."""

from __future__ import annotations

import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from learnflow.textextract import EmbeddedTikaExtractor, ExtractedText, TextExtractor
from sources.archives.canvas import (
    canvas_content_files,
    course_info,
    is_date_locked,
    parse_url_config,
    published_items,
    zip_reader,
)
from sources.archives.olx import previous_lookup
from tests.helpers.fixtures import FIXTURES_ROOT

CANVAS_DIR = FIXTURES_ROOT / "canvas-export" / "du-spcs-302-earth-and-its-processes"
NOW = datetime(2026, 1, 15, tzinfo=UTC)
TITLE = "[parent] SPCS 302 Earth and Its Processes"
UNIT1 = "wiki_content/unit-1-objectives.html"
UNPUBLISHED_PAGE = "wiki_content/read-chapter-1-earth-systems-2.html"


class Counting(TextExtractor):
    def __init__(self, inner):
        self.inner, self.calls = inner, []

    def extract(self, data, filename, content_type=None) -> ExtractedText:
        self.calls.append(filename)
        return self.inner.extract(data, filename, content_type)


class PlainText(TextExtractor):
    """A fast stand-in where the test is about publishing, not parsing."""

    def extract(self, data, filename, content_type=None) -> ExtractedText:
        return ExtractedText(text=data.decode("utf-8", "replace"))


@pytest.fixture(scope="module")
def tika():
    extractor = EmbeddedTikaExtractor(ocr=False)
    yield extractor
    extractor.close()


def build_imscc(dest: Path, edits: dict[str, bytes] | None = None) -> Path:
    """Zip the real export into an `.imscc`, replacing or adding members from `edits`."""
    edits = dict(edits or {})
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(p for p in CANVAS_DIR.rglob("*") if p.is_file()):
            rel = path.relative_to(CANVAS_DIR).as_posix()
            zf.writestr(rel, edits.pop(rel, path.read_bytes()))
        for rel, data in edits.items():
            zf.writestr(rel, data)
    return dest


def original(rel: str) -> str:
    return (CANVAS_DIR / rel).read_text()


def published_of(archive: Path, **kwargs):
    with zipfile.ZipFile(archive) as zf:
        return published_items(zip_reader(zf, 10_000_000), now=NOW, **kwargs)


@pytest.fixture(scope="module")
def base_zip(tmp_path_factory):
    return build_imscc(tmp_path_factory.mktemp("canvas") / "course.imscc")


@pytest.fixture(scope="module")
def base_result(base_zip, tika):
    counting = Counting(tika)
    result = canvas_content_files(base_zip, "1720782", extractor=counting, now=NOW, max_workers=4)
    return result, counting


def test_course_metadata(base_zip):
    with zipfile.ZipFile(base_zip) as zf:
        course = course_info(zip_reader(zf, 1_000_000), "1720782")
    assert course.title == TITLE
    assert course.course_code == TITLE
    assert course.readable_id == f"1720782-{TITLE}"
    assert course.run_id == f"1720782-{TITLE}+canvas"
    assert course.url is None  # this export has no context.xml
    assert course.start_at.year == 2018 and course.start_at.month == 1
    assert course.conclude_at.month == 3


def test_title_fallback_and_url(tmp_path):
    archive = tmp_path / "bare.imscc"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(
            "course_settings/context.xml",
            '<context_info xmlns="http://canvas.instructure.com/xsd/cccv1p0">'
            "<course_id>99</course_id><canvas_domain>canvas.example.edu</canvas_domain>"
            "</context_info>",
        )
    with zipfile.ZipFile(archive) as zf:
        course = course_info(zip_reader(zf, 1_000_000), "99")
    assert course.title == "canvas course 99"
    assert course.url == "https://canvas.example.edu/courses/99/"


def test_published_items_of_the_real_export(base_zip):
    published = published_of(base_zip)
    assert len(published) == 76
    assert published["wiki_content/course-home.html"].title == "Course Home"
    assert published["wiki_content/course-home.html"].kind == "module"
    assert UNIT1 in published
    # a page marked unpublished and in no module stays out
    assert UNPUBLISHED_PAGE not in published
    # the Files tab is hidden and "Uploaded Media" is a hidden folder: no web_resources
    assert not any(p.startswith("web_resources/") for p in published)
    # Canvas settings files are never content, and the syllabus is not public
    assert not any(p.endswith("assignment_settings.xml") for p in published)
    assert "course_settings/syllabus.html" not in published


def test_content_files(base_result):
    result, counting = base_result
    assert result.failures == []
    assert len(result.files) == 56  # published items with text
    by_path = {cf.source_path: cf for cf in result.files}
    home = by_path["wiki_content/course-home.html"]
    assert home.key == f"block-v1:1720782-{TITLE}+canvas+type@wiki_content+block@course-home"
    assert home.title == "Course Home"
    assert home.run_id == f"1720782-{TITLE}+canvas"
    assert "Welcome to SPCS 302" in home.content
    assert home.url is None
    assignment = by_path["g21f30d7db347ec6878e852225207cd5b/write-u1-how-the-earth-was-made.html"]
    assert assignment.title == "Write (U1): How the Earth Was Made"
    assert UNPUBLISHED_PAGE not in by_path
    assert len(counting.calls) == result.extractor_calls == 76
    assert len(result.checksum) == 32


def test_unchanged_rerun_calls_extractor_zero_times(base_zip, base_result, tika):
    first, _ = base_result
    counting = Counting(tika)
    again = canvas_content_files(
        base_zip, "1720782", extractor=counting, now=NOW, previous=first.previous()
    )
    assert counting.calls == []
    assert [c.model_dump() for c in again.files] == [c.model_dump() for c in first.files]
    assert again.checksum == first.checksum
    # stored content files alone (no record of textless items): only those are tried again
    counting = Counting(tika)
    canvas_content_files(
        base_zip, "1720782", extractor=counting, now=NOW, previous=previous_lookup(first.files)
    )
    assert len(counting.calls) == 76 - 56


def test_unpublished_module_item_and_page(tmp_path):
    module_meta = original("course_settings/module_meta.xml").replace(
        '<item identifier="g18af0b6bb15a1df310f0f21ccb9927df">\n'
        "        <content_type>WikiPage</content_type>\n"
        "        <workflow_state>active</workflow_state>",
        '<item identifier="g18af0b6bb15a1df310f0f21ccb9927df">\n'
        "        <content_type>WikiPage</content_type>\n"
        "        <workflow_state>unpublished</workflow_state>",
    )
    assert module_meta != original("course_settings/module_meta.xml")
    page = original(UNIT1).replace(
        '<meta name="workflow_state" content="active"/>',
        '<meta name="workflow_state" content="unpublished"/>',
    )
    archive = build_imscc(
        tmp_path / "v.imscc",
        {"course_settings/module_meta.xml": module_meta.encode(), UNIT1: page.encode()},
    )
    published = published_of(archive)
    assert UNIT1 not in published
    assert len(published) == 75
    # an active module item keeps a page published even if the page itself says unpublished
    only_module = build_imscc(tmp_path / "m.imscc", {UNIT1: page.encode()})
    assert UNIT1 in published_of(only_module)


def _manifest_with(*entries: tuple[str, str]) -> bytes:
    resources = "".join(
        f'<resource identifier="{ident}" type="webcontent" href="{href}">'
        f'<file href="{href}"/></resource>'
        for ident, href in entries
    )
    return original("imsmanifest.xml").replace("</resources>", resources + "</resources>").encode()


def _files_tab_visible() -> bytes:
    return (
        original("course_settings/course_settings.xml")
        .replace('{"id":11,"hidden":true}', '{"id":11}')
        .encode()
    )


def test_hidden_and_locked_files(tmp_path):
    files_meta = original("course_settings/files_meta.xml").replace(
        "</files>",
        '<file identifier="rhidden"><hidden>true</hidden></file>'
        '<file identifier="rlocked"><lock_at>2020-01-01T00:00:00</lock_at></file>'
        '<file identifier="rfuture"><unlock_at>2030-01-01T00:00:00</unlock_at></file>'
        '<file identifier="rnamed"><display_name>Reading List</display_name></file>'
        "</files>",
    )
    edits = {
        "imsmanifest.xml": _manifest_with(
            ("rvisible", "web_resources/Docs/notes.txt"),
            ("rnamed", "web_resources/Docs/reading.txt"),
            ("rhidden", "web_resources/Docs/hidden.txt"),
            ("rlocked", "web_resources/Docs/locked.txt"),
            ("rfuture", "web_resources/Docs/future.txt"),
            ("rmedia", "web_resources/Uploaded Media/in-hidden-folder.txt"),
        ),
        "course_settings/files_meta.xml": files_meta.encode(),
        "course_settings/course_settings.xml": _files_tab_visible(),
        "web_resources/Docs/notes.txt": b"visible notes",
        "web_resources/Docs/reading.txt": b"a reading list",
        "web_resources/Docs/hidden.txt": b"hidden",
        "web_resources/Docs/locked.txt": b"locked",
        "web_resources/Docs/future.txt": b"future",
        "web_resources/Uploaded Media/in-hidden-folder.txt": b"in hidden folder",
    }
    archive = build_imscc(tmp_path / "files.imscc", edits)
    web = {p: i for p, i in published_of(archive).items() if p.startswith("web_resources/")}
    assert sorted(web) == [
        "web_resources/DU Theme/Image documentation_SPCS 302.docx",
        "web_resources/DU Theme/Masthead_Grand Canyon 3_SPCS 302.jpg",
        "web_resources/DU Theme/style.css",
        "web_resources/Docs/notes.txt",
        "web_resources/Docs/reading.txt",
    ]  # hidden, locked, not-yet-unlocked files and the hidden "Uploaded Media" folder stay out
    assert web["web_resources/Docs/reading.txt"].title == "Reading List"
    assert web["web_resources/Docs/notes.txt"].kind == "file"
    # with the Files tab hidden (as exported), none of them is visible
    edits.pop("course_settings/course_settings.xml")
    hidden_tab = build_imscc(tmp_path / "tab.imscc", edits)
    assert not any(p.startswith("web_resources/") for p in published_of(hidden_tab))


def test_files_linked_from_published_pages(tmp_path):
    page = original("wiki_content/course-home.html").replace(
        "</body>",
        '<p><a href="$IMS-CC-FILEBASE$/Docs/reading%20list.txt?canvas_download=1">list</a></p>'
        "</body>",
    )
    archive = build_imscc(
        tmp_path / "embed.imscc",
        {
            "wiki_content/course-home.html": page.encode(),
            "web_resources/Docs/reading list.txt": b"Read chapter one twice.",
        },
    )
    published = published_of(archive)
    assert published["web_resources/Docs/reading list.txt"].kind == "embedded"
    result = canvas_content_files(archive, "1720782", extractor=PlainText(), now=NOW)
    linked = {cf.source_path: cf for cf in result.files}["web_resources/Docs/reading list.txt"]
    assert linked.content == "Read chapter one twice."
    assert linked.key.endswith("+type@Docs+block@reading_list")


def test_public_syllabus(tmp_path):
    settings = original("course_settings/course_settings.xml").replace(
        "<public_syllabus>false</public_syllabus>", "<public_syllabus>true</public_syllabus>"
    )
    archive = build_imscc(
        tmp_path / "syl.imscc", {"course_settings/course_settings.xml": settings.encode()}
    )
    assert published_of(archive)["course_settings/syllabus.html"].kind == "syllabus"


def test_url_config(base_zip):
    config = parse_url_config(
        json.dumps(
            {
                "pages": [
                    {"title": "Course Home", "html_url": "https://canvas.example/pages/home"},
                    {"title": "Unit 1 Objectives", "published": False},
                ],
                "course_files": [],
            }
        )
    )
    published = published_of(base_zip, url_config=config)
    assert UNIT1 not in published
    result = canvas_content_files(
        base_zip, "1720782", extractor=PlainText(), now=NOW, url_config=config
    )
    home = {cf.source_path: cf for cf in result.files}["wiki_content/course-home.html"]
    assert home.url == "https://canvas.example/pages/home"


def test_date_lock_helper():
    assert is_date_locked("2020-01-01T00:00:00", None, NOW)
    assert is_date_locked(None, "2030-01-01T00:00:00", NOW)
    assert not is_date_locked("2030-01-01T00:00:00", "2020-01-01T00:00:00", NOW)
    assert not is_date_locked("nil", "", NOW)

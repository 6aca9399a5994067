"""OCW site data: course fields, page and resource content files, from a directory or a dict."""

from __future__ import annotations

import json

import pytest

from learnflow.textextract import EmbeddedTikaExtractor, ExtractedText, TextExtractor
from sources.archives.ocw import (
    OCW_BASE_URL,
    directory_tree,
    mapping_tree,
    read_ocw_site,
    transform_course,
)
from tests.helpers.fixtures import TEST_JSON

ROOT = TEST_JSON
SLUG = "16-01-unified-engineering-i-ii-iii-iv-fall-2005-spring-2006"
PREFIX = f"courses/{SLUG}"


class Counting(TextExtractor):
    def __init__(self, inner):
        self.inner, self.calls = inner, []

    def extract(self, data, filename, content_type=None) -> ExtractedText:
        self.calls.append(filename)
        return self.inner.extract(data, filename, content_type)


@pytest.fixture(scope="module")
def tika():
    extractor = EmbeddedTikaExtractor(ocr=False)
    yield extractor
    extractor.close()


@pytest.fixture(scope="module")
def tree():
    paths, read = directory_tree(ROOT)
    return [p for p in paths if p.startswith("courses/")], read


@pytest.fixture(scope="module")
def site(tree, tika):
    paths, read = tree
    counting = Counting(tika)
    return read_ocw_site(paths, read, PREFIX, extractor=counting), counting


def test_course_fields(site):
    result, _ = site
    course = result.course
    assert course["readable_id"] == "16.01+fall_2005"
    assert course["platform"] == "ocw" and course["resource_type"] == "course"
    assert course["title"] == "Unified Engineering I, II, III, & IV"
    assert course["url"] == f"{OCW_BASE_URL}{PREFIX}/"
    assert course["description"].startswith("The basic objective of Unified Engineering")
    assert course["departments"] == ["16"]
    assert course["topics"] == ["Anthropology", "Political Science", "Social Sciences"]
    assert "Ethnography" in course["ocw_topics"]
    assert course["course_features"][0] == "Lecture Videos"
    assert [n["value"] for n in course["course_numbers"]] == ["16.01", "16.02", "16.03", "16.04"]
    assert course["course_numbers"][0]["primary"] is True
    assert course["course_numbers"][1]["listing_type"] == "cross-listed"
    assert course["image"]["url"].endswith("8f56bbb35d0e456dc8b70911bec7cd0d_16-01f05.jpg")
    assert course["image"]["alt"].startswith("Illustration of an aircraft wing")
    assert course["license_cc"] is True
    (run,) = course["runs"]
    assert run["run_id"] == "97db384ef34009a64df7cb86cf701979"  # legacy_uid without dashes
    assert run["semester"] == "Fall" and run["year"] == 2005
    assert run["instructors"][0]["full_name"] == "Prof. Mark Drela"
    assert len(run["instructors"]) == 10


def test_pages(site):
    result, _ = site
    pages = {cf.key: cf for cf in result.files if cf.content_type == "page"}
    assert sorted(pages) == [f"{PREFIX}/pages/", f"{PREFIX}/pages/syllabus/"]
    syllabus = pages[f"{PREFIX}/pages/syllabus/"]
    assert syllabus.title == syllabus.content_title == "Syllabus"
    assert syllabus.content == "Course Meeting Times Lecture"
    assert syllabus.url == f"{OCW_BASE_URL}{PREFIX}/pages/syllabus/"
    assert syllabus.run_id == "97db384ef34009a64df7cb86cf701979"


def test_resources(site):
    result, counting = site
    files = {cf.key: cf for cf in result.files if cf.content_type != "page"}
    assert sorted(files) == [
        f"{PREFIX}/resources/resource/",
        f"{PREFIX}/resources/textbook/",
        f"{PREFIX}/resources/video/",
    ]
    pdf = files[f"{PREFIX}/resources/resource/"]
    assert pdf.content_type == "pdf" and pdf.file_type == "application/pdf"
    assert pdf.file_extension == ".pdf"
    assert pdf.title == "Resource Title"
    assert pdf.content == "content"  # the fixture's file bytes, through Tika
    assert pdf.source_path == f"{PREFIX}/0902956aa08f67a954b28efdcbaaa472_MIT6_262S11_assn 01.pdf"
    assert pdf.content_tags == ["Activity Assignments", "Activity Assignments with Examples"]
    textbook = files[f"{PREFIX}/resources/textbook/"]
    assert textbook.content_tags == ["Open Textbooks"]
    video = files[f"{PREFIX}/resources/video/"]
    assert video.content_type == "video"
    assert video.youtube_id == "vKer2U5W5-s"
    assert video.image_src == "https://i.ytimg.com/vi/vKer2U5W5-s/hqdefault.jpg"
    assert video.file_extension == ".mp4"
    assert video.source_path.endswith("1MTm4cjPnMl0AmnP42tDtBleiQ3Zc2g26_transcript.pdf")
    assert video.content == "content"
    assert len(counting.calls) == result.extractor_calls == 3


def test_missing_file_is_a_failure_not_fatal(site):
    result, _ = site
    (failure,) = result.failures
    assert failure.key == f"{PREFIX}/resources/resource_no_file/"
    assert "fubar.pdf" in failure.reason


def test_unchanged_rerun_reuses_text(tree, site, tika):
    first, _ = site
    paths, read = tree
    previous = {cf.key: (cf.archive_checksum, cf.content, cf.title) for cf in first.files}
    counting = Counting(tika)
    again = read_ocw_site(paths, read, PREFIX, extractor=counting, previous=previous)
    assert counting.calls == []
    assert again.reused == 3
    assert [c.model_dump() for c in again.files] == [c.model_dump() for c in first.files]


def test_mapping_tree_and_legacy_format():
    course = json.loads((ROOT / PREFIX / "data.json").read_bytes())
    course.pop("legacy_uid")
    files = {
        f"{PREFIX}/data.json": json.dumps(course).encode(),
        f"{PREFIX}/resources/lecture/data.json": json.dumps(
            {
                "title": "Lecture 1",
                "resource_type": "Video",  # legacy key
                "file_type": "video/mp4",
                "file": f"/{PREFIX}/lecture1.mp4",
                "transcript_file": f"/{PREFIX}/lecture1-transcript.txt",
                "video_metadata": {"youtube_id": "abc123"},
            }
        ).encode(),
        f"{PREFIX}/lecture1-transcript.txt": b"transcript words",
        f"{PREFIX}/resources/caption/data.json": json.dumps(
            {"title": "3play caption file", "file": f"/{PREFIX}/x.vtt"}
        ).encode(),
        f"{PREFIX}/resources/image/data.json": json.dumps(
            {"title": "A figure", "file_type": "image/png", "file": f"/{PREFIX}/fig.png"}
        ).encode(),
    }
    paths, read = mapping_tree(files)

    class Plain(TextExtractor):
        def extract(self, data, filename, content_type=None):
            return ExtractedText(text=data.decode())

    result = read_ocw_site(paths, read, PREFIX, extractor=Plain())
    assert result.failures == []
    assert result.course["runs"][0]["run_id"] == "b51a7887101f4e96a07c9e53c20bfeb6"  # site_uid
    by_key = {cf.key: cf for cf in result.files}
    lecture = by_key[f"{PREFIX}/resources/lecture/"]
    assert lecture.content == "transcript words" and lecture.youtube_id == "abc123"
    assert f"{PREFIX}/resources/caption/" not in by_key  # 3play files are skipped
    figure = by_key[f"{PREFIX}/resources/image/"]
    assert figure.content == "" and figure.content_type == "file"  # not a text type


def test_missing_course_data(tree):
    paths, read = tree
    result = read_ocw_site(paths, read, "courses/does-not-exist")
    assert result.course is None and result.files == []
    assert "data.json" in result.failures[0].reason


def test_transform_course_without_uid():
    assert transform_course({"primary_course_number": "1.00"}, url_path="courses/x/") is None

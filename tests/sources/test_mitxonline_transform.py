"""MITx Online transform on the recorded payloads, field by field (MIT Learn §1.2 rules)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from learnflow.models import TransformOutput
from sources import get_source, mitxonline
from tests.conftest import TEST_JSON

SOURCE = get_source("mitxonline")


# While the recorded 2T2024 run takes enrollments (prices and certificates follow the clock).
WHILE_ENROLLING = datetime(2024, 6, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def courses():
    out = TransformOutput(
        resources=[
            mitxonline.transform_course(c, WHILE_ENROLLING)
            for c in json.loads((TEST_JSON / "mitxonline_courses.json").read_bytes())["results"]
        ]
    )
    assert not out.quarantined
    return {r.readable_id: r for r in out.resources}


def test_course_identity_and_urls(courses):
    assert set(courses) == {
        "course-v1:MITxT+18.03.1x",
        "course-v1:MITxT+18.03.2x",
        "course-v1:MITxT+18.03.3x",
    }
    c = courses["course-v1:MITxT+18.03.1x"]
    assert (c.platform, c.resource_type, c.etl_source, c.offered_by) == (
        "mitxonline",
        "course",
        "mitxonline",
        "mitx",
    )
    assert c.title == "Introduction to Differential Equations"
    assert c.url == "https://learn.mit.edu/courses/course-v1:MITxT+18.03.1x"
    assert c.image is not None and c.image.url.startswith(
        "https://mitxonline.mit.edu/media/original_images/18031"
    )
    assert c.published is True


def test_course_runs(courses):
    c = courses["course-v1:MITxT+18.03.1x"]
    runs = {r.run_id: r for r in c.runs}
    assert set(runs) == {"course-v1:MITxT+18.03.1x+2T2024", "course-v1:MITxT+18.03.1x+2T2023"}
    current = runs["course-v1:MITxT+18.03.1x+2T2024"]
    assert current.published is True  # enrollable, live page, not a variant
    assert runs["course-v1:MITxT+18.03.1x+2T2023"].published is False  # not enrollable
    assert current.start_date.isoformat() == "2024-09-04T15:00:00+00:00"
    assert current.enrollment_end.isoformat() == "2024-12-14T00:00:00+00:00"
    assert [i.full_name for i in current.instructors] == [
        "David Jerison",
        "Gigliola Staffilani",
        "Jennifer French",
    ]
    assert current.pace == ["instructor_paced"]


def test_course_prices_certification_topics(courses):
    c = courses["course-v1:MITxT+18.03.1x"]
    assert c.certification is True
    assert c.certification_type == "completion"
    amounts = [p.amount for p in c.prices]
    assert Decimal("0.00") in amounts and Decimal("456.00") in amounts
    assert [t.name for t in c.topics][:1] == ["Mathematics"]
    assert [(d.department_id, d.name) for d in c.departments] == [("18", "Mathematics")]
    assert c.course_numbers[0].value == "18.03.1x" and c.course_numbers[0].primary
    # 18.03.2x has only an audit mode: no certificate, no prices on the resource
    audit_only = courses["course-v1:MITxT+18.03.2x"]
    assert audit_only.certification is False and audit_only.prices == []


def test_programs_link_courses_by_readable_id():
    payload = json.loads((TEST_JSON / "mitxonline_programs.json").read_bytes())
    courses = json.loads((TEST_JSON / "mitxonline_courses.json").read_bytes())
    out = SOURCE.transform_payload("programs", payload, [courses])
    assert not out.quarantined
    prog = {r.readable_id: r for r in out.resources}["program-v1:MITxT+18.03x"]
    assert prog.resource_type == "program" and prog.resource_category == "Program"
    assert prog.url == "https://learn.mit.edu/programs/program-v1:MITxT+18.03x"
    assert prog.runs[0].run_id == "program-v1:MITxT+18.03x"
    children = [(r.relation_type, r.child.readable_id) for r in prog.relationships]
    assert children[0] == ("PROGRAM_COURSES", "course-v1:MITxT+18.03.1x")
    assert all(rt == "PROGRAM_COURSES" for rt, _ in children)


def test_program_children_loader_child_programs():
    payload = json.loads((TEST_JSON / "mitxonline_program_children_loader.json").read_bytes())
    out = SOURCE.transform_payload("programs", payload)
    by_id = {r.readable_id: r for r in out.resources}
    parent = by_id["mitx-parent-program"]
    rels = [
        (r.relation_type, r.child.readable_id, r.child.resource_type) for r in parent.relationships
    ]
    assert ("PROGRAM_COURSES", "course-10", "course") in rels
    assert ("PROGRAM_PROGRAMS", "mitx-child-program", "program") in rels
    # a child program displayed as a course is a course of its parent
    assert ("PROGRAM_COURSES", "mitx-child-program-displayed-as-course", "program") in rels
    assert by_id["mitx-child-program-displayed-as-course"].resource_category == "Course"


def test_bad_item_is_quarantined_and_the_rest_load():
    payload = json.loads((TEST_JSON / "mitxonline_courses.json").read_bytes())
    payload["results"][1].pop("title")
    out = SOURCE.transform_payload("courses", payload)
    assert len(out.resources) == 2
    assert len(out.quarantined) == 1
    q = out.quarantined[0]
    assert q.item_key == "course-v1:MITxT+18.03.2x" and "title" in q.reason
    assert json.loads(q.raw)["readable_id"] == "course-v1:MITxT+18.03.2x"


def test_proctored_exams_are_excluded():
    payload = json.loads((TEST_JSON / "mitxonline_courses.json").read_bytes())
    payload["results"][0]["title"] = "18.03 Proctored Exam"
    out = SOURCE.transform_payload("courses", payload)
    assert "course-v1:MITxT+18.03.1x" not in {r.readable_id for r in out.resources}


def test_wrong_shape_is_a_clear_error():
    with pytest.raises(ValueError, match="neither a list nor a page"):
        SOURCE.transform_payload("courses", {"unexpected": 1})
    with pytest.raises(ValueError, match="no kind"):
        SOURCE.transform_payload("nope", [])


def test_content_hash_is_stable_and_sensitive(courses):
    c = courses["course-v1:MITxT+18.03.1x"]
    raw = json.loads((TEST_JSON / "mitxonline_courses.json").read_bytes())["results"][0]
    assert mitxonline.transform_course(raw, WHILE_ENROLLING).content_hash() == c.content_hash()
    assert c.model_copy(update={"title": "changed"}).content_hash() != c.content_hash()

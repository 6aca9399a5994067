"""MITx Online against MIT Learn's mitxonline.py, on the recorded catalog (frozen clocks)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import pytest

from sources import mitxonline
from tests.conftest import TEST_JSON

# The fidelity suite (issue 16): checked against MIT Learn's ETL, not against learnflow's output.
pytestmark = [pytest.mark.fidelity]

COURSES = json.loads((TEST_JSON / "mitxonline_courses.json").read_bytes())
PROGRAMS = json.loads((TEST_JSON / "mitxonline_programs.json").read_bytes())
TREE = json.loads((TEST_JSON / "mitxonline_program_children_loader.json").read_bytes())
ENROLLING = datetime(2024, 6, 1, tzinfo=UTC)  # 18.03.1x+2T2024 takes enrollments until Dec 14
LATE = datetime(2026, 12, 1, tzinfo=UTC)  # every recorded run has ended
LEARN = "https://learn.mit.edu"


def _course(readable_id: str) -> dict:
    return copy.deepcopy(next(c for c in COURSES["results"] if c["readable_id"] == readable_id))


def _amounts(prices) -> list[str]:
    return [str(p.amount) for p in prices]


def test_course_while_enrolling():
    c = mitxonline.transform_course(_course("course-v1:MITxT+18.03.1x"), ENROLLING)
    runs = {r.run_id: r for r in c.runs}
    now_run = runs["course-v1:MITxT+18.03.1x+2T2024"]
    old_run = runs["course-v1:MITxT+18.03.1x+2T2023"]
    # parse_prices: verified → {min_price, max_price}, audit → 0.00; product prices not read
    assert _amounts(now_run.prices) == ["0.00", "123.00", "456.00"]
    assert _amounts(old_run.prices) == ["0.00"]  # not enrollable
    assert (now_run.status, old_run.status) == ("Current", "Archived")
    assert (now_run.published, old_run.published) == (True, False)
    assert now_run.url == old_run.url == f"{LEARN}/courses/course-v1:MITxT+18.03.1x"
    assert now_run.format == ["asynchronous"] and now_run.pace == ["instructor_paced"]
    assert now_run.start_date == datetime(2024, 9, 4, 15, tzinfo=UTC)
    assert (now_run.is_b2b, now_run.is_variant) == (False, False)
    assert (now_run.duration, now_run.time_commitment) == ("14 weeks", "7 hrs/wk")
    assert [i.full_name for i in now_run.instructors] == [
        "David Jerison",
        "Gigliola Staffilani",
        "Jennifer French",
    ]
    assert c.published is True
    assert (c.certification, c.certification_type) == (True, "completion")
    assert _amounts(c.prices) == ["0.00", "123.00", "456.00"]  # from the best run
    assert (c.availability, c.format, c.pace) == ("dated", ["asynchronous"], ["instructor_paced"])
    assert [t.name for t in c.topics] == ["Mathematics", "Science & Math"]
    assert c.url == f"{LEARN}/courses/course-v1:MITxT+18.03.1x"
    assert c.image is not None and c.image.alt is None


def test_course_after_every_run_ended():
    c = mitxonline.transform_course(_course("course-v1:MITxT+18.03.1x"), LATE)
    assert [_amounts(r.prices) for r in c.runs] == [["0.00"], ["0.00"]]
    assert {r.status for r in c.runs} == {"Archived"}
    # no current run with a verified mode: no certificate, no prices
    assert (c.certification, c.certification_type, c.prices) == (False, "none", [])


def test_missing_max_price_counts_as_zero_and_audit_only_certifies_nothing():
    third = mitxonline.transform_course(
        _course("course-v1:MITxT+18.03.3x"), datetime(2024, 1, 1, tzinfo=UTC)
    )
    # verified only, min_price 123 and no max_price: Decimal(max_price or "0.00")
    assert _amounts(third.runs[0].prices) == ["0.00", "123.00"]
    assert third.certification is True
    second = mitxonline.transform_course(
        _course("course-v1:MITxT+18.03.2x"), datetime(2023, 10, 1, tzinfo=UTC)
    )
    assert _amounts(second.runs[0].prices) == ["0.00"] and second.runs[0].status == "Current"
    assert (second.certification, second.prices) == (False, [])


def test_start_date_falls_back_to_enrollment_start():
    raw = _course("course-v1:MITxT+18.03.1x")
    raw["courseruns"][0]["start_date"] = None
    c = mitxonline.transform_course(raw, ENROLLING)
    assert c.runs[0].start_date == datetime(2024, 8, 15, tzinfo=UTC)


def test_catalog_flags_default_to_false():
    raw = _course("course-v1:MITxT+18.03.1x")
    del raw["include_in_learn_catalog"]
    assert mitxonline.transform_course(raw, ENROLLING).published is False
    raw = _course("course-v1:MITxT+18.03.1x")
    del raw["page"]["live"]
    c = mitxonline.transform_course(raw, ENROLLING)
    assert c.published is False and not any(r.published for r in c.runs)


def test_variants_come_from_possible_variant_sets_and_b2b():
    raw = _course("course-v1:MITxT+18.03.1x")
    spanish, b2b = raw["courseruns"][0], raw["courseruns"][1]
    spanish["language"] = "es"
    spanish["possible_variant_sets"] = [{"language": "es", "default_variant": False}]
    b2b["b2b_contract"] = 7
    b2b["is_enrollable"] = True
    runs = {r.run_id: r for r in mitxonline.transform_course(raw, ENROLLING).runs}
    assert runs[spanish["courseware_id"]].is_variant is True
    assert runs[spanish["courseware_id"]].published is False
    assert (runs[b2b["courseware_id"]].is_b2b, runs[b2b["courseware_id"]].is_variant) == (
        True,
        True,
    )
    # a language alone does not make a variant (no variant set says so)
    raw = _course("course-v1:MITxT+18.03.1x")
    raw["courseruns"][0]["language"] = "es"
    assert mitxonline.transform_course(raw, ENROLLING).runs[0].is_variant is False


@pytest.mark.parametrize(
    ("declared", "expected"),
    [("MicroMasters Credential", "micromasters"), ("Certificate of Completion", "completion")],
)
def test_certificate_type(declared: str, expected: str):
    raw = _course("course-v1:MITxT+18.03.1x")
    raw["certificate_type"] = declared
    assert mitxonline.transform_course(raw, ENROLLING).certification_type == expected


def _programs(payload, context, now) -> dict:
    mitxonline.clock = lambda: now  # restored by the fixture below
    out = mitxonline.transform("programs", payload, context)
    assert not out.quarantined
    return {r.readable_id: r for r in out.resources}


@pytest.fixture(autouse=True)
def _restore_clock(monkeypatch):
    monkeypatch.setattr(mitxonline, "clock", mitxonline.clock)


def test_programs():
    by_id = _programs(PROGRAMS, [COURSES], ENROLLING)
    p = by_id["program-v1:MITxT+18.03x"]
    (run,) = p.runs
    assert run.url == p.url == f"{LEARN}/programs/program-v1:MITxT+18.03x"
    assert (run.published, run.status, run.pace, run.format) == (
        True,
        "Current",
        ["instructor_paced"],
        ["asynchronous"],
    )
    assert _amounts(run.prices) == ["0.00", "1230.00", "4560.00"]
    assert (run.duration, run.min_weeks, run.max_weeks) == ("12-14 weeks", 12, 14)
    assert (run.time_commitment, run.min_weekly_hours, run.max_weekly_hours) == (
        "5-7 hrs/wk",
        5,
        7,
    )
    assert (p.published, p.certification, p.certification_type) == (True, True, "completion")
    assert p.pace == ["instructor_paced"] and _amounts(p.prices) == ["0.00", "1230.00", "4560.00"]
    assert [r.child.readable_id for r in p.relationships] == [
        "course-v1:MITxT+18.03.1x",
        "course-v1:MITxT+18.03.2x",
        "course-v1:MITxT+18.03.3x",
    ]
    hidden = by_id["program-v1:MITxT+8.02x"]
    assert hidden.published is False  # page.include_in_learn_catalog is false
    assert hidden.runs[0].start_date == datetime(2025, 9, 15, tzinfo=UTC)
    assert hidden.prices == [] and hidden.relationships == []  # its courses are not in the page


def test_program_children_descend_into_sub_programs_and_skip_courses_not_live():
    by_id = _programs(TREE, [], ENROLLING)
    parent = by_id["mitx-parent-program"]
    courses = [
        r.child.readable_id for r in parent.relationships if r.child.resource_type == "course"
    ]
    # course 10 directly, course 70 through mitx-child-program; course 80 belongs to the child
    # program shown as a course, which is linked itself
    assert courses == ["course-10", "course-70"]
    programs = {
        (r.relation_type, r.child.readable_id)
        for r in parent.relationships
        if r.child.resource_type == "program"
    }
    assert programs == {
        ("PROGRAM_PROGRAMS", "mitx-child-program"),
        ("PROGRAM_COURSES", "mitx-child-program-displayed-as-course"),
    }
    tree = copy.deepcopy(TREE)
    next(c for c in tree["courses"] if c["id"] == 70)["page"]["live"] = False
    parent = _programs(tree, [], ENROLLING)["mitx-parent-program"]
    assert "course-70" not in [r.child.readable_id for r in parent.relationships]
